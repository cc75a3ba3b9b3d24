"""Failed staff sign-ins, counted where they come from, so that nobody can lock a colleague out.

Two counters per failure, both kept in the database (they hold without Redis):
- per (username, client address): MAX_FAILURES within FAILURE_WINDOW lock that username *from that
  address* for LOCKOUT. An attacker guessing from elsewhere locks only themselves out; the owner at
  their own desk still signs in.
- per username across all addresses: USERNAME_MAX_FAILURES (far above MAX_FAILURES) within the
  window lock the username everywhere, against guessing spread over many addresses.
Unknown usernames are counted the same way, so a lockout says nothing about which usernames exist.
An admin may clear both counters (`clear`); a successful sign-in clears its own address's counter.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import metrics
from app.db.models import LoginThrottle
from app.db.types import utcnow
from app.domain.errors import TooManyRequests
from app.runtime import Runtime
from app.services.common.audit import record_system_event

log = logging.getLogger(__name__)

MAX_FAILURES = 5
USERNAME_MAX_FAILURES = 50
FAILURE_WINDOW = timedelta(minutes=15)
LOCKOUT = timedelta(minutes=15)
ADDRESS_MAX_LEN = 64


def address_key(username: str, address: str) -> str:
    return f"addr:{username} {address[:ADDRESS_MAX_LEN]}"


def username_key(username: str) -> str:
    return f"name:{username}"


def refuse_if_locked(session: Session, username: str, address: str, now: datetime) -> None:
    """TooManyRequests `login_locked` while this username is locked from this address or everywhere."""
    locked_until = session.scalar(
        select(LoginThrottle.locked_until)
        .where(LoginThrottle.key.in_([address_key(username, address), username_key(username)]),
               LoginThrottle.locked_until > now)
        .order_by(LoginThrottle.locked_until.desc()).limit(1))
    if locked_until is not None:
        wait_s = int((locked_until - now).total_seconds()) + 1
        metrics.LOGIN_FAILURES.labels("staff", "login_locked").inc()
        raise TooManyRequests(f"too many failed sign-ins; try again in {wait_s} seconds", "login_locked",
                              details={"retry_after_s": wait_s}, retry_after_s=wait_s)


def record_failure(rt: Runtime, username: str, address: str) -> None:
    for _ in range(3):
        try:
            with rt.db.session() as session:
                now = utcnow()
                _count(session, address_key(username, address), username, MAX_FAILURES, now, address=address)
                _count(session, username_key(username), username, USERNAME_MAX_FAILURES, now)
            return
        except IntegrityError:
            continue  # a concurrent failure inserted a row first; count on it


def clear_address(session: Session, username: str, address: str) -> None:
    session.execute(delete(LoginThrottle).where(LoginThrottle.key == address_key(username, address)))


def clear(session: Session, username: str) -> int:
    """Forget every failure of this username (an admin's unlock); how many counters there were."""
    return session.execute(delete(LoginThrottle).where(LoginThrottle.username == username)).rowcount or 0


def is_locked(session: Session, username: str, now: datetime) -> bool:
    """Whether the username is locked from any address."""
    return session.scalar(select(LoginThrottle.id).where(LoginThrottle.username == username,
                                                         LoginThrottle.locked_until > now).limit(1)) is not None


def _count(session: Session, key: str, username: str, limit: int, now: datetime, address: str | None = None) -> None:
    row = session.scalar(select(LoginThrottle).where(LoginThrottle.key == key).with_for_update())
    if row is None:
        row = LoginThrottle(key=key, username=username, failures=0, window_started_at=now)
        session.add(row)
        session.flush()
    if row.window_started_at <= now - FAILURE_WINDOW or (row.locked_until and row.locked_until <= now):
        row.failures, row.window_started_at, row.locked_until = 0, now, None
    row.failures += 1
    if row.failures >= limit and row.locked_until is None:
        row.locked_until = now + LOCKOUT
        scope = "from one address" if address is not None else "from every address"
        log.warning("sign-in locked for %s %s after %s failures", username, scope, row.failures)
        record_system_event(session, None, "staff_login_locked", "username", username,
                            after={"failures": row.failures, "locked_until": row.locked_until.isoformat(),
                                   "scope": "address" if address is not None else "username",
                                   **({"address": address[:ADDRESS_MAX_LEN]} if address is not None else {})})
