"""The front desk's bookings: list, confirm, mark no-show, reschedule, cancel.

Confirming binds a paid booking to the patient who will come (an existing patient
of the clinic, or a new one: two patients may share a phone) and the agreed time;
a booked order may be confirmed again to change either. Rescheduling moves a
no-show to today or later, after which it can be redeemed. The HIS registration
follows both through `registration_sync` (revert what the HIS holds, then
register anew, in that order). Cancelling refunds in full through
`cancellations.cancel_paid_booking`, which reverts the registration first.

Every change is a conditional status move (`orders.move`) on the locked
order and is audited with the staff user, before and after.
"""
from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload

from app.db.models import Order, Patient, Slot
from app.db.types import utcnow
from app.domain import orders as o
from app.domain.errors import Conflict, InvalidInput, InvalidTransition
from app.runtime import Runtime
from app.services.booking import cancellations, placing, registration_sync
from app.services.booking.desk_views import staff_booking_view
from app.services.booking.staff_patients import patient_for_booking
from app.services.common.audit import record_staff_event
from app.services.common.principals import StaffPrincipal
from app.services.common.staff_scope import SHANGHAI, clinic_ids_in_scope, scoped_booking, shanghai_date
from app.services.orders import move

DEFAULT_APPOINTMENT_LENGTH = timedelta(hours=1)
# What staff see without a status filter: bookings whose money arrived, in every later state.
LISTED_STATUSES = (o.PAID, o.BOOKED, o.REDEEMED, o.NO_SHOW, o.RESCHEDULED, o.REFUNDING, o.PARTIALLY_REFUNDED,
                   o.REFUNDED)
PHONE_TAIL = re.compile(r"[0-9]{4}")


def actor_of(principal: StaffPrincipal) -> str:
    return f"staff:{principal.username}"


def snapshot(order: Order) -> dict:
    return {"status": order.status, "patient_id": order.patient_id,
            "appointment_at": order.appointment_at.isoformat() if order.appointment_at else None}


def appointment_length(session: Session, order: Order) -> timedelta:
    slot = session.get(Slot, order.slot_id) if order.slot_id else None
    return slot.ends_at - slot.starts_at if slot else DEFAULT_APPOINTMENT_LENGTH


def _require_not_over(session: Session, order: Order, appointment_at: datetime) -> None:
    if appointment_at + appointment_length(session, order) <= utcnow():
        raise InvalidInput("that appointment would already be over; choose a time from now on",
                           "appointment_in_past", {"appointment_at": ["already over"]})


# --- reading ------------------------------------------------------------------------------------

def _matching(q: str, clinic_ids: tuple[int, ...]):
    """What a person at the desk types: the order number (or its beginning), part of the patient's name, or
    the last 4 digits of the patient's phone."""
    q = q.strip()
    patient = [Patient.name.contains(q, autoescape=True)]
    if PHONE_TAIL.fullmatch(q):
        patient.append(Patient.phone.endswith(q))
    return or_(Order.order_no.startswith(q.upper(), autoescape=True),
               Order.patient_id.in_(select(Patient.id).where(Patient.clinic_id.in_(clinic_ids), or_(*patient))))


def list_bookings(rt: Runtime, scope: tuple[int, ...], *, status: str | None = None, day: date | None = None,
                  channel: str | None = None, clinic_code: str | None = None, q: str | None = None, limit: int = 50,
                  offset: int = 0) -> dict:
    """`{items, total, limit, offset}`; `day` is the appointment's Asia/Shanghai date; `q` searches (see
    `_matching`)."""
    with rt.db.session() as session:
        clinic_ids = clinic_ids_in_scope(session, scope, clinic_code)
        where = [Order.type == o.BOOKING, Order.clinic_id.in_(clinic_ids),
                 Order.status == status if status else Order.status.in_(LISTED_STATUSES)]
        if channel:
            where.append(Order.channel == channel)
        if q and q.strip():
            where.append(_matching(q, clinic_ids))
        if day:
            starts = datetime.combine(day, time.min, SHANGHAI)
            where += [Order.appointment_at >= starts, Order.appointment_at < starts + timedelta(days=1)]
        total = session.scalar(select(func.count(Order.id)).where(*where))
        rows = session.scalars(select(Order).where(*where).options(selectinload(Order.payments))
                               .order_by(Order.appointment_at, Order.id).limit(limit).offset(offset))
        return {"items": [staff_booking_view(session, order) for order in rows], "total": total, "limit": limit,
                "offset": offset}


def get_booking(rt: Runtime, scope: tuple[int, ...], order_no: str) -> dict:
    with rt.db.session() as session:
        return staff_booking_view(session, scoped_booking(session, scope, order_no))


# --- changing -----------------------------------------------------------------------------------

def confirm(rt: Runtime, principal: StaffPrincipal, order_no: str, *, appointment_at: datetime,
            patient_id: int | None = None, new_patient: dict | None = None) -> dict:
    if (patient_id is None) == (new_patient is None):
        raise InvalidInput("send either patient_id or new_patient", "patient_or_new_patient")
    with rt.db.session() as session:
        order = scoped_booking(session, principal.clinic_ids, order_no, lock=True)
        if order.status not in (o.PAID, o.BOOKED):
            raise InvalidTransition(f"a {order.status} booking cannot be confirmed", details={
                "from": order.status, "to": o.BOOKED})
        _require_not_over(session, order, appointment_at)
        before = snapshot(order)
        patient = patient_for_booking(session, order, patient_id, new_patient)
        reason = "confirmed by staff" if order.status == o.PAID else "confirmation changed by staff"
        if not move(session, order, o.BOOKED, reason, actor=actor_of(principal), patient_id=patient.id,
                    appointment_at=appointment_at):
            raise InvalidTransition("the booking changed meanwhile; reload it")
        _hold_the_day(session, order)
        registration_sync.request_sync(rt, session, order)
        record_staff_event(session, principal, order.clinic_id, "booking_confirmed", "order", order.order_no,
                           before=before,
                           after={**snapshot(order), "new_patient": new_patient is not None})
        return staff_booking_view(session, order)


def mark_no_show(rt: Runtime, principal: StaffPrincipal, order_no: str) -> dict:
    with rt.db.session() as session:
        order = scoped_booking(session, principal.clinic_ids, order_no, lock=True)
        if order.status not in (o.BOOKED, o.RESCHEDULED):
            raise InvalidTransition(f"a {order.status} booking cannot be marked as a no-show",
                                    details={"from": order.status, "to": o.NO_SHOW})
        if order.appointment_at > utcnow():
            raise Conflict("the appointment has not begun yet", "appointment_not_due")
        before = snapshot(order)
        if not move(session, order, o.NO_SHOW, "marked as a no-show by staff", actor=actor_of(principal)):
            raise InvalidTransition("the booking changed meanwhile; reload it")
        record_staff_event(session, principal, order.clinic_id, "booking_no_show", "order", order.order_no,
                           before=before,
                           after=snapshot(order))
        return staff_booking_view(session, order)


def _hold_the_day(session: Session, order: Order) -> None:
    """The booking's key follows the patient and day staff chose (409 `patient_already_booked` when that patient
    holds another booking of the item that day), so the one-a-day rule holds after confirming and moving too."""
    if order.active_booking_key is not None:
        order.active_booking_key = o.active_booking_key(order.patient_id, order.item_id, order.appointment_at)
        placing.flush_booking_key(session, order)


def reschedule(rt: Runtime, principal: StaffPrincipal, order_no: str, appointment_at: datetime) -> dict:
    """A no-show (or a booking rescheduled before) moved to today or a later day."""
    with rt.db.session() as session:
        order = scoped_booking(session, principal.clinic_ids, order_no, lock=True)
        if order.status not in (o.NO_SHOW, o.RESCHEDULED):
            raise InvalidTransition(f"a {order.status} booking cannot be rescheduled"
                                    + ("; confirm it again to change the time" if order.status == o.BOOKED else ""),
                                    details={"from": order.status, "to": o.RESCHEDULED})
        if shanghai_date(appointment_at) < shanghai_date(utcnow()):
            raise InvalidInput("reschedule to today or a later day", "appointment_in_past",
                               {"appointment_at": ["before today"]})
        _require_not_over(session, order, appointment_at)
        before = snapshot(order)
        if not move(session, order, o.RESCHEDULED, "rescheduled by staff", actor=actor_of(principal),
                    appointment_at=appointment_at):
            raise InvalidTransition("the booking changed meanwhile; reload it")
        _hold_the_day(session, order)
        registration_sync.request_sync(rt, session, order)
        record_staff_event(session, principal, order.clinic_id, "booking_rescheduled", "order", order.order_no,
                           before=before,
                           after=snapshot(order))
        return staff_booking_view(session, order)


def cancel(rt: Runtime, principal: StaffPrincipal, order_no: str, reason: str) -> dict:
    """Revert the HIS registration, then refund in full (the cancellation service orders the two)."""
    with rt.db.session() as session:
        order = scoped_booking(session, principal.clinic_ids, order_no)
        order_id, before = order.id, snapshot(order)
    result = cancellations.cancel_paid_booking(rt, order_id, actor=actor_of(principal), reason=reason,
                                               enforce_patient_deadline=False)
    with rt.db.session() as session:
        order = session.get(Order, order_id)
        record_staff_event(session, principal, order.clinic_id, "booking_cancelled", "order", order.order_no,
                           before=before,
                           after={**snapshot(order), "status_after_cancel": result["status"]}, note=reason[:500])
        return staff_booking_view(session, order)
