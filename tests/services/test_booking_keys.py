"""A late payment and the one-booking-per-patient-item-and-day rule: the payment of an order closed while
unpaid takes the place back only while the patient holds no other booking of the item that day (then it holds
that day again), and is refunded otherwise."""
from __future__ import annotations

from sqlalchemy import select

from app.db.models import RefundRequest
from app.services.common.principals import StaffPrincipal
from app.services.payments import pay_order
from app.services.support import staff_inquiry
from tests.services.helpers import attempt_of, expire_unpaid, new_clinic, new_holder, order
from tests.services.test_booking_gate import _book, _refusal, _reserved, _slots


def _closed_with_its_trade(rt, holder, item_id: int, slot_id: int) -> tuple[str, str]:
    """A booking whose trade was opened, then closed unpaid when it expired: (order_no, out_trade_no)."""
    booked = _book(rt, holder, item_id, slot_id)
    out_trade_no = pay_order(rt, holder.principal, booked["order_no"], "127.0.0.1").out_trade_no
    expire_unpaid(rt, booked["order_no"])
    return booked["order_no"], out_trade_no


def _paid_late(rt, world, clinic, order_no: str, out_trade_no: str) -> None:
    """The patient pays the closed trade anyway; support asks the channel (as the notification would tell)."""
    world.channels.pay(out_trade_no)
    staff = StaffPrincipal(user_id=1, username="desk-keys", role="staff", clinic_ids=(clinic.id,))
    assert staff_inquiry(rt, staff, order_no)["inquiry"]["outcome"] == "paid_now"


def test_a_late_payment_honoured_holds_the_patients_day_again(rt, world):
    clinic = new_clinic(rt)
    item_id, [morning, afternoon] = _slots(rt, clinic, capacity=3, count=2)
    holder = new_holder(rt, world, clinic)
    order_no, out_trade_no = _closed_with_its_trade(rt, holder, item_id, morning)

    _paid_late(rt, world, clinic, order_no, out_trade_no)

    paid = order(rt, order_no)
    assert paid.status == "paid" and paid.active_booking_key is not None
    assert _refusal(rt, holder, item_id, afternoon) == "patient_already_booked"
    assert _reserved(rt, morning) == (1, 1)


def test_a_late_payment_is_refunded_when_the_patient_booked_that_day_again(rt, world):
    clinic = new_clinic(rt)
    item_id, [morning, afternoon] = _slots(rt, clinic, capacity=3, count=2)
    holder = new_holder(rt, world, clinic)
    order_no, out_trade_no = _closed_with_its_trade(rt, holder, item_id, morning)
    rebooked = _book(rt, holder, item_id, afternoon)

    _paid_late(rt, world, clinic, order_no, out_trade_no)

    closed = order(rt, order_no)
    assert closed.status == "closed" and closed.active_booking_key is None
    assert attempt_of(rt, out_trade_no).late
    with rt.db.session() as session:
        [request] = session.scalars(select(RefundRequest).where(RefundRequest.order_id == closed.id)).all()
    assert (request.origin, request.amount_fen) == ("late_payment", closed.amount_fen)
    assert "again" in request.reason
    assert _reserved(rt, morning) == (0, 0) and _reserved(rt, afternoon) == (1, 1)
    assert order(rt, rebooked["order_no"]).active_booking_key is not None
