"""Finance's side of staff refunds (maker-checker): approve or reject a request awaiting approval, never one's
own; list the requests.

A decision is a conditional status change on the request, made under the order's row lock: of two finance
users deciding at once one wins and the other is told the request was decided. Approval checks the refund again
(the order or the card may have changed since it was asked for) and starts it like a small one; both decisions
are audited with who, when and why.
"""
from __future__ import annotations

from sqlalchemy import select

from app.db.models import Order, RefundRequest
from app.db.types import utcnow
from app.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from app.domain.refunds import RefundRequestStatus
from app.runtime import Runtime
from app.services.common.audit import record_staff_event
from app.services.common.principals import StaffPrincipal
from app.services.common.status import set_status
from app.services.his import send
from app.services.refunds.requests import request_view
from app.services.refunds.staff_refunds import STAFF, actor_of, card_balance, check_refundable, start

AWAITING, PROCESSING, REJECTED = (RefundRequestStatus.AWAITING_APPROVAL, RefundRequestStatus.PROCESSING,
                                  RefundRequestStatus.REJECTED)
LIST_LIMIT = 200


def _scoped_request(session, principal: StaffPrincipal, refund_request_no: str) -> RefundRequest:
    request = session.scalar(select(RefundRequest).where(
        RefundRequest.refund_request_no == refund_request_no, RefundRequest.origin == STAFF,
        RefundRequest.clinic_id.in_(principal.clinic_ids)).execution_options(populate_existing=True))
    if request is None:
        raise NotFound("no such staff refund request in your clinics", "refund_request_not_found")
    return request


def _require_decidable(request: RefundRequest, principal: StaffPrincipal) -> None:
    if request.requested_by == principal.user_id:
        raise Forbidden("you asked for this refund: another finance user must approve or reject it",
                        "self_approval_forbidden")
    if request.status != AWAITING:
        raise Conflict(f"this refund request was decided already (it is {request.status})", "refund_request_decided",
                       details={"status": request.status})


def get_request(rt: Runtime, principal: StaffPrincipal, refund_request_no: str) -> dict:
    with rt.db.session() as session:
        return request_view(session, _scoped_request(session, principal, refund_request_no), principal)


def list_requests(rt: Runtime, principal: StaffPrincipal, status: str | None = None) -> list[dict]:
    if status is not None and status not in tuple(RefundRequestStatus):
        raise InvalidInput(f"status must be one of {', '.join(RefundRequestStatus)}", "invalid_status")
    with rt.db.session() as session:
        query = select(RefundRequest).where(RefundRequest.origin == STAFF,
                                            RefundRequest.clinic_id.in_(principal.clinic_ids))
        if status is not None:
            query = query.where(RefundRequest.status == status)
        requests = session.scalars(query.order_by(RefundRequest.id.desc()).limit(LIST_LIMIT))
        return [request_view(session, request, principal) for request in requests]


def approve(rt: Runtime, principal: StaffPrincipal, refund_request_no: str, note: str | None = None) -> dict:
    with rt.db.session() as session:
        request = _scoped_request(session, principal, refund_request_no)
        _require_decidable(request, principal)
        order = session.get(Order, request.order_id)
    balance = card_balance(rt, order)
    with rt.db.session() as session:
        order = session.scalar(select(Order).where(Order.id == order.id).with_for_update())
        request = _scoped_request(session, principal, refund_request_no)
        _require_decidable(request, principal)
        kind = check_refundable(session, order, request.amount_fen, balance, excluding=request)
        if not set_status(session, request, PROCESSING, reason=f"approved: {note or ''}".strip(),
                          actor=actor_of(principal), where=(RefundRequest.requested_by != principal.user_id,),
                          decided_by=principal.user_id, decided_at=utcnow(), decision_note=note):
            raise Conflict("this refund request was decided meanwhile", "refund_request_decided")
        write = start(session, request, order, kind)
        record_staff_event(session, principal, order.clinic_id, "refund_approved", "order", order.order_no,
                           before={"status": str(AWAITING)},
                           after={"refund_request_no": request.refund_request_no, "amount_fen": request.amount_fen,
                                  "status": str(PROCESSING), "note": note})
        session.flush()
        request_id, write_id = request.id, write.id if write is not None else None
    if write_id is not None:
        send(rt, write_id)
    with rt.db.session() as session:
        return request_view(session, session.get(RefundRequest, request_id), principal)


def reject(rt: Runtime, principal: StaffPrincipal, refund_request_no: str, note: str) -> dict:
    with rt.db.session() as session:
        request = _scoped_request(session, principal, refund_request_no)
        _require_decidable(request, principal)
        order = session.scalar(select(Order).where(Order.id == request.order_id).with_for_update())
        if not set_status(session, request, REJECTED, reason=f"rejected: {note}", actor=actor_of(principal),
                          where=(RefundRequest.requested_by != principal.user_id,),
                          decided_by=principal.user_id, decided_at=utcnow(), decision_note=note):
            raise Conflict("this refund request was decided meanwhile", "refund_request_decided")
        record_staff_event(session, principal, order.clinic_id, "refund_rejected", "order", order.order_no,
                           before={"status": str(AWAITING)},
                           after={"refund_request_no": request.refund_request_no, "amount_fen": request.amount_fen,
                                  "status": str(REJECTED), "note": note})
        return request_view(session, request, principal)
