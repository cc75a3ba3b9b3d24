"""Applying a verified payment to its attempt and order, exactly once, whatever the order's state.

The common case marks a created order paid and records the HIS write it owes.
A payment for an order we already closed is a late payment: honoured when still
possible, otherwise refunded; a second payment for an order already paid is
refunded. Both are recorded in the audit trail for finance.
"""
from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.db.models import HisOutbox, Order, PaymentAttempt, RefundRequest
from app.db.types import utcnow
from app.domain import ids
from app.domain import orders as o
from app.services.common.audit import record_system_event
from app.services.his.delivery import add_write_for_paid_order
from app.services.orders.state import move, take_place
from app.services.refunds.executor import add_refund, refunded_on_attempt

log = logging.getLogger(__name__)


class AmountMismatch(Exception):
    pass


def record_payment(session: Session, attempt: PaymentAttempt, channel_trade_no: str | None, amount_fen: int,
                   paid_at: datetime | None, source: str) -> str:
    """Returns what happened: paid, late_honoured, late_refunded, duplicate_refunded or already_recorded."""
    if amount_fen != attempt.amount_fen:
        raise AmountMismatch(f"{attempt.out_trade_no}: channel says {amount_fen} fen, we asked {attempt.amount_fen}")
    paid_at = paid_at or utcnow()
    first_time = session.execute(
        update(PaymentAttempt).where(PaymentAttempt.id == attempt.id, PaymentAttempt.status != "paid")
        .values(status="paid", channel_trade_no=channel_trade_no, paid_at=paid_at, next_query_at=None,
                updated_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    if first_time != 1:
        return "already_recorded"
    session.refresh(attempt)
    order = session.scalar(select(Order).where(Order.id == attempt.order_id).with_for_update())
    session.refresh(order)
    if order.status == o.CREATED:
        move(session, order, o.PAID, f"paid via {source}", paid_at=paid_at, paid_attempt_id=attempt.id)
        add_write_for_paid_order(session, order)
        return "paid"
    if order.status == o.CLOSED:
        return _late_payment(session, order, attempt, source)
    return _duplicate_payment(session, order, attempt, source)


def _late_payment(session: Session, order: Order, attempt: PaymentAttempt, source: str) -> str:
    attempt.late = True
    honourable = order.type != o.BOOKING or (
        order.appointment_at is not None and order.appointment_at > utcnow()
        and take_place(session, order.slot_id, order.item_id, order.channel) is None
    )
    if honourable:
        move(session, order, o.PAID, f"late payment via {source} honoured", paid_at=attempt.paid_at,
             paid_attempt_id=attempt.id)
        add_write_for_paid_order(session, order)
        outcome = "late_honoured"
    else:
        refund_whole_payment(session, order, attempt, "late_payment",
                             "the order had been closed and its place is gone")
        outcome = "late_refunded"
    log.warning("late payment %s on closed order %s: %s", attempt.out_trade_no, order.order_no, outcome)
    record_system_event(session, order.clinic_id, "late_payment", "order", order.order_no,
                        after={"out_trade_no": attempt.out_trade_no, "amount_fen": attempt.amount_fen,
                               "outcome": outcome})
    return outcome


def _duplicate_payment(session: Session, order: Order, attempt: PaymentAttempt, source: str) -> str:
    refund_whole_payment(session, order, attempt, "duplicate_payment",
                         f"order already {order.status}; a second payment is returned")
    log.warning("duplicate payment %s on order %s (%s): refunding", attempt.out_trade_no, order.order_no,
                order.status)
    record_system_event(session, order.clinic_id, "duplicate_payment", "order", order.order_no,
                        after={"out_trade_no": attempt.out_trade_no, "amount_fen": attempt.amount_fen,
                               "order_status": order.status})
    return "duplicate_refunded"


def refund_whole_payment(session: Session, order: Order, attempt: PaymentAttempt, origin: str,
                         reason: str) -> RefundRequest | None:
    remaining = attempt.amount_fen - refunded_on_attempt(session, attempt.id)
    if remaining <= 0:
        return None
    request = RefundRequest(refund_request_no=ids.new_business_no("refund", utcnow()), clinic_id=order.clinic_id,
                            origin=origin, order_id=order.id, card_no=order.card_no, amount_fen=remaining,
                            status="processing", reason=reason[:200])
    session.add(request)
    add_refund(session, request, attempt, remaining)
    return request


def on_his_rejected(session: Session, row: HisOutbox, order: Order, code: str) -> None:
    """The HIS definitively refused what a payment was for (e.g. the bills were paid at the window):
    the money goes back to the patient and finance sees why."""
    record_system_event(session, order.clinic_id, "his_write_rejected", "order", order.order_no,
                        after={"kind": row.kind, "code": code, "idempotency_key": row.idempotency_key})
    if row.kind not in ("recharge", "bill_settlement", "registration") or order.status != o.PAID:
        return
    attempt = session.get(PaymentAttempt, order.paid_attempt_id)
    if move(session, order, o.REFUNDING, f"HIS refused the {row.kind}: {code}"):
        refund_whole_payment(session, order, attempt, "his_rejected", f"HIS refused the {row.kind}: {code}")
