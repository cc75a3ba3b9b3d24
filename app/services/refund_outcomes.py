"""What a settled refund part means for its request and its order."""
from __future__ import annotations

import logging

from sqlalchemy import update
from sqlalchemy.orm import Session

from app.db.models import Order, Refund, RefundRequest
from app.domain import orders as o
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
    if statuses & {"pending", "processing"}:
        return "processing"
    return "partially_failed"


def on_part_settled(session: Session, part: Refund) -> None:
    request = session.get(RefundRequest, part.refund_request_id)
    if part.status == "succeeded" and request.origin in ORDER_MONEY_ORIGINS:
        session.execute(update(Order).where(Order.id == part.order_id)
                        .values(refunded_fen=Order.refunded_fen + part.amount_fen)
                        .execution_options(synchronize_session=False))
    session.flush()
    session.refresh(request)
    new_status = request_status(request.parts)
    if new_status != request.status:
        request.status = new_status
    if new_status != "processing":
        _settle_orders(session, request)


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
