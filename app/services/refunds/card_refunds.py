"""Refunding a card balance online: a patient's request or a window request started by the HIS.

The amount is checked against the live HIS balance and the card's online
top-ups, split across the top-up orders newest first, and recorded with a HIS
`refund_hold` in one transaction; the parts go to their channels only once the
HIS has taken the amount off the card. Concurrent requests for one card are
serialised on the card's top-up orders, so together they never pass the limits.
"""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from app.db.models import Clinic, HisOutbox, MerchantAccount, Order, PaymentAttempt, Refund, RefundRequest
from app.db.types import utcnow
from app.domain import ids
from app.domain import orders as o
from app.domain.errors import Conflict, NotFound, Unavailable
from app.domain.his_writes import HisWriteKind, HisWriteStatus
from app.domain.refunds import (
    WECHAT_MAX_REFUNDS_PER_PAYMENT,
    RefundableTopup,
    RefundRequestStatus,
    RefundStatus,
    allocate,
    check_limits,
)
from app.his.base import HisNotFound, HisUnavailable
from app.runtime import Runtime
from app.services.his import his_client, record_request_write, send
from app.services.refunds.executor import add_refund, refunded_on_attempt
from app.services.refunds.requests import awaiting_on_order


def live_balance(rt: Runtime, clinic_id: int, card_no: str) -> int:
    with rt.db.session() as session:
        client = his_client(rt, session.get(Clinic, clinic_id))
    try:
        return client.get_balance(card_no)
    except HisNotFound:
        raise NotFound("the HIS does not know this card", "card_not_found") from None
    except HisUnavailable:
        raise Unavailable("the hospital system did not answer; try again", "his_unavailable") from None


def _refundable_topups(session: Session, clinic_id: int, card_no: str,
                       account_ids: set[int] | None) -> list[tuple[Order, PaymentAttempt, RefundableTopup]]:
    query = (select(Order, PaymentAttempt).join(PaymentAttempt, PaymentAttempt.id == Order.paid_attempt_id)
             .where(Order.clinic_id == clinic_id, Order.card_no == card_no, Order.type == o.TOPUP,
                    Order.status.in_(o.REFUNDABLE_TOPUP))
             .order_by(Order.id).with_for_update(of=Order))
    if account_ids is not None:
        query = query.where(PaymentAttempt.merchant_account_id.in_(account_ids))
    rows = []
    now = utcnow()
    for order, attempt in session.execute(query).all():
        account = session.get(MerchantAccount, attempt.merchant_account_id)
        # A staff refund of this top-up awaiting finance's approval holds its amount.
        remaining = attempt.amount_fen - refunded_on_attempt(session, attempt.id) - awaiting_on_order(session, order.id)
        skip = None
        if now - attempt.paid_at > timedelta(days=account.refund_window_days):
            skip = "past the channel's refund window"
        elif account.channel == "wechat" and _refund_count(session, attempt.id) >= WECHAT_MAX_REFUNDS_PER_PAYMENT:
            skip = "at WeChat's limit of 50 refunds"
        rows.append((order, attempt, RefundableTopup(order.id, attempt.paid_at, remaining, skip)))
    return rows


def _refund_count(session: Session, attempt_id: int) -> int:
    return len(session.scalars(select(Refund.id).where(Refund.payment_attempt_id == attempt_id,
                                                       Refund.status != RefundStatus.FAILED)).all())


def holds_in_flight(session: Session, clinic_id: int, card_no: str) -> int:
    """Amounts of this card's requests whose hold the HIS has not recorded yet (its balance still shows them)."""
    rows = session.scalars(select(HisOutbox).join(RefundRequest, RefundRequest.id == HisOutbox.refund_request_id)
                           .where(RefundRequest.clinic_id == clinic_id, RefundRequest.card_no == card_no,
        HisOutbox.kind == HisWriteKind.REFUND_HOLD, HisOutbox.status == HisWriteStatus.PENDING))
    return sum(row.payload["amount_fen"] for row in rows)


def request_refund(rt: Runtime, *, clinic_id: int, card_no: str, amount_fen: int, origin: str,
                   account_ids: set[int] | None, user_id: int | None = None,
                   external_request_no: str | None = None) -> str:
    """Record a card refund; returns its refund_request_no. Raises Conflict with the rule it breaks."""
    balance = live_balance(rt, clinic_id, card_no)
    with rt.db.session() as session:
        topups = _refundable_topups(session, clinic_id, card_no, account_ids)
        # Looked up only once the card's top-ups are locked: a retry sent while the first request was still
        # being recorded waits for it here and answers with it, instead of refunding again.
        if external_request_no is not None:
            existing = _existing_request(session, clinic_id, origin, external_request_no, card_no, amount_fen)
            if existing is not None:
                return existing
        check_limits(amount_fen, balance - holds_in_flight(session, clinic_id, card_no), [t for *_, t in topups])
        parts = allocate(amount_fen, [t for *_, t in topups])
        attempts = {order.id: attempt for order, attempt, _ in topups}
        now = utcnow()
        request = RefundRequest(refund_request_no=ids.new_business_no("refund", now), clinic_id=clinic_id,
                                origin=origin, external_request_no=external_request_no, user_id=user_id,
                                card_no=card_no, amount_fen=amount_fen, status=RefundRequestStatus.PROCESSING,
                                reason=f"{origin} card refund")
        session.add(request)
        try:
            session.flush()
        except IntegrityError:
            # The same request_no for another card, recorded meanwhile under that card's lock.
            session.rollback()
            existing = _existing_request(session, clinic_id, origin, external_request_no, card_no, amount_fen)
            if existing is None:
                raise
            return existing
        for part in parts:
            add_refund(session, request, attempts[part.order_id], part.amount_fen, wait=True)
        hold = record_request_write(
            session, request, HisWriteKind.REFUND_HOLD,
            {"card_no": card_no, "amount_fen": amount_fen, "order_no": request.refund_request_no},
            f"{request.refund_request_no}:refund_hold")
        session.flush()
        request_no, hold_id = request.refund_request_no, hold.id
    # The dispatcher would send it within a second; sending now lets the answer say whether the HIS agreed.
    send(rt, hold_id)
    return request_no


def _existing_request(session: Session, clinic_id: int, origin: str, external_request_no: str, card_no: str,
                      amount_fen: int) -> str | None:
    existing = session.scalar(select(RefundRequest).where(
        RefundRequest.clinic_id == clinic_id, RefundRequest.origin == origin,
        RefundRequest.external_request_no == external_request_no))
    if existing is None:
        return None
    if existing.card_no != card_no or existing.amount_fen != amount_fen:
        raise Conflict("this request_no was used for another refund", "idempotency_key_reused")
    return existing.refund_request_no


def describe(rt: Runtime, refund_request_no: str, *, user_id: int | None = None,
             clinic_id: int | None = None) -> dict:
    with rt.db.session() as session:
        query = select(RefundRequest).where(RefundRequest.refund_request_no == refund_request_no) \
            .options(selectinload(RefundRequest.parts))
        if user_id is not None:
            query = query.where(RefundRequest.user_id == user_id)
        if clinic_id is not None:
            query = query.where(RefundRequest.clinic_id == clinic_id)
        request = session.scalar(query)
        if request is None:
            raise NotFound("no such refund request", "refund_request_not_found")
        order_nos = {p.order_id: session.get(Order, p.order_id).order_no for p in request.parts}
        return {
            "refund_request_no": request.refund_request_no, "origin": request.origin, "card_no": request.card_no,
            "amount_fen": request.amount_fen, "status": request.status, "created_at": request.created_at,
            "request_no": request.external_request_no,
            "parts": [{"order_no": order_nos[p.order_id], "refund_no": p.refund_no, "amount_fen": p.amount_fen,
                       "status": p.status, "failure_code": p.failure_code, "failure_reason": p.failure_reason}
                      for p in request.parts],
        }
