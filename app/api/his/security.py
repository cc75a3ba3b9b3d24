"""HMAC authentication of the HIS: X-HIS-Key-Id, X-HIS-Timestamp (within 300 s), X-HIS-Signature.

signature = hex HMAC-SHA256(secret, timestamp + "\\n" + METHOD + "\\n" + path + "\\n" + raw_body)
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import time
from functools import wraps

from flask import g, request
from sqlalchemy import select

from app.db.models import Clinic
from app.domain.errors import Unauthorized
from app.extensions import runtime

log = logging.getLogger(__name__)
MAX_SKEW_S = 300


def expected_signature(secret: str, timestamp: str, method: str, path: str, body: bytes) -> str:
    message = f"{timestamp}\n{method}\n{path}\n".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _refuse(reason: str) -> Unauthorized:
    log.warning("HIS API request refused: %s", reason)
    return Unauthorized(f"HIS signature check failed: {reason}", "invalid_signature")


def his_signed(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        key_id = request.headers.get("X-HIS-Key-Id", "")
        timestamp = request.headers.get("X-HIS-Timestamp", "")
        signature = request.headers.get("X-HIS-Signature", "")
        if not (key_id and timestamp and signature):
            raise _refuse("X-HIS-Key-Id, X-HIS-Timestamp and X-HIS-Signature are required")
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > MAX_SKEW_S:
            raise _refuse("the timestamp is missing or more than 300 s away")
        with runtime().db.session() as session:
            clinic = session.scalar(select(Clinic).where(Clinic.his_key_id == key_id))
            secret = clinic.his_secret if clinic else None
            clinic_id = clinic.id if clinic else None
        if secret is None:
            raise _refuse("unknown key id")
        wanted = expected_signature(secret, timestamp, request.method, request.path, request.get_data(cache=True))
        if not hmac.compare_digest(wanted, signature.lower()):
            raise _refuse("the signature does not match")
        g.his_clinic_id = clinic_id
        return view(*args, **kwargs)

    return wrapper


def his_clinic_id() -> int:
    return g.his_clinic_id
