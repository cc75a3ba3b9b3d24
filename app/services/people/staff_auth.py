"""Clinic staff sign-in: argon2 password hashes, throttled logins, signed expiring revocable tokens.

A token carries the user id and the user's token version; every request re-reads the user, so a
user deactivated or moved to another role or clinic is refused or re-scoped at once, and a token
issued before the last logout, password change or deactivation is refused (`token_revoked`).
Failed logins are throttled per (username, client address) and per username (login_throttle).
Every sign-in answers in about the same time whether the username exists or not: an unknown or
inactive user's password is verified against a dummy hash of the same cost.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app import metrics
from app.db.models import Clinic, StaffUser, StaffUserClinic
from app.db.types import utcnow
from app.domain.errors import Forbidden, InvalidInput, NotFound, Unauthorized
from app.runtime import Runtime
from app.services.common.audit import record_event, record_staff_event, record_system_event
from app.services.common.principals import StaffPrincipal
from app.services.people import login_throttle
from app.services.people.login_throttle import MAX_FAILURES  # noqa: F401  (re-exported for callers and tests)
from app.services.people.tokens import issue_token, read_token

log = logging.getLogger(__name__)

ADMIN_AUDIENCE = "admin"
STAFF, FINANCE, ADMIN, OPERATOR = "staff", "finance", "admin", "operator"
# The roles of a clinic's people; an operator works for the platform and has no clinics.
CLINIC_ROLES = (STAFF, FINANCE, ADMIN)
ROLES = (*CLINIC_ROLES, OPERATOR)
USERNAME_MAX_LEN = 64
PASSWORD_MIN_LEN = 8
PASSWORD_MAX_LEN = 256

_hasher = PasswordHasher()
# Verified against when the username is unknown or inactive, so that answering takes as long as for an
# active one (made with the same hasher, so of the same cost as every current user's hash).
_UNKNOWN_USER_HASH = _hasher.hash("no such user: the password cannot match")


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
                created_by: str = "cli", actor: StaffPrincipal | None = None) -> StaffUser:
    """A new active user of these clinics (an operator: of none); InvalidInput for a taken name, weak password or
    unknown clinic. Audited as `actor`'s change, or as `created_by` (the command line, the seed)."""
    name = normalized_username(username)
    errors: dict[str, list[str]] = {}
    if not 1 <= len(name) <= USERNAME_MAX_LEN or not name.isprintable():
        errors["username"] = [f"1 to {USERNAME_MAX_LEN} printable characters"]
    if len(password) < PASSWORD_MIN_LEN:
        errors["password"] = [f"at least {PASSWORD_MIN_LEN} characters"]
    elif len(password) > PASSWORD_MAX_LEN:
        errors["password"] = [f"at most {PASSWORD_MAX_LEN} characters"]
    if role not in ROLES:
        errors["role"] = [f"one of {', '.join(ROLES)}"]
    clinics = clinics_named(session, clinic_codes, role, errors)
    if not errors and session.scalar(select(StaffUser.id).where(StaffUser.username == name)) is not None:
        errors["username"] = ["already taken"]
    if errors:
        raise InvalidInput("The user cannot be created; see `errors`.", "validation_failed", errors)
    user = StaffUser(username=name, password_hash=hash_password(password), role=role, active=True)
    session.add(user)
    session.flush()
    for clinic in clinics:
        session.add(StaffUserClinic(user_id=user.id, clinic_id=clinic.id))
    after = {"username": name, "role": role, "clinic_codes": sorted(c.code for c in clinics)}
    clinic_id = clinics[0].id if clinics else None
    if actor is not None:
        record_staff_event(session, actor, clinic_id, "staff_user_created", "staff_user", user.id, after=after)
    else:
        record_event(session, actor_type=created_by, actor_id=None, actor_name=created_by, clinic_id=clinic_id,
                     action="staff_user_created", target_type="staff_user", target_id=user.id, after=after)
    return user


def clinics_named(session: Session, clinic_codes: list[str], role: str, errors: dict) -> list[Clinic]:
    """The clinics a user of `role` is given; a problem goes into `errors["clinic_codes"]`."""
    if role == OPERATOR:
        if clinic_codes:
            errors["clinic_codes"] = ["an operator works for the platform, not for clinics: give none"]
        return []
    clinics = list(session.scalars(select(Clinic).where(Clinic.code.in_(clinic_codes)).order_by(Clinic.id))) \
        if clinic_codes else []
    unknown = sorted(set(clinic_codes) - {c.code for c in clinics})
    if not clinic_codes or unknown:
        errors["clinic_codes"] = [f"unknown clinic codes: {', '.join(unknown)}" if unknown else "at least one clinic"]
    return clinics


def ensure_user(session: Session, username: str, password: str, role: str, clinic: Clinic | None) -> bool:
    """Make sure the user exists with this role, password and clinic (none for an operator) (for seeding);
    True if anything changed."""
    user = session.scalar(select(StaffUser).where(StaffUser.username == normalized_username(username)))
    if user is None:
        create_user(session, username, password, role, [clinic.code] if clinic else [], created_by="seed")
        return True
    changed = False
    if user.role != role or not user.active:
        user.role, user.active, changed = role, True, True
    if not _password_matches(user.password_hash, password):
        user.password_hash, changed = hash_password(password), True
        user.token_version += 1  # a new password ends the sessions of the old one
    if clinic is not None and session.scalar(select(StaffUserClinic.id).where(
            StaffUserClinic.user_id == user.id, StaffUserClinic.clinic_id == clinic.id)) is None:
        session.add(StaffUserClinic(user_id=user.id, clinic_id=clinic.id))
        changed = True
    if changed:
        record_system_event(session, clinic.id if clinic else None, "staff_user_seeded", "staff_user", user.id,
                            after={"username": user.username, "role": role})
    return changed


def seed_demo_users(session: Session, clinic: Clinic, password: str) -> int:
    """Users `admin`, `finance` and `staff` (each the role of its name) of the demo clinic, and the platform's
    `operator`; how many changed."""
    if not password:
        return 0
    changed = sum(ensure_user(session, role, password, role, clinic) for role in (ADMIN, FINANCE, STAFF))
    return changed + ensure_user(session, OPERATOR, password, OPERATOR, None)


def _clinics_of(session: Session, user_id: int) -> list[Clinic]:
    return list(session.scalars(select(Clinic).join(StaffUserClinic, StaffUserClinic.clinic_id == Clinic.id)
                                .where(StaffUserClinic.user_id == user_id).order_by(Clinic.id)))


# --- login, logout, password ------------------------------------------------------------------

def login(rt: Runtime, username: str, password: str, client_address: str) -> StaffSession:
    key = normalized_username(username)[:100]
    with rt.db.session() as session:
        login_throttle.refuse_if_locked(session, key, client_address, utcnow())
        user = session.scalar(select(StaffUser).where(StaffUser.username == key))
        known = user is not None and user.active
        stored_hash = user.password_hash if known else _UNKNOWN_USER_HASH
        user_id = user.id if known else None
    # Verification takes tens of milliseconds: outside any transaction, and always done, so that an
    # unknown username is not answered sooner than a known one.
    matches = _password_matches(stored_hash, password)
    if not (known and matches):
        login_throttle.record_failure(rt, key, client_address)
        metrics.LOGIN_FAILURES.labels("staff", "invalid_credentials").inc()
        raise Unauthorized("wrong username or password", "invalid_credentials")
    with rt.db.session() as session:
        login_throttle.refuse_if_locked(session, key, client_address, utcnow())
        login_throttle.clear_address(session, key, client_address)
        user = session.get(StaffUser, user_id)
        user.last_login_at = utcnow()
        if _hasher.check_needs_rehash(user.password_hash):
            user.password_hash = hash_password(password)
        session.flush()
        log.info("staff user %s signed in", user.id)
        return _session_for(rt, session, user)


def _session_for(rt: Runtime, session: Session, user: StaffUser) -> StaffSession:
    clinics = _clinics_of(session, user.id)
    return StaffSession(_token_for(rt, user), rt.settings.TOKEN_TTL_S, user.id, user.username, user.role,
                        tuple(c.code for c in clinics))


def _token_for(rt: Runtime, user: StaffUser) -> str:
    return issue_token(rt.settings.SECRET_KEY, ADMIN_AUDIENCE, {"uid": user.id, "ver": user.token_version})


def token_for(rt: Runtime, user_id: int) -> str:
    """A token of this user as a sign-in would issue it now (for tools and tests that skip the password)."""
    with rt.db.session() as session:
        return _token_for(rt, session.get(StaffUser, user_id))


def _revoke_tokens(session: Session, user_id: int) -> None:
    session.execute(update(StaffUser).where(StaffUser.id == user_id)
                    .values(token_version=StaffUser.token_version + 1))


def logout(rt: Runtime, principal: StaffPrincipal) -> None:
    """Revoke every token of this user (this one included): the user signs in again everywhere."""
    with rt.db.session() as session:
        _revoke_tokens(session, principal.user_id)
        record_staff_event(session, principal, _first_clinic(principal), "staff_logout", "staff_user",
                           principal.user_id)
    log.info("staff user %s signed out", principal.user_id)


def change_password(rt: Runtime, principal: StaffPrincipal, current_password: str, new_password: str,
                    client_address: str) -> StaffSession:
    """Set a new password and revoke every earlier token; returns a fresh session.

    A wrong current password counts as a failed sign-in of this user from this address (a stolen
    token cannot be used to guess the password faster than the sign-in allows).
    """
    if not PASSWORD_MIN_LEN <= len(new_password) <= PASSWORD_MAX_LEN:
        raise InvalidInput("The new password is not acceptable; see `errors`.", "validation_failed",
                           {"new_password": [f"{PASSWORD_MIN_LEN} to {PASSWORD_MAX_LEN} characters"]})
    with rt.db.session() as session:
        login_throttle.refuse_if_locked(session, principal.username, client_address, utcnow())
        stored_hash = session.scalar(select(StaffUser.password_hash).where(StaffUser.id == principal.user_id))
    if not _password_matches(stored_hash, current_password):
        login_throttle.record_failure(rt, principal.username, client_address)
        raise Forbidden("the current password is wrong", "wrong_current_password")
    new_hash = hash_password(new_password)
    with rt.db.session() as session:
        user = session.scalar(select(StaffUser).where(StaffUser.id == principal.user_id).with_for_update())
        user.password_hash, user.password_changed_at = new_hash, utcnow()
        user.token_version += 1
        record_staff_event(session, principal, _first_clinic(principal), "staff_password_changed", "staff_user",
                           user.id,
                           note="every earlier token of this user is revoked")
        session.flush()
        log.info("staff user %s changed their password", user.id)
        return _session_for(rt, session, user)


def set_active(session: Session, actor: StaffPrincipal, user_id: int, active: bool) -> StaffUser:
    """Activate or deactivate a user; deactivation revokes every token of the user, so that a later
    reactivation does not bring the old tokens back. Audited as the actor's change."""
    user = session.scalar(select(StaffUser).where(StaffUser.id == user_id).with_for_update())
    if user is None:
        raise NotFound(f"no staff user {user_id}", "user_not_found")
    before = {"active": user.active}
    if user.active and not active:
        user.token_version += 1
    user.active = active
    record_staff_event(session, actor, _first_clinic(actor),
                       "staff_user_activated" if active else "staff_user_deactivated",
                       "staff_user", user.id, before=before, after={"active": active})
    return user


def _first_clinic(principal: StaffPrincipal) -> int | None:
    return principal.clinic_ids[0] if principal.clinic_ids else None


# --- per request --------------------------------------------------------------------------------

def authenticate(rt: Runtime, bearer_token: str) -> StaffPrincipal:
    claims = read_token(rt.settings.SECRET_KEY, ADMIN_AUDIENCE, bearer_token, rt.settings.TOKEN_TTL_S)
    try:
        user_id, version = int(claims["uid"]), int(claims["ver"])
    except (KeyError, TypeError, ValueError):
        raise Unauthorized("the bearer token is not valid", "invalid_token") from None
    with rt.db.session() as session:
        user = session.get(StaffUser, user_id)
        if user is None or not user.active:
            raise Unauthorized("this account is no longer active", "account_inactive")
        if user.token_version != version:
            raise Unauthorized("this session was ended (logout, password change or deactivation); sign in again",
                               "token_revoked")
        clinic_ids = tuple(session.scalars(select(StaffUserClinic.clinic_id)
                                           .where(StaffUserClinic.user_id == user.id)
                                           .order_by(StaffUserClinic.clinic_id)))
        return StaffPrincipal(user.id, user.username, user.role, clinic_ids)


def describe_principal(rt: Runtime, principal: StaffPrincipal) -> dict:
    """`{id, username, role, clinic_codes[]}` as the login answer shows the user."""
    with rt.db.session() as session:
        codes = [c.code for c in _clinics_of(session, principal.user_id)]
    return {"id": principal.user_id, "username": principal.username, "role": principal.role, "clinic_codes": codes}
