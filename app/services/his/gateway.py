"""The HIS client of a clinic, one per clinic per process (it keeps a connection pool)."""
from __future__ import annotations

import threading

from app.db.models import Clinic
from app.his.base import HisClient
from app.his.http_client import HttpHisClient
from config.settings import Settings, looks_like_sandbox

_clients: dict[tuple, HisClient] = {}
_lock = threading.Lock()


def his_client(clinic: Clinic, settings: Settings) -> HisClient:
    if settings.ENV == "production" and looks_like_sandbox(clinic.his_base_url):
        raise RuntimeError(f"clinic {clinic.code}'s HIS points at a sandbox; refused in production")
    key = (clinic.id, clinic.his_base_url, clinic.his_key_id, clinic.his_secret, threading.get_ident())
    client = _clients.get(key)
    if client is None:
        with _lock:
            client = _clients.setdefault(key, HttpHisClient(clinic.his_base_url, clinic.his_key_id,
                                                            clinic.his_secret, timeout=settings.HIS_TIMEOUT_S))
    return client
