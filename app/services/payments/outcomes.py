"""Applying a verified payment to its attempt and order, exactly once, whatever the order's state.

The common case marks a created order paid and records the HIS write it owes.
A payment for an order we already closed is a late payment: honoured when still
possible, otherwise refunded; a second payment for an order already paid is
refunded. Both are recorded in the audit trail for finance. A paid order whose
HIS write the HIS refuses (the bills were paid at the window, the card is gone)
is refunded in full.
"""
from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import live_events
from app.admission_gate import note_slot_changed
from app.db.models import HisOutbox, Item, Order, PaymentAttempt, RefundRequest
from app.db.types import utcnow
from app.domain import ids
from app.domain import orders as o
from app.domain.his_writes import PAID_ORDER_WRITE
from app.domain.payments import PaymentOutcome, PaymentStatus
from app.domain.refunds import RefundOrigin, RefundRequestStatus
from app.his.base import HisRejected
from app.services.common.audit import record_system_event
from app.services.common.status import set_status
from app.services.his import record_order_write
from app.services.orders import move, take_place
from app.services.refunds import add_refund, refunded_on_attempt

log = logging.getLogger(__name__)


class AmountMismatch(Exception):
    pass


def record_payment(session: Session, attempt: PaymentAttempt, channel_trade_no: str | None, amount_fen: int,
                   paid_at: datetime | None, source: str) -> PaymentOutcome:
    """Returns what happened: paid, late_honoured, late_refunded, duplicate_refunded or already_recorded."""
    if amount_fen != attempt.amount_fen:
        raise AmountMismatch(f"{attempt.out_trade_no}: channel says {amount_fen} fen, we asked {attempt.amount_fen}")
    paid_at = paid_at or utcnow()
    # Pending or closed (a late payment): whichever it is now. Another process may close a pending attempt
    # between our read and our write; then the write is tried again from closed.
    for _ in range(2):
        if attempt.status == PaymentStatus.PAID:
            return PaymentOutcome.ALREADY_RECORDED
        if set_status(session, attempt, PaymentStatus.PAID, reason=f"paid via {source}",
                      channel_trade_no=channel_trade_no, paid_at=paid_at, next_query_at=None):
            break
        session.refresh(attempt)
    else:
        return PaymentOutcome.ALREADY_RECORDED
    order = session.scalar(select(Order).where(Order.id == attempt.order_id).with_for_update())
    session.refresh(order)
    if order.status == o.CREATED:
        move(session, order, o.PAID, f"paid via {source}", paid_at=paid_at, paid_attempt_id=attempt.id)
        record_write_for_paid_order(session, order)
        _announce_paid_booking(session, order)
        return PaymentOutcome.PAID
    if order.status == o.CLOSED:
        return _late_payment(session, order, attempt, source)
    return _duplicate_payment(session, order, attempt, source)


def _holds_another_booking(session: Session, key: str | None) -> bool:
    """The patient booked the item for that day again after this order closed (and still holds that place)."""
    return key is not None and session.scalar(select(Order.id).where(Order.active_booking_key == key)) is not None


def record_write_for_paid_order(session: Session, order: Order) -> HisOutbox:
    """What the HIS must record once an order's money arrived: registration, recharge or bill settlement."""
    kind = PAID_ORDER_WRITE[order.type]
    if order.type == o.TOPUP:
        payload = {"card_no": order.card_no, "amount_fen": order.amount_fen}
    elif order.type == o.VISIT_BILL:
        payload = {"card_no": order.card_no, "bill_ids": list(order.bill_ids or []), "amount_fen": order.amount_fen}
    else:
        payload = {"patient_id": order.patient_id, "item_id": order.item_id, "amount_fen": order.amount_fen,
                   "appointment_at": order.appointment_at.isoformat()}
    return record_order_write(session, order, kind, payload)


def _late_payment(session: Session, order: Order, attempt: PaymentAttempt, source: str) -> PaymentOutcome:
    attempt.late = True
    key = (o.active_booking_key(order.patient_id, order.item_id, order.appointment_at)
           if order.type == o.BOOKING and order.appointment_at is not None else None)
    booked_again = _holds_another_booking(session, key)
    honourable = order.type != o.BOOKING or (
        order.appointment_at is not None and order.appointment_at > utcnow() and not booked_again
        and take_place(session, order.slot_id, order.item_id, order.channel) is None
    )
    if honourable:
        if order.type == o.BOOKING:
            note_slot_changed(session, order.slot_id)  # a place taken past the admission gate: it reloads
            # One booking per patient, item and day still: a booking made meanwhile that wins the unique key
            # fails this transaction, and the retried processing finds it and refunds this payment instead.
            order.active_booking_key = key
        move(session, order, o.PAID, f"late payment via {source} honoured", paid_at=attempt.paid_at,
             paid_attempt_id=attempt.id)
        record_write_for_paid_order(session, order)
        _announce_paid_booking(session, order)
        outcome = PaymentOutcome.LATE_HONOURED
    else:
        refund_whole_payment(session, order, attempt, RefundOrigin.LATE_PAYMENT,
                             "the patient booked this item for that day again meanwhile" if booked_again
                             else "the order had been closed and its place is gone")
        outcome = PaymentOutcome.LATE_REFUNDED
    log.warning("late payment %s on closed order %s: %s", attempt.out_trade_no, order.order_no, outcome)
    record_system_event(session, order.clinic_id, "late_payment", "order", order.order_no,
                        after={"out_trade_no": attempt.out_trade_no, "amount_fen": attempt.amount_fen,
                               "outcome": str(outcome)})
    live_events.announce(session, order.clinic_id, live_events.LATE_PAYMENT,
                         {"order_no": order.order_no, "order_type": order.type, "channel": attempt.channel,
                          "amount_fen": attempt.amount_fen, "outcome": str(outcome)})
    return outcome


def _announce_paid_booking(session: Session, order: Order) -> None:
    """Staff of the clinic see a paid booking waiting for confirmation at once (after this transaction commits)."""
    if order.type != o.BOOKING:
        return
    item = session.get(Item, order.item_id) if order.item_id is not None else None
    live_events.announce(session, order.clinic_id, live_events.BOOKING_PAID,
                         {"order_no": order.order_no, "item": item.name if item else None, "channel": order.channel,
                          "amount_fen": order.amount_fen,
                          "appointment_at": order.appointment_at.isoformat() if order.appointment_at else None})


def _duplicate_payment(session: Session, order: Order, attempt: PaymentAttempt, source: str) -> PaymentOutcome:
    refund_whole_payment(session, order, attempt, RefundOrigin.DUPLICATE_PAYMENT,
                         f"order already {order.status}; a second payment is returned")
    log.warning("duplicate payment %s on order %s (%s): refunding", attempt.out_trade_no, order.order_no,
                order.status)
    record_system_event(session, order.clinic_id, "duplicate_payment", "order", order.order_no,
                        after={"out_trade_no": attempt.out_trade_no, "amount_fen": attempt.amount_fen,
                               "order_status": order.status})
    return PaymentOutcome.DUPLICATE_REFUNDED


def refund_whole_payment(session: Session, order: Order, attempt: PaymentAttempt, origin: RefundOrigin,
                         reason: str) -> RefundRequest | None:
    remaining = attempt.amount_fen - refunded_on_attempt(session, attempt.id)
    if remaining <= 0:
        return None
    request = RefundRequest(refund_request_no=ids.new_business_no("refund", utcnow()), clinic_id=order.clinic_id,
                            origin=str(origin), order_id=order.id, card_no=order.card_no, amount_fen=remaining,
                            status=str(RefundRequestStatus.PROCESSING), reason=reason[:200])
    session.add(request)
    add_refund(session, request, attempt, remaining)
    return request


def refund_rejected_order(session: Session, row: HisOutbox, exc: HisRejected) -> None:
    """The HIS definitively refused what a payment was for (e.g. the bills were paid at the window): the money
    goes back to the patient and finance sees why. Applies to a write the payment itself owed, while the order
    is still only paid."""
    order = session.get(Order, row.order_id)
    record_system_event(session, order.clinic_id, "his_write_rejected", "order", order.order_no,
                        after={"kind": row.kind, "code": exc.code, "idempotency_key": row.idempotency_key})
    if order.status != o.PAID or row.idempotency_key != f"{order.order_no}:{PAID_ORDER_WRITE[order.type]}":
        return
    attempt = session.get(PaymentAttempt, order.paid_attempt_id)
    if move(session, order, o.REFUNDING, f"HIS refused the {row.kind}: {exc.code}"):
        refund_whole_payment(session, order, attempt, RefundOrigin.HIS_REJECTED,
                             f"HIS refused the {row.kind}: {exc.code}")
