"""Clinic staff sign-in: argon2 password hashes, throttled logins, signed expiring tokens.

A token carries only the user id; every request re-reads the user, so a user
deactivated or moved to another role or clinic is refused or re-scoped at once.
Failed logins are counted per username, known or not (so a lockout says nothing
about which usernames exist): MAX_FAILURES within FAILURE_WINDOW locks the
username for LOCKOUT, during which even the right password is refused.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db.models import Clinic, LoginThrottle, StaffUser, StaffUserClinic
from app.db.types import utcnow
from app.domain.errors import InvalidInput, TooManyRequests, Unauthorized
from app.runtime import Runtime
from app.services.audit import record_event, record_system_event
from app.services.tokens import issue_token, read_token

log = logging.getLogger(__name__)

ADMIN_AUDIENCE = "admin"
STAFF, FINANCE, ADMIN = "staff", "finance", "admin"
ROLES = (STAFF, FINANCE, ADMIN)
MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(minutes=15)
LOCKOUT = timedelta(minutes=15)
USERNAME_MAX_LEN = 64
PASSWORD_MIN_LEN = 8

_hasher = PasswordHasher()
# Verified against when the username is unknown, so that answering takes as long as for a known one.
_UNKNOWN_USER_HASH = _hasher.hash("no such user: the password cannot match")


@dataclass(frozen=True)
class StaffPrincipal:
    user_id: int
    username: str
    role: str
    clinic_ids: tuple[int, ...]


@dataclass(frozen=True)
class StaffSession:
    token: str
    expires_in: int
    user_id: int
    username: str
    role: str
    clinic_codes: tuple[str, ...]


def normalized_username(username: str) -> str:
    return " ".join(str(username).split()).lower()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _password_matches(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# --- users ------------------------------------------------------------------------------------

def create_user(session: Session, username: str, password: str, role: str, clinic_codes: list[str], *,
                created_by: str = "cli") -> StaffUser:
    """A new active user of these clinics; InvalidInput for a taken name, weak password or unknown clinic."""
    name = normalized_username(username)
    errors: dict[str, list[str]] = {}
    if not 1 <= len(name) <= USERNAME_MAX_LEN or not name.isprintable():
        errors["username"] = [f"1 to {USERNAME_MAX_LEN} printable characters"]
    if len(password) < PASSWORD_MIN_LEN:
        errors["password"] = [f"at least {PASSWORD_MIN_LEN} characters"]
    if role not in ROLES:
        errors["role"] = [f"one of {', '.join(ROLES)}"]
    clinics = list(session.scalars(select(Clinic).where(Clinic.code.in_(clinic_codes)))) if clinic_codes else []
    unknown = sorted(set(clinic_codes) - {c.code for c in clinics})
    if not clinic_codes or unknown:
        errors["clinics"] = [f"unknown clinic codes: {', '.join(unknown)}" if unknown else "at least one clinic"]
    if not errors and session.scalar(select(StaffUser.id).where(StaffUser.username == name)) is not None:
        errors["username"] = ["already taken"]
    if errors:
        raise InvalidInput("The user cannot be created; see `errors`.", "validation_failed", errors)
    user = StaffUser(username=name, password_hash=hash_password(password), role=role, active=True)
    session.add(user)
    session.flush()
    for clinic in clinics:
        session.add(StaffUserClinic(user_id=user.id, clinic_id=clinic.id))
    record_event(session, actor_type=created_by, actor_id=None, actor_name=created_by, clinic_id=clinics[0].id,
                 action="staff_user_created", target_type="staff_user", target_id=user.id,
                 after={"username": name, "role": role, "clinic_codes": sorted(c.code for c in clinics)})
    return user


def ensure_user(session: Session, username: str, password: str, role: str, clinic: Clinic) -> bool:
    """Make sure the user exists with this role, password and clinic (for seeding); True if anything changed."""
    user = session.scalar(select(StaffUser).where(StaffUser.username == normalized_username(username)))
    if user is None:
        create_user(session, username, password, role, [clinic.code], created_by="seed")
        return True
    changed = False
    if user.role != role or not user.active:
        user.role, user.active, changed = role, True, True
    if not _password_matches(user.password_hash, password):
        user.password_hash, changed = hash_password(password), True
    if session.scalar(select(StaffUserClinic.id).where(StaffUserClinic.user_id == user.id,
                                                       StaffUserClinic.clinic_id == clinic.id)) is None:
        session.add(StaffUserClinic(user_id=user.id, clinic_id=clinic.id))
        changed = True
    if changed:
        record_system_event(session, clinic.id, "staff_user_seeded", "staff_user", user.id,
                            after={"username": user.username, "role": role})
    return changed


def seed_demo_users(session: Session, clinic: Clinic, password: str) -> int:
    """Users `admin`, `finance` and `staff` (each the role of its name) of the demo clinic; how many changed."""
    if not password:
        return 0
    return sum(ensure_user(session, role, password, role, clinic) for role in (ADMIN, FINANCE, STAFF))


def _clinics_of(session: Session, user_id: int) -> list[Clinic]:
    return list(session.scalars(select(Clinic).join(StaffUserClinic, StaffUserClinic.clinic_id == Clinic.id)
                                .where(StaffUserClinic.user_id == user_id).order_by(Clinic.id)))


# --- login --------------------------------------------------------------------------------------

def login(rt: Runtime, username: str, password: str) -> StaffSession:
    key = normalized_username(username)[:100]
    now = utcnow()
    with rt.db.session() as session:
        _refuse_if_locked(session, key, now)
        user = session.scalar(select(StaffUser).where(StaffUser.username == key, StaffUser.active.is_(True)))
        stored_hash = user.password_hash if user else _UNKNOWN_USER_HASH
    # Verification takes tens of milliseconds: outside any transaction.
    if user is None or not _password_matches(stored_hash, password):
        _record_failure(rt, key)
        raise Unauthorized("wrong username or password", "invalid_credentials")
    with rt.db.session() as session:
        _refuse_if_locked(session, key, utcnow())
        session.execute(delete(LoginThrottle).where(LoginThrottle.key == key))
        user = session.get(StaffUser, user.id)
        user.last_login_at = utcnow()
        if _hasher.check_needs_rehash(user.password_hash):
            user.password_hash = hash_password(password)
        clinics = _clinics_of(session, user.id)
        ttl = rt.settings.TOKEN_TTL_S
        token = issue_token(rt.settings.SECRET_KEY, ADMIN_AUDIENCE, {"uid": user.id})
        log.info("staff user %s signed in", user.id)
        return StaffSession(token, ttl, user.id, user.username, user.role, tuple(c.code for c in clinics))


def _refuse_if_locked(session: Session, key: str, now: datetime) -> None:
    locked_until = session.scalar(select(LoginThrottle.locked_until).where(LoginThrottle.key == key))
    if locked_until is not None and locked_until > now:
        wait_s = int((locked_until - now).total_seconds()) + 1
        raise TooManyRequests(f"too many failed sign-ins; try again in {wait_s} seconds", "login_locked",
                              details={"retry_after_s": wait_s})


def _record_failure(rt: Runtime, key: str) -> None:
    for _ in range(2):
        try:
            with rt.db.session() as session:
                _count_failure(session, key, utcnow())
            return
        except IntegrityError:
            continue  # a concurrent failure inserted the row first; count on it


def _count_failure(session: Session, key: str, now: datetime) -> None:
    row = session.scalar(select(LoginThrottle).where(LoginThrottle.key == key).with_for_update())
    if row is None:
        row = LoginThrottle(key=key, failures=0, window_started_at=now)
        session.add(row)
        session.flush()
    if row.window_started_at <= now - FAILURE_WINDOW or (row.locked_until and row.locked_until <= now):
        row.failures, row.window_started_at, row.locked_until = 0, now, None
    row.failures += 1
    if row.failures >= MAX_FAILURES and row.locked_until is None:
        row.locked_until = now + LOCKOUT
        log.warning("sign-in locked for %s after %s failures", key, row.failures)
        record_system_event(session, None, "staff_login_locked", "username", key,
                            after={"failures": row.failures, "locked_until": row.locked_until.isoformat()})


# --- per request --------------------------------------------------------------------------------

def authenticate(rt: Runtime, bearer_token: str) -> StaffPrincipal:
    claims = read_token(rt.settings.SECRET_KEY, ADMIN_AUDIENCE, bearer_token, rt.settings.TOKEN_TTL_S)
    try:
        user_id = int(claims["uid"])
    except (KeyError, TypeError, ValueError):
        raise Unauthorized("the bearer token is not valid", "invalid_token") from None
    with rt.db.session() as session:
        user = session.get(StaffUser, user_id)
        if user is None or not user.active:
            raise Unauthorized("this account is no longer active", "account_inactive")
        clinic_ids = tuple(session.scalars(select(StaffUserClinic.clinic_id)
                                           .where(StaffUserClinic.user_id == user.id)
                                           .order_by(StaffUserClinic.clinic_id)))
        return StaffPrincipal(user.id, user.username, user.role, clinic_ids)


def describe_principal(rt: Runtime, principal: StaffPrincipal) -> dict:
    """`{id, username, role, clinic_codes[]}` as the login answer shows the user."""
    with rt.db.session() as session:
        codes = [c.code for c in _clinics_of(session, principal.user_id)]
    return {"id": principal.user_id, "username": principal.username, "role": principal.role, "clinic_codes": codes}


def audit(session: Session, principal: StaffPrincipal, clinic_id: int | None, action: str, target_type: str,
          target_id, before: dict | None = None, after: dict | None = None, note: str | None = None) -> None:
    """An admin write in the audit trail, in the caller's transaction: who, when, what, before and after."""
    record_event(session, actor_type="staff", actor_id=str(principal.user_id), actor_name=principal.username,
                 clinic_id=clinic_id, action=action, target_type=target_type, target_id=target_id,
                 before=before, after=after, note=note)
