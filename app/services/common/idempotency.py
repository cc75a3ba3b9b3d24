"""Idempotency-Key on creating POSTs: a repeat with the same key and body gets the first answer.

The key is claimed in its own transaction before the work starts, so two
concurrent repeats cannot both do the work; the same key with another body is
a 409. Business refusals are remembered like successes; a refusal of the moment
(an outage, 5xx; a rate limit, 429) is not, so the client's retry can go through.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from app.db.models import IdempotencyRecord
from app.domain.errors import Conflict, DomainError, InvalidInput
from app.runtime import Runtime

MAX_KEY_LENGTH = 200


def _fingerprint(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _replay(record: IdempotencyRecord, fingerprint: str) -> tuple[int, dict]:
    if record.request_hash != fingerprint:
        raise Conflict("this Idempotency-Key was used with a different request", "idempotency_key_reused")
    if record.status_code is None:
        raise Conflict("a request with this Idempotency-Key is still being processed", "request_in_progress")
    return record.status_code, json.loads(record.response_body)


def run(rt: Runtime, scope: str, key: str | None, payload: dict,
        work: Callable[[], tuple[int, dict]]) -> tuple[int, dict]:
    if key is None:
        return work()
    if not key.strip() or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidInput(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters",
                           "invalid_idempotency_key")
    fingerprint = _fingerprint(payload)
    try:
        with rt.db.session() as session:
            existing = session.scalar(select(IdempotencyRecord).where(IdempotencyRecord.scope == scope,
                                                                      IdempotencyRecord.key == key))
            if existing is not None:
                return _replay(existing, fingerprint)
            session.add(IdempotencyRecord(scope=scope, key=key, request_hash=fingerprint))
    except IntegrityError:
        with rt.db.session() as session:
            return _replay(session.scalar(select(IdempotencyRecord).where(IdempotencyRecord.scope == scope,
                                                                          IdempotencyRecord.key == key)),
                           fingerprint)
    try:
        status, body = work()
    except DomainError as exc:
        if exc.retry_later:
            _release(rt, scope, key)
            raise
        status, body = exc.http_status, {"message": exc.message, "error": exc.code}
    except BaseException:
        _release(rt, scope, key)
        raise
    with rt.db.session() as session:
        record = session.scalar(select(IdempotencyRecord).where(IdempotencyRecord.scope == scope,
                                                                IdempotencyRecord.key == key))
        record.status_code, record.response_body = status, json.dumps(body, ensure_ascii=False, default=str)
    return status, body


def _release(rt: Runtime, scope: str, key: str) -> None:
    with rt.db.session() as session:
        session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.scope == scope,
                                                        IdempotencyRecord.key == key,
                                                        IdempotencyRecord.status_code.is_(None)))
