"""Staff refund requests as the admin API shows them, and what requests awaiting approval hold of an order."""
from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db.models import Clinic, HisOutbox, Order, Refund, RefundRequest, StaffUser
from app.domain.refunds import RefundRequestStatus
from app.services.common.principals import StaffPrincipal

AWAITING = RefundRequestStatus.AWAITING_APPROVAL


def awaiting_on_order(session: Session, order_id: int) -> int:
    """The amounts of the order's requests awaiting approval: held against what remains refundable."""
    return session.scalar(select(func.coalesce(func.sum(RefundRequest.amount_fen), 0)).where(
        RefundRequest.order_id == order_id, RefundRequest.status == AWAITING))


def _person(session: Session, user_id: int | None) -> dict | None:
    if user_id is None:
        return None
    user = session.get(StaffUser, user_id)
    return {"id": user.id, "username": user.username}


def request_view(session: Session, request: RefundRequest, viewer: StaffPrincipal) -> dict:
    order = session.get(Order, request.order_id)
    parts = session.scalars(select(Refund).where(Refund.refund_request_id == request.id).order_by(Refund.id))
    writes = session.scalars(select(HisOutbox).where(HisOutbox.refund_request_id == request.id)
                             .order_by(HisOutbox.id))
    mine = request.requested_by == viewer.user_id
    return {
        "refund_request_no": request.refund_request_no, "origin": request.origin, "status": request.status,
        "amount_fen": request.amount_fen, "reason": request.reason, "created_at": request.created_at,
        "clinic_code": session.get(Clinic, request.clinic_id).code,
        "order_no": order.order_no, "order_type": order.type, "order_status": order.status,
        "order_amount_fen": order.amount_fen, "channel": order.channel,
        "requested_by": _person(session, request.requested_by), "decided_by": _person(session, request.decided_by),
        "decided_at": request.decided_at, "decision_note": request.decision_note,
        "mine": mine, "can_decide": request.status == AWAITING and not mine and viewer.role in ("finance", "admin"),
        "parts": [{"order_no": order.order_no, "refund_no": p.refund_no, "amount_fen": p.amount_fen,
                   "status": p.status, "failure_code": p.failure_code, "failure_reason": p.failure_reason}
                  for p in parts],
        "his_writes": [{"kind": w.kind, "status": w.status, "last_error": w.last_error} for w in writes],
    }
