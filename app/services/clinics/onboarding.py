"""Clinics as the platform operator sets them up: create, rename, deactivate; connect and check the HIS.

Every change is an audit event with before and after (the HIS secret as its fingerprint only). The HIS check is
a real signed call through the Runtime's HIS client: the lookup of a card that cannot exist. A `card_not_found`
answer proves the address is this HIS and that it accepted our key; anything else says what is wrong.
"""
from __future__ import annotations

import re
import secrets

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db.models import Clinic, MerchantAccount
from app.db.types import utcnow
from app.domain.errors import Conflict, InvalidInput
from app.domain.secrets import HIS_SECRET_MIN_LENGTH, require_secret
from app.his.base import (
    HisAuthFailed,
    HisNotFound,
    HisRejected,
    HisUnavailable,
    HisUnreachable,
    HisUnrecognised,
)
from app.runtime import Runtime
from app.services.clinics.his_connection import his_client
from app.services.clinics.merchants import PLATFORM_CODE, get_clinic
from app.services.clinics.shapes import (
    CHECK_DETAIL_MAX,
    audited_check,
    last_check,
    require_base_url,
    secret_state,
)
from app.services.common.audit import record_staff_event
from app.services.common.principals import StaffPrincipal

CODE_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")
KEY_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,100}")
RESERVED_CODES = frozenset({PLATFORM_CODE})


def clinic_view(session: Session, clinic: Clinic) -> dict:
    apps = session.scalar(select(func.count(MerchantAccount.id)).where(MerchantAccount.clinic_id == clinic.id,
                                                                       MerchantAccount.active.is_(True)))
    return {"code": clinic.code, "name": clinic.name, "active": clinic.active, "created_at": clinic.created_at,
            "active_channel_apps": apps,
            "his": {"base_url": clinic.his_base_url, "key_id": clinic.his_key_id,
                    "secret": secret_state(clinic.his_secret),
                    "last_check": last_check(clinic.his_checked_at, clinic.his_check_ok, clinic.his_check_detail)}}


def _audited(clinic: Clinic) -> dict:
    """A clinic as its audit events show it: the HIS secret as its fingerprint."""
    return {"name": clinic.name, "active": clinic.active, "his_base_url": clinic.his_base_url,
            "his_key_id": clinic.his_key_id, "his_secret": secret_state(clinic.his_secret)}


def list_clinics(rt: Runtime) -> list[dict]:
    with rt.db.session() as session:
        return [clinic_view(session, clinic) for clinic in session.scalars(select(Clinic).order_by(Clinic.id))]


def get_clinic_view(rt: Runtime, code: str) -> dict:
    with rt.db.session() as session:
        return clinic_view(session, get_clinic(session, code))


def create_clinic(rt: Runtime, actor: StaffPrincipal, code: str, name: str) -> dict:
    """A new active clinic without a HIS or channel apps yet (it cannot take money until they are set)."""
    if not CODE_PATTERN.fullmatch(code) or code.lower() in RESERVED_CODES:
        raise InvalidInput("the clinic code is not acceptable", "validation_failed",
                           {"code": ["1-32 of A-Z a-z 0-9 _ -, starting with a letter or digit; not `platform`"]})
    try:
        with rt.db.session() as session:
            if session.scalar(select(Clinic.id).where(func.lower(Clinic.code) == code.lower())) is not None:
                raise Conflict(f"clinic code {code} is taken", "clinic_code_taken")
            clinic = Clinic(code=code, name=name.strip(), active=True)
            session.add(clinic)
            session.flush()
            record_staff_event(session, actor, clinic.id, "clinic_created", "clinic", clinic.code,
                               after=_audited(clinic))
            return clinic_view(session, clinic)
    except IntegrityError:
        raise Conflict(f"clinic code {code} is taken", "clinic_code_taken") from None


def update_clinic(rt: Runtime, actor: StaffPrincipal, code: str, *, name: str | None = None,
                  active: bool | None = None) -> dict:
    """Rename or (de)activate. A deactivated clinic takes no new logins, orders or schedules; money already in
    flight (notifications, refunds, reconciliation) settles as usual."""
    with rt.db.session() as session:
        clinic = session.scalar(select(Clinic).where(Clinic.code == code).with_for_update())
        if clinic is None:
            get_clinic(session, code)  # raises clinic_not_found
        before = _audited(clinic)
        if name is not None:
            clinic.name = name.strip()
        if active is not None:
            clinic.active = active
        session.flush()
        action = "clinic_updated"
        if active is not None and active != before["active"]:
            action = "clinic_activated" if active else "clinic_deactivated"
        record_staff_event(session, actor, clinic.id, action, "clinic", clinic.code, before=before,
                           after=_audited(clinic))
        return clinic_view(session, clinic)


def set_his(rt: Runtime, actor: StaffPrincipal, code: str, base_url: str, key_id: str, secret: str) -> dict:
    """Connect the clinic's HIS: where we call it, and the key pair both directions sign with. The secret is
    write-only; the last check is cleared (check again)."""
    base_url = require_base_url(rt, "base_url", base_url)
    if not KEY_ID_PATTERN.fullmatch(key_id):
        raise InvalidInput("the HIS key id is not acceptable", "validation_failed",
                           {"key_id": ["1-100 of A-Z a-z 0-9 . _ -"]})
    require_secret("secret", secret, HIS_SECRET_MIN_LENGTH)
    try:
        with rt.db.session() as session:
            clinic = session.scalar(select(Clinic).where(Clinic.code == code).with_for_update())
            if clinic is None:
                get_clinic(session, code)
            taken = session.scalar(select(Clinic.code).where(Clinic.his_key_id == key_id, Clinic.id != clinic.id))
            if taken is not None:
                raise Conflict("another clinic's HIS uses this key id", "his_key_id_taken")
            before = _audited(clinic)
            clinic.his_base_url, clinic.his_key_id, clinic.his_secret = base_url, key_id, secret
            clinic.his_checked_at = clinic.his_check_ok = clinic.his_check_detail = None
            session.flush()
            record_staff_event(session, actor, clinic.id, "clinic_his_set", "clinic", clinic.code, before=before,
                               after=_audited(clinic))
            return clinic_view(session, clinic)
    except IntegrityError:
        raise Conflict("another clinic's HIS uses this key id", "his_key_id_taken") from None


def _probe(rt: Runtime, clinic: Clinic) -> tuple[bool, str]:
    """(ok, what the HIS's answer to a signed lookup of a card that cannot exist shows)."""
    if not clinic.his_base_url:
        return False, "no HIS connection is set for this clinic"
    card_no = f"CHECK-{secrets.token_hex(6)}"
    try:
        his_client(rt, clinic).get_card(card_no)
    except HisNotFound as exc:
        return True, f"the HIS answered and accepted our key (a signed lookup of card {card_no} answered {exc.code})"
    except HisRejected as exc:
        return False, (f"the HIS accepted our key but answered {exc.status} {exc.code} to a card lookup, where "
                       "card_not_found was expected: is this the HIS API root?")
    except HisAuthFailed as exc:
        return False, f"the HIS refused our key: {exc}"
    except HisUnreachable as exc:
        return False, f"unreachable: {exc}"
    except HisUnrecognised as exc:
        return False, f"this address does not answer like a HIS: {exc}"
    except HisUnavailable as exc:
        return False, f"the HIS answered with a failure of its own: {exc}"
    return True, f"the HIS answered and accepted our key (card {card_no} exists there)"


def check_his(rt: Runtime, actor: StaffPrincipal, code: str) -> dict:
    """`{ok, detail, checked_at}` from a real signed call to the clinic's HIS; recorded on the clinic and audited."""
    with rt.db.session() as session:
        clinic = get_clinic(session, code)
        session.expunge(clinic)
    ok, detail = _probe(rt, clinic)  # outside any transaction: it may take the HIS timeout
    detail = detail[:CHECK_DETAIL_MAX]
    now = utcnow()
    with rt.db.session() as session:
        clinic = get_clinic(session, code)
        before = audited_check(clinic.his_checked_at, clinic.his_check_ok, clinic.his_check_detail)
        clinic.his_checked_at, clinic.his_check_ok, clinic.his_check_detail = now, ok, detail
        record_staff_event(session, actor, clinic.id, "clinic_his_checked", "clinic", clinic.code,
                           before={"last_check": before}, after={"last_check": audited_check(now, ok, detail)})
    return {"ok": ok, "detail": detail, "checked_at": now}
