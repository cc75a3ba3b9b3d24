"""A clinic's HIS client, built by the Runtime's factory from the clinic's connection (set by the operator)."""
from __future__ import annotations

from app.db.models import Clinic
from app.his.base import HisClient, HisConfig
from app.runtime import Runtime


def his_config(clinic: Clinic) -> HisConfig:
    """The clinic's HIS connection; empty fields while the operator has not set it, so that every call fails
    closed (HisAuthFailed, retried like an outage until the connection is set)."""
    return HisConfig(clinic.code, clinic.his_base_url or "", clinic.his_key_id or "", clinic.his_secret or "")


def his_client(rt: Runtime, clinic: Clinic) -> HisClient:
    return rt.his(his_config(clinic))
