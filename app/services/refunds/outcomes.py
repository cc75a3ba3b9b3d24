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

from app.db.models import Order, Refund, RefundRequest
from app.domain import orders as o
from app.domain.his_writes import HisWriteKind, HisWriteStatus
from app.domain.orders import can_transition
from app.domain.refunds import (
    CARD_ORIGINS,
    ORDER_MONEY_ORIGINS,
    RefundOrigin,
    RefundRequestStatus,
    RefundStatus,
    request_status,
)
from app.services.common.audit import record_system_event
from app.services.common.status import set_status
from app.services.his import record_request_write, request_write
from app.services.orders import move

log = logging.getLogger(__name__)

# The HIS writes a staff refund may have had recorded before its money failed to go back (a card hold is
# restored instead).
STAFF_REFUND_WRITES = (HisWriteKind.BILL_SETTLEMENT_REVERSAL, HisWriteKind.CHARGE_ADJUSTMENT)


def locked_request(session: Session, request_id: int) -> RefundRequest:
    """The request, read again under its row lock (so its parts read after this are current)."""
    return session.scalar(select(RefundRequest).where(RefundRequest.id == request_id).with_for_update()
                          .execution_options(populate_existing=True))


def update_request_status(session: Session, request: RefundRequest) -> RefundRequestStatus:
    """Recompute the (locked) request's status from its parts and write it if it changed; returns it."""
    session.flush()
    new_status = request_status(session.scalars(select(Refund.status).where(Refund.refund_request_id == request.id)))
    if new_status != request.status:
        set_status(session, request, new_status, reason="its refund parts settled")
    return new_status


def on_part_settled(session: Session, part: Refund) -> None:
    request = locked_request(session, part.refund_request_id)
    if part.status == RefundStatus.SUCCEEDED and request.origin in ORDER_MONEY_ORIGINS:
        session.execute(update(Order).where(Order.id == part.order_id)
                        .values(refunded_fen=Order.refunded_fen + part.amount_fen)
                        .execution_options(synchronize_session=False))
        if request.origin in CARD_ORIGINS or request.origin == RefundOrigin.STAFF:
            _note_order_refunded(session, part.order_id, request)
    if part.status == RefundStatus.FAILED and request.origin in CARD_ORIGINS | {RefundOrigin.STAFF}:
        _restore_card(session, request, part)
        if request.origin == RefundOrigin.STAFF:
            _note_failed_after_his_write(session, request, part)
    if update_request_status(session, request) != RefundRequestStatus.PROCESSING:
        _settle_orders(session, request)


def _note_order_refunded(session: Session, order_id: int, request: RefundRequest) -> None:
    """A top-up or visit-bill order shows it was (partly) refunded; a booking keeps its status (booked or
    redeemed: the visit stands) and shows the refund in refunded_fen."""
    order = session.get(Order, order_id)
    session.refresh(order)
    target = o.REFUNDED if order.refunded_fen >= order.amount_fen else o.PARTIALLY_REFUNDED
    if order.status != target and can_transition(order.type, order.status, target):
        move(session, order, target, f"{request.origin} refund {request.refund_request_no}")


def _note_failed_after_his_write(session: Session, request: RefundRequest, part: Refund) -> None:
    """A staff refund whose money did not go back after the HIS recorded the reversal or charge adjustment:
    finance sees it in the audit trail (the HIS now shows less than the clinic kept; a card hold is restored)."""
    told = [w for w in (request_write(session, request.id, kind) for kind in STAFF_REFUND_WRITES)
            if w is not None and w.status == HisWriteStatus.SENT]
    if told:
        log.error("staff refund %s failed after the HIS recorded its %s", request.refund_request_no, told[0].kind)
        record_system_event(session, request.clinic_id, "staff_refund_failed_after_his_write", "refund",
                            part.refund_no, after={"refund_request_no": request.refund_request_no,
                                                   "his_write": told[0].kind, "amount_fen": part.amount_fen,
                                                   "failure_code": part.failure_code})


def _restore_card(session: Session, request: RefundRequest, part: Refund) -> None:
    """Give the card back what this part took, once, and only if the hold was recorded."""
    hold = request_write(session, request.id, HisWriteKind.REFUND_HOLD)
    if hold is None or hold.status != HisWriteStatus.SENT:
        return
    record_request_write(session, request, HisWriteKind.REFUND_RESTORE,
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
