"""Marking no-shows: a booked (or rescheduled) order whose appointment ended without a redemption
becomes `no_show`, from where staff reschedule it (then redeem) or cancel it.

The dispatcher looks every second for such orders (workers/dispatcher.py) and leases
each through `orders.next_check_at` (otherwise used only while an order is unpaid), so
one worker marks it; the conditional move makes a repeat change nothing.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Order, Slot
from app.db.types import utcnow
from app.domain import orders as o
from app.runtime import Runtime
from app.services.booking.front_desk import DEFAULT_APPOINTMENT_LENGTH, appointment_length
from app.services.common.audit import record_system_event
from app.services.orders import move


def appointments_over(session: Session, order_ids: list[int], now: datetime) -> list[int]:
    """Those of the (booked, started) orders whose appointment has ended: its slot's length, or an hour."""
    if not order_ids:
        return []
    rows = session.execute(select(Order.id, Order.appointment_at, Slot.starts_at, Slot.ends_at)
                           .outerjoin(Slot, Slot.id == Order.slot_id).where(Order.id.in_(order_ids)))
    over = {order_id for order_id, appointment_at, starts_at, ends_at in rows
            if appointment_at + (ends_at - starts_at if starts_at else DEFAULT_APPOINTMENT_LENGTH) <= now}
    return [order_id for order_id in order_ids if order_id in over]


def mark_if_overdue(rt: Runtime, order_id: int) -> str:
    """The dispatcher's job: mark the order a no-show if its appointment is over; returns its status."""
    with rt.db.session() as session:
        order = session.scalar(select(Order).where(Order.id == order_id).with_for_update())
        if order is None or order.status not in o.AWAITING_VISIT:
            return order.status if order else "missing"
        if order.appointment_at + appointment_length(session, order) > utcnow():
            return order.status
        before = order.status
        if move(session, order, o.NO_SHOW, "the appointment ended without a redemption"):
            record_system_event(session, order.clinic_id, "booking_no_show", "order", order.order_no,
                                before={"status": before}, after={"status": o.NO_SHOW,
                                                                  "appointment_at": order.appointment_at.isoformat()})
        return order.status
