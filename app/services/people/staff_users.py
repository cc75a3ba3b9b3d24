"""Staff users as admins and operators manage them: list, create, change role and clinics, (de)activate, reset a
password, clear a lockout.

Who manages whom:
- an admin manages the staff, finance and admin users all of whose clinics are the admin's, and gives them only
  the admin's clinics (a user who also works for a clinic the admin does not run is not theirs);
- an operator manages the admin users of any clinic. Operators themselves are made and changed with the command
  line (`flask --app wsgi user create --role operator`), so a stolen operator session cannot mint more of them;
- nobody changes their own role, deactivates themselves or resets their own password here (POST /auth/password
  asks for the current one).
Anyone else's user is 404, as if it did not exist. Deactivation and a password reset end every session of the
user (token_version); a role or clinic change takes effect on the user's next request. Every change is audited.
"""
from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.db.models import Clinic, StaffUser, StaffUserClinic
from app.db.types import utcnow
from app.domain.errors import Forbidden, InvalidInput, NotFound
from app.runtime import Runtime
from app.services.common.audit import record_staff_event
from app.services.common.principals import StaffPrincipal
from app.services.people import login_throttle
from app.services.people.staff_auth import (
    ADMIN,
    CLINIC_ROLES,
    OPERATOR,
    PASSWORD_MAX_LEN,
    PASSWORD_MIN_LEN,
    clinics_named,
    create_user,
    hash_password,
    set_active,
)

MAX_USER_ID = 2**31 - 1


def _roles_managed_by(actor: StaffPrincipal) -> tuple[str, ...]:
    return (ADMIN,) if actor.role == OPERATOR else CLINIC_ROLES


def _clinic_ids(session: Session, user_id: int) -> set[int]:
    return set(session.scalars(select(StaffUserClinic.clinic_id).where(StaffUserClinic.user_id == user_id)))


def _manages(actor: StaffPrincipal, role: str, clinic_ids: set[int]) -> bool:
    if role not in _roles_managed_by(actor):
        return False
    return actor.role == OPERATOR or (bool(clinic_ids) and clinic_ids <= set(actor.clinic_ids))


def _manageable(session: Session, actor: StaffPrincipal, user_id: int, *, lock: bool = False) -> StaffUser:
    user = None
    if 0 < user_id <= MAX_USER_ID:
        query = select(StaffUser).where(StaffUser.id == user_id)
        user = session.scalar(query.with_for_update() if lock else query)
    if user is None or not _manages(actor, user.role, _clinic_ids(session, user.id)):
        raise NotFound(f"no staff user {user_id} among yours", "user_not_found")
    return user


def user_view(session: Session, user: StaffUser) -> dict:
    codes = list(session.scalars(select(Clinic.code).join(StaffUserClinic, StaffUserClinic.clinic_id == Clinic.id)
                                 .where(StaffUserClinic.user_id == user.id).order_by(Clinic.code)))
    return {"id": user.id, "username": user.username, "role": user.role, "clinic_codes": codes,
            "active": user.active, "created_at": user.created_at, "last_login_at": user.last_login_at,
            "locked": login_throttle.is_locked(session, user.username, utcnow())}


def _audited(session: Session, user: StaffUser) -> dict:
    view = user_view(session, user)
    return {name: view[name] for name in ("username", "role", "clinic_codes", "active")}


def list_users(rt: Runtime, actor: StaffPrincipal) -> list[dict]:
    """The users the actor manages, by username."""
    with rt.db.session() as session:
        users = session.scalars(select(StaffUser).where(StaffUser.role.in_(_roles_managed_by(actor)))
                                .order_by(StaffUser.username))
        return [user_view(session, user) for user in users if _manages(actor, user.role, _clinic_ids(session, user.id))]


def _given_clinics(session: Session, actor: StaffPrincipal, role: str, codes: list[str]) -> list[Clinic]:
    """The clinics named, when the actor may give them to a user of `role`."""
    if role not in _roles_managed_by(actor):
        raise Forbidden(f"a {actor.role} may give users only the roles {', '.join(_roles_managed_by(actor))}",
                        "role_not_assignable")
    if actor.role != OPERATOR:
        yours = set(session.scalars(select(Clinic.code).where(Clinic.code.in_(codes),
                                                              Clinic.id.in_(actor.clinic_ids)))) if codes else set()
        strangers = sorted(set(codes) - yours)
        if strangers:
            # As for any other clinic's data: not found among yours, whether it exists or not.
            raise NotFound(f"no clinic {strangers[0]} of yours", "clinic_not_found")
    errors: dict[str, list[str]] = {}
    clinics = clinics_named(session, codes, role, errors)
    if errors:
        raise InvalidInput("The user's clinics are not acceptable; see `errors`.", "validation_failed", errors)
    return clinics


def create(rt: Runtime, actor: StaffPrincipal, data: dict) -> dict:
    with rt.db.session() as session:
        _given_clinics(session, actor, data["role"], data["clinic_codes"])
        user = create_user(session, data["username"], data["password"], data["role"], data["clinic_codes"],
                           actor=actor)
        if data.get("active") is False:
            set_active(session, actor, user.id, False)
        session.flush()
        return user_view(session, user)


def update(rt: Runtime, actor: StaffPrincipal, user_id: int, data: dict) -> dict:
    """Change `role`, `clinic_codes`, `active`, `password` (a reset: every session of the user ends)."""
    with rt.db.session() as session:
        user = _manageable(session, actor, user_id, lock=True)
        own = user.id == actor.user_id
        if own and "role" in data and data["role"] != user.role:
            raise Forbidden("nobody changes their own role", "own_role")
        if own and data.get("active") is False:
            raise Forbidden("nobody deactivates themselves", "own_account")
        if own and "password" in data:
            # A reset needs no current password: a stolen session must not be able to take the account over.
            raise Forbidden("change your own password with POST /auth/password (it asks for the current one)",
                            "own_password")
        before = _audited(session, user)
        role = data.get("role", user.role)
        if "role" in data or "clinic_codes" in data:
            codes = data.get("clinic_codes", before["clinic_codes"])
            clinics = _given_clinics(session, actor, role, codes)
            user.role = role
            session.execute(delete(StaffUserClinic).where(StaffUserClinic.user_id == user.id))
            session.add_all([StaffUserClinic(user_id=user.id, clinic_id=c.id) for c in clinics])
        note = None
        if "password" in data:
            if not PASSWORD_MIN_LEN <= len(data["password"]) <= PASSWORD_MAX_LEN:
                raise InvalidInput("The password is not acceptable; see `errors`.", "validation_failed",
                                   {"password": [f"{PASSWORD_MIN_LEN} to {PASSWORD_MAX_LEN} characters"]})
            user.password_hash, user.password_changed_at = hash_password(data["password"]), utcnow()
            user.token_version += 1
            note = "password reset: every session of the user is ended"
        session.flush()
        if "active" in data and data["active"] != user.active:
            set_active(session, actor, user.id, data["active"])
        after = _audited(session, user)
        if after != before or note:
            record_staff_event(session, actor, _audit_clinic(session, user, actor), "staff_user_updated",
                               "staff_user", user.id, before=before, after=after, note=note)
        return user_view(session, user)


def unlock(rt: Runtime, actor: StaffPrincipal, user_id: int) -> dict:
    """Clear a managed user's failed sign-ins from every address, ending a lockout at once."""
    with rt.db.session() as session:
        user = _manageable(session, actor, user_id)
        was_locked = login_throttle.is_locked(session, user.username, utcnow())
        cleared = login_throttle.clear(session, user.username)
        record_staff_event(session, actor, _audit_clinic(session, user, actor), "staff_user_unlocked", "staff_user",
                           user.id, before={"locked": was_locked, "failure_counters": cleared},
                           after={"locked": False})
        return {"id": user.id, "username": user.username, "was_locked": was_locked}


def _audit_clinic(session: Session, user: StaffUser, actor: StaffPrincipal) -> int | None:
    """The clinic an event about this user is filed under (the admins of that clinic see it)."""
    ids = _clinic_ids(session, user.id)
    return min(ids) if ids else (actor.clinic_ids[0] if actor.clinic_ids else None)
