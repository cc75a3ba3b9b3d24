"""Settlement coupons: listed with their state and expiry, used once.

A coupon is `unused` until it is used or its last valid day (`expires_on`, Asia/Shanghai) has passed; the
state shown is computed from the date, so a coupon is expired on the first day after it whether or not
anything wrote that down. Using one is a conditional update that also requires it to be still valid, so of
two uses one wins, and an expired coupon is never used.
"""
from __future__ import annotations

import re
from datetime import date, datetime

from sqlalchemy import and_, func, or_, select, true
from sqlalchemy.orm import Session

from app.db.models import Clinic, Coupon
from app.db.types import utcnow
from app.domain.errors import Conflict, InvalidInput, NotFound
from app.domain.settlement import SHANGHAI, CouponStatus, coupon_state
from app.runtime import Runtime
from app.services.common.audit import record_staff_event
from app.services.common.principals import StaffPrincipal
from app.services.common.staff_scope import clinic_ids_in_scope
from app.services.common.status import set_status

COUPON_CODE = re.compile(r"CP[0-9A-F]{16}")
UNUSED, USED, EXPIRED = CouponStatus.UNUSED, CouponStatus.USED, CouponStatus.EXPIRED


def _today(now: datetime) -> date:
    return now.astimezone(SHANGHAI).date()


def coupon_view(coupon: Coupon, clinic_code: str, today: date) -> dict:
    return {"code": coupon.code, "clinic_code": clinic_code, "settlement_id": coupon.settlement_id,
            "value_fen": coupon.value_fen, "issued_on": coupon.issued_on, "expires_on": coupon.expires_on,
            "status": coupon_state(coupon.status, coupon.expires_on, today), "used_at": coupon.used_at,
            "used_by": coupon.used_by}


def _in_state(state: str, today: date):
    if state == UNUSED:
        return and_(Coupon.status == str(UNUSED), Coupon.expires_on >= today)
    if state == EXPIRED:
        return or_(Coupon.status == str(EXPIRED), and_(Coupon.status == str(UNUSED), Coupon.expires_on < today))
    if state == USED:
        return Coupon.status == str(USED)
    raise InvalidInput(f"status must be one of {', '.join(CouponStatus)}", "invalid_status")


def _scope(session: Session, principal: StaffPrincipal, clinic_code: str | None):
    if principal.platform_wide:
        if clinic_code is None:
            return true()
        return Coupon.clinic_id.in_(select(Clinic.id).where(Clinic.code == clinic_code))
    return Coupon.clinic_id.in_(clinic_ids_in_scope(session, principal.clinic_ids, clinic_code))


def list_coupons(rt: Runtime, principal: StaffPrincipal, status: str | None = None, clinic_code: str | None = None,
                 limit: int = 50, offset: int = 0, now: datetime | None = None) -> dict:
    """Coupons of the user's clinics (the operator: of every clinic), newest first, in a state when asked."""
    today = _today(now or utcnow())
    with rt.db.session() as session:
        conditions = [_scope(session, principal, clinic_code)]
        if status is not None:
            conditions.append(_in_state(status, today))
        total = session.scalar(select(func.count()).select_from(Coupon).where(*conditions))
        rows = session.execute(select(Coupon, Clinic.code).join(Clinic, Clinic.id == Coupon.clinic_id)
                               .where(*conditions).order_by(Coupon.id.desc()).limit(limit).offset(offset))
        return {"items": [coupon_view(coupon, code, today) for coupon, code in rows], "total": total,
                "limit": limit, "offset": offset}


def use_coupon(rt: Runtime, principal: StaffPrincipal, code: str, now: datetime | None = None) -> dict:
    """Use the clinic's coupon `code`: once, and only while it is valid."""
    now = now or utcnow()
    today = _today(now)
    with rt.db.session() as session:
        row = None
        if COUPON_CODE.fullmatch(code or ""):
            row = session.execute(select(Coupon, Clinic.code).join(Clinic, Clinic.id == Coupon.clinic_id)
                                  .where(Coupon.code == code, Coupon.clinic_id.in_(principal.clinic_ids))).first()
        if row is None:
            raise NotFound(f"no coupon {code} of your clinics", "coupon_not_found")
        coupon, clinic_code = row
        state = coupon_state(coupon.status, coupon.expires_on, today)
        used = state == UNUSED and set_status(
            session, coupon, USED, reason="used", actor=f"staff:{principal.username}",
            where=(Coupon.expires_on >= today,), used_at=now, used_by=principal.username)
        if not used:
            session.refresh(coupon)
            state = coupon_state(coupon.status, coupon.expires_on, today)
            if state == EXPIRED:
                raise Conflict(f"coupon {code} expired on {coupon.expires_on.isoformat()}", "coupon_expired")
            raise Conflict(f"coupon {code} was used already"
                           + (f" ({coupon.used_at.astimezone(SHANGHAI):%Y-%m-%d %H:%M}, {coupon.used_by})"
                              if coupon.used_at else ""), "coupon_already_used")
        record_staff_event(session, principal, coupon.clinic_id, "coupon.used", "coupon", coupon.id,
                           before={"status": str(UNUSED)}, after={"status": str(USED), "code": coupon.code,
                                                                   "value_fen": coupon.value_fen})
        return coupon_view(coupon, clinic_code, today)
