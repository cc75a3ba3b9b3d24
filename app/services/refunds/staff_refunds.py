"""Staff refunds of (part of) one paid order of any type, with finance's approval above a threshold.

A request is checked against what remains refundable of the order's payment (the amount paid, less what is
refunded or on its way back, less what other requests awaiting approval hold), the channel's limits and, for
a top-up, the card's live HIS balance. Up to HPAY_REFUND_APPROVAL_FEN (counting the order's earlier staff
refunds, so splitting a large refund into small ones does not avoid approval) it starts at once; above it, it
waits for a finance user who is not the requester (app.services.refunds.approvals).

Starting a request records its refund part and the HIS write the money waits for (domain.staff_refunds.plan)
in one transaction: the part stays `waiting` until the HIS recorded the write, and a refused write fails it, so
no money leaves that the HIS does not know of. Requests for one order are serialised on the order's row lock,
so two staff asking at once never together pass what remains.
"""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db.models import HisOutbox, MerchantAccount, Order, PaymentAttempt, RefundRequest
from app.db.types import utcnow
from app.domain import ids
from app.domain import orders as o
from app.domain import staff_refunds as rules
from app.domain.errors import Conflict, NotFound
from app.domain.his_writes import HisWriteKind
from app.domain.refunds import WECHAT_MAX_REFUNDS_PER_PAYMENT, RefundOrigin, RefundRequestStatus
from app.runtime import Runtime
from app.services.common.audit import record_staff_event
from app.services.common.principals import StaffPrincipal
from app.services.his import order_writes, record_request_write, send
from app.services.refunds.card_refunds import holds_in_flight, live_balance
from app.services.refunds.executor import add_refund, refunded_on_attempt, refunds_counted_by_channel
from app.services.refunds.requests import awaiting_on_order, request_view

STAFF = str(RefundOrigin.STAFF)
AWAITING, PROCESSING = RefundRequestStatus.AWAITING_APPROVAL, RefundRequestStatus.PROCESSING


def actor_of(principal: StaffPrincipal) -> str:
    return f"staff:{principal.username}"


def scoped_order(session: Session, scope: tuple[int, ...], order_no: str, *, lock: bool = False) -> Order:
    query = select(Order).where(Order.order_no == order_no, Order.clinic_id.in_(scope))
    order = session.scalar(query.with_for_update() if lock else query)
    if order is None:
        raise NotFound("no such order in your clinics", "order_not_found")
    return order


def remaining_fen(session: Session, order: Order, *, excluding: RefundRequest | None = None) -> int:
    """What may still be refunded of the order's payment: paid, less refunded or on its way back, less what
    requests awaiting approval hold (but `excluding`'s own amount)."""
    if order.paid_attempt_id is None:
        return 0
    attempt = session.get(PaymentAttempt, order.paid_attempt_id)
    held = awaiting_on_order(session, order.id) - (excluding.amount_fen if excluding is not None else 0)
    return attempt.amount_fen - refunded_on_attempt(session, attempt.id) - held


def staff_refunded(session: Session, order_id: int) -> int:
    """The order's staff refunds that count toward the approval threshold (neither rejected nor failed)."""
    return session.scalar(select(func.coalesce(func.sum(RefundRequest.amount_fen), 0)).where(
        RefundRequest.order_id == order_id, RefundRequest.origin == STAFF,
        RefundRequest.status.notin_([RefundRequestStatus.REJECTED, RefundRequestStatus.FAILED])))


def check_refundable(session: Session, order: Order, amount_fen: int, balance_fen: int | None,
                     excluding: RefundRequest | None = None) -> HisWriteKind | None:
    """The HIS write the refund waits for; Conflict with the rule it breaks. The order is locked."""
    kind = rules.plan(order.type, order.status, amount_fen, remaining_fen(session, order, excluding=excluding))
    attempt = session.get(PaymentAttempt, order.paid_attempt_id)
    account = session.get(MerchantAccount, attempt.merchant_account_id)
    if utcnow() - attempt.paid_at > timedelta(days=account.refund_window_days):
        raise Conflict(f"the payment is older than {account.refund_window_days} days: the channel no longer refunds it",
                       "refund_window_passed")
    if account.channel == "wechat" and refunds_counted_by_channel(session, attempt.id) >= \
            WECHAT_MAX_REFUNDS_PER_PAYMENT:
        raise Conflict(f"WeChat allows at most {WECHAT_MAX_REFUNDS_PER_PAYMENT} refunds per payment",
                       "refund_count_limit")
    if kind == HisWriteKind.REFUND_HOLD:
        available = balance_fen - holds_in_flight(session, order.clinic_id, order.card_no)
        if amount_fen > available:
            raise Conflict(f"the card holds {available} fen; {amount_fen} fen cannot be refunded",
                           "refund_exceeds_balance", details={"balance_fen": available})
    return kind


def card_balance(rt: Runtime, order: Order) -> int | None:
    """A top-up's card balance, live from the HIS (read before any transaction locks the order)."""
    return live_balance(rt, order.clinic_id, order.card_no) if order.type == o.TOPUP else None


def request_staff_refund(rt: Runtime, principal: StaffPrincipal, order_no: str, amount_fen: int,
                         reason: str) -> dict:
    with rt.db.session() as session:
        order = scoped_order(session, principal.clinic_ids, order_no)
    balance = card_balance(rt, order)
    with rt.db.session() as session:
        order = scoped_order(session, principal.clinic_ids, order_no, lock=True)
        kind = check_refundable(session, order, amount_fen, balance)
        approval = rules.needs_approval(staff_refunded(session, order.id) + amount_fen,
                                        rt.settings.REFUND_APPROVAL_FEN)
        request = RefundRequest(refund_request_no=ids.new_business_no("refund", utcnow()), clinic_id=order.clinic_id,
                                origin=STAFF, order_id=order.id, card_no=order.card_no, amount_fen=amount_fen,
                                status=str(AWAITING if approval else PROCESSING), reason=reason[:200],
                                requested_by=principal.user_id)
        session.add(request)
        session.flush()
        write = None if approval else start(session, request, order, kind)
        record_staff_event(session, principal, order.clinic_id, "refund_requested", "order", order.order_no,
                           after={"refund_request_no": request.refund_request_no, "amount_fen": amount_fen,
                                  "reason": reason, "status": request.status})
        session.flush()
        request_id, write_id = request.id, write.id if write is not None else None
    if write_id is not None:
        # The dispatcher would send it within a second; sending now lets the answer say whether the HIS agreed.
        send(rt, write_id)
    with rt.db.session() as session:
        return request_view(session, session.get(RefundRequest, request_id), principal)


def start(session: Session, request: RefundRequest, order: Order, kind: HisWriteKind | None) -> HisOutbox | None:
    """The request's refund part along the order's payment, and the HIS write it waits for (if any)."""
    attempt = session.get(PaymentAttempt, order.paid_attempt_id)
    add_refund(session, request, attempt, request.amount_fen, wait=kind is not None)
    if kind is None:
        return None
    key = f"{request.refund_request_no}:{kind}"
    if kind == HisWriteKind.REFUND_HOLD:
        payload = {"card_no": order.card_no, "amount_fen": request.amount_fen, "order_no": request.refund_request_no}
    elif kind == HisWriteKind.BILL_SETTLEMENT_REVERSAL:
        payload = {"card_no": order.card_no, "amount_fen": request.amount_fen, "order_no": order.order_no,
                   "bill_ids": list(order.bill_ids or [])}
    else:
        charged = order_writes(session, order.id, (HisWriteKind.CHARGE,))
        payload = {"card_no": charged[-1].payload["card_no"], "amount_fen": request.amount_fen,
                   "order_no": order.order_no}
    return record_request_write(session, request, kind, payload, key)
