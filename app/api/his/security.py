"""HMAC authentication of the HIS calling /api/his/v1 (the scheme: app.his.signing).

Headers `X-HIS-Key-Id`, `X-HIS-Timestamp` (unix seconds, 1-12 ASCII digits, at most 300 s old and
30 s ahead of our clock), `X-HIS-Nonce` (16-64 of A-Z a-z 0-9 _ -, never reused within the window)
and `X-HIS-Signature`:

    signature = hex HMAC-SHA256(secret, timestamp + "\\n" + nonce + "\\n" + METHOD + "\\n" + path
                                         + "\\n" + raw_body)

`path` is the request path (plus "?" and the query string when there is one). `@his_signed` goes
directly under `@blp.route`, so a request is authenticated before its body is read: an unsigned
request gets 401, never a field-by-field 422. A nonce accepted once is remembered in the database
(`his_api_nonces`) while its timestamp is inside the window, so a replay is refused 401
`replayed_request` on every web process, with or without Redis. A clinic whose secret is empty or
shorter than 16 characters cannot call at all (fail closed).
"""
from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from functools import wraps

from flask import g, request
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from app.db.models import Clinic, HisApiNonce
from app.db.types import utcnow
from app.domain.errors import Unauthorized
from app.domain.secrets import WeakSecret
from app.extensions import runtime
from app.his import signing

log = logging.getLogger(__name__)

# Kept a minute past the window, for clocks of several web hosts that disagree a little.
NONCE_KEEP_S = signing.MAX_AGE_S + 60


def _refuse(reason: str) -> Unauthorized:
    log.warning("HIS API request refused: %s", reason)
    return Unauthorized(f"HIS signature check failed: {reason}", "invalid_signature")


def _signed_target() -> str:
    query = request.query_string.decode("latin-1")
    return request.path + (f"?{query}" if query else "")


def _remember_nonce(key_id: str, nonce: str, timestamp: int) -> bool:
    """False when this key already used this nonce inside the window (a replay)."""
    now = utcnow()
    try:
        with runtime().db.session() as session:
            session.execute(delete(HisApiNonce).where(HisApiNonce.signed_at < now - timedelta(seconds=NONCE_KEEP_S)))
            session.add(HisApiNonce(key_id=key_id, nonce=nonce, seen_at=now,
                                    signed_at=datetime.fromtimestamp(timestamp, UTC)))
    except IntegrityError:
        return False
    return True


def authenticate_his_request() -> int:
    """The id of the clinic whose HIS signed this request, or Unauthorized."""
    key_id = request.headers.get(signing.KEY_ID_HEADER, "")
    timestamp = request.headers.get(signing.TIMESTAMP_HEADER, "")
    nonce = request.headers.get(signing.NONCE_HEADER, "")
    given = request.headers.get(signing.SIGNATURE_HEADER, "")
    problem = signing.header_problem(key_id, timestamp, nonce, given, time.time())
    if problem:
        raise _refuse(problem)
    with runtime().db.session() as session:
        row = session.execute(select(Clinic.id, Clinic.code, Clinic.his_secret)
                              .where(Clinic.his_key_id == key_id)).first()
    if row is None:
        raise _refuse("unknown key id")
    clinic_id, clinic_code, secret = row
    try:
        signing.require_secret(secret)
    except WeakSecret:
        log.error("clinic %s has an empty or short HIS secret; its HIS API calls are refused until it is replaced",
                  clinic_code)
        raise _refuse("this key cannot be used") from None
    if not signing.signature_matches(secret, given, timestamp, nonce, request.method, _signed_target(),
                                     request.get_data(cache=True)):
        raise _refuse("the signature does not match")
    if not _remember_nonce(key_id, nonce, int(timestamp)):
        log.warning("HIS API request refused: nonce replayed for key %s", key_id)
        raise Unauthorized("this nonce was already used: the request is a replay", "replayed_request")
    return clinic_id


def his_signed(view):
    """Authenticate the HIS before anything else; place it directly under @blp.route."""
    @wraps(view)
    def wrapper(*args, **kwargs):
        g.his_clinic_id = authenticate_his_request()
        return view(*args, **kwargs)

    return wrapper


def his_clinic_id() -> int:
    return g.his_clinic_id
