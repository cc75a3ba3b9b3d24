"""What a settled refund part means for its request and its order."""
from __future__ import annotations

import logging

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.db.models import HisOutbox, Order, Refund, RefundRequest
from app.domain import orders as o
from app.domain.orders import can_transition
from app.services.order_state import move

log = logging.getLogger(__name__)

# Refunds of money the order kept (as opposed to a second or late payment the order never needed).
ORDER_MONEY_ORIGINS = {"his_rejected", "cancellation", "patient", "window", "admin"}


def request_status(parts: list[Refund]) -> str:
    statuses = {p.status for p in parts}
    if statuses <= {"succeeded"}:
        return "succeeded"
    if statuses <= {"failed"}:
        return "failed"
    if statuses & {"waiting", "pending", "processing"}:
        return "processing"
    return "partially_failed"


# Card-balance refunds took their amount off the card first; a failed part gives it back.
CARD_ORIGINS = {"patient", "window"}


def on_part_settled(session: Session, part: Refund) -> None:
    request = session.get(RefundRequest, part.refund_request_id)
    if part.status == "succeeded" and request.origin in ORDER_MONEY_ORIGINS:
        session.execute(update(Order).where(Order.id == part.order_id)
                        .values(refunded_fen=Order.refunded_fen + part.amount_fen)
                        .execution_options(synchronize_session=False))
        if request.origin in CARD_ORIGINS:
            _note_topup_refunded(session, part.order_id, request)
    if part.status == "failed" and request.origin in CARD_ORIGINS:
        _restore_card(session, request, part)
    session.flush()
    session.refresh(request)
    new_status = request_status(request.parts)
    if new_status != request.status:
        request.status = new_status
    if new_status != "processing":
        _settle_orders(session, request)


def _note_topup_refunded(session: Session, order_id: int, request: RefundRequest) -> None:
    order = session.get(Order, order_id)
    session.refresh(order)
    target = o.REFUNDED if order.refunded_fen >= order.amount_fen else o.PARTIALLY_REFUNDED
    if order.status != target and can_transition(order.type, order.status, target):
        move(session, order, target, f"card refund {request.refund_request_no}")


def _restore_card(session: Session, request: RefundRequest, part: Refund) -> None:
    """Give the card back what this part took, once, and only if the hold was recorded."""
    from app.services.his_outbox import SENT, add_request_write

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
