"""What a settled refund part means for its request and its order.

A request's status is recomputed from its parts under the request's row lock, and
written conditionally: two parts of one request settling at the same moment in two
transactions would otherwise each see the other still in flight, and leave the
request `processing` for good.
"""
from __future__ import annotations

import logging

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.db.models import HisOutbox, Order, Refund, RefundRequest
from app.db.types import utcnow
from app.domain import orders as o
from app.domain.orders import can_transition
from app.services.orders.state import move

log = logging.getLogger(__name__)

# Refunds of money the order kept (as opposed to a second or late payment the order never needed).
ORDER_MONEY_ORIGINS = {"his_rejected", "cancellation", "patient", "window", "admin"}


def request_status(parts: list[Refund]) -> str:
    return _status_of({p.status for p in parts})


def _status_of(statuses: set[str]) -> str:
    if statuses <= {"succeeded"}:
        return "succeeded"
    if statuses <= {"failed"}:
        return "failed"
    if statuses & {"waiting", "pending", "processing"}:
        return "processing"
    return "partially_failed"


# Card-balance refunds took their amount off the card first; a failed part gives it back.
CARD_ORIGINS = {"patient", "window"}


def locked_request(session: Session, request_id: int) -> RefundRequest:
    """The request, read again under its row lock (so its parts read after this are current)."""
    return session.scalar(select(RefundRequest).where(RefundRequest.id == request_id).with_for_update()
                          .execution_options(populate_existing=True))


def update_request_status(session: Session, request: RefundRequest) -> str:
    """Recompute the (locked) request's status from its parts and write it if it changed; returns it."""
    session.flush()
    new_status = _status_of(set(session.scalars(select(Refund.status).where(Refund.refund_request_id == request.id))))
    if new_status != request.status:
        session.execute(update(RefundRequest)
                        .where(RefundRequest.id == request.id, RefundRequest.status == request.status)
                        .values(status=new_status, updated_at=utcnow())
                        .execution_options(synchronize_session=False))
    session.expire(request)
    return new_status


def on_part_settled(session: Session, part: Refund) -> None:
    request = locked_request(session, part.refund_request_id)
    if part.status == "succeeded" and request.origin in ORDER_MONEY_ORIGINS:
        session.execute(update(Order).where(Order.id == part.order_id)
                        .values(refunded_fen=Order.refunded_fen + part.amount_fen)
                        .execution_options(synchronize_session=False))
        if request.origin in CARD_ORIGINS:
            _note_topup_refunded(session, part.order_id, request)
    if part.status == "failed" and request.origin in CARD_ORIGINS:
        _restore_card(session, request, part)
    if update_request_status(session, request) != "processing":
        _settle_orders(session, request)


def _note_topup_refunded(session: Session, order_id: int, request: RefundRequest) -> None:
    order = session.get(Order, order_id)
    session.refresh(order)
    target = o.REFUNDED if order.refunded_fen >= order.amount_fen else o.PARTIALLY_REFUNDED
    if order.status != target and can_transition(order.type, order.status, target):
        move(session, order, target, f"card refund {request.refund_request_no}")


def _restore_card(session: Session, request: RefundRequest, part: Refund) -> None:
    """Give the card back what this part took, once, and only if the hold was recorded."""
    from app.services.his.delivery import SENT, add_request_write

    hold = session.scalar(select(HisOutbox).where(HisOutbox.refund_request_id == request.id,
                                                  HisOutbox.kind == "refund_hold"))
    if hold is None or hold.status != SENT:
        return
    add_request_write(session, request, "refund_restore",
                      {"card_no": request.card_no, "amount_fen": part.amount_fen,
                       "order_no": request.refund_request_no},
                      f"{request.refund_request_no}:refund_restore:{part.refund_no}")


def _settle_orders(session: Session, request: RefundRequest) -> None:
    """Once every part of a request settled, an order waiting in `refunding` learns its final status."""
    for order_id in {p.order_id for p in request.parts}:
        order = session.get(Order, order_id)
        session.refresh(order)
        if order.status != o.REFUNDING:
            continue
        if order.refunded_fen >= order.amount_fen:
            move(session, order, o.REFUNDED, f"refund request {request.refund_request_no} settled")
        elif order.refunded_fen > 0:
            move(session, order, o.PARTIALLY_REFUNDED, f"refund request {request.refund_request_no} settled")
        else:
            log.error("order %s: its refund failed entirely; it stays in refunding for finance", order.order_no)
