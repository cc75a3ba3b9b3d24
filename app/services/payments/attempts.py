"""Paying an order, and resolving payments whose outcome we have not heard.

A payment attempt row (with the out_trade_no the channel will see) is committed
before the channel is called. An attempt with no notification is queried on a
backoff schedule; an expired order is closed only after the channel confirms it
was not paid (and closes the trade), otherwise it completes instead.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.channels.base import (
    AlreadyPaid,
    ChannelRejected,
    ChannelUnavailable,
    InvalidResponse,
    PaymentChannel,
    TradeState,
)
from app.db.models import Clinic, MerchantAccount, MpUser, Order, PaymentAttempt
from app.db.types import utcnow
from app.domain import ids
from app.domain import orders as o
from app.domain.backoff import PAYMENT_QUERY_SCHEDULE, delay_after
from app.domain.errors import Conflict, NotFound, Unavailable
from app.domain.payments import ChannelCheck, PaymentStatus
from app.runtime import Runtime
from app.services.clinics import account_code, channel_for_account, require_paying_account
from app.services.common.principals import MpPrincipal
from app.services.common.status import set_status, update_while
from app.services.orders import move
from app.services.payments.outcomes import record_payment

log = logging.getLogger(__name__)

# A trade must stay payable long enough for the patient to finish paying.
MIN_PAYABLE_S = 30


@dataclass(frozen=True)
class PayInstructions:
    channel: str
    out_trade_no: str
    pay_params: dict | None = None
    trade_no: str | None = None


def notify_url(rt: Runtime, clinic_code: str, channel: str) -> str:
    """Where the channel reports a payment: under the clinic's code, or `platform` for the platform's apps."""
    base = rt.settings.PUBLIC_BASE_URL.rstrip("/")
    return f"{base}/notify/wechat/{clinic_code}/pay" if channel == "wechat" else f"{base}/notify/alipay/{clinic_code}"


def _next_query_at(rt: Runtime, queries_made: int) -> datetime:
    delay = delay_after(PAYMENT_QUERY_SCHEDULE, queries_made) * rt.settings.RETRY_TIME_SCALE
    return utcnow() + timedelta(seconds=delay)


def pay_order(rt: Runtime, principal: MpPrincipal, order_no: str, client_ip: str) -> PayInstructions:
    with rt.db.session() as session:
        order = session.scalar(select(Order).where(Order.order_no == order_no, Order.user_id == principal.user_id)
                               .with_for_update())
        if order is None:
            raise NotFound("no such order", "order_not_found")
        if order.status != o.CREATED:
            raise Conflict(f"the order is {order.status} and cannot be paid", "order_not_payable")
        if order.expires_at <= utcnow() + timedelta(seconds=MIN_PAYABLE_S):
            raise Conflict("the order has expired; place a new one", "order_expired")
        account = require_paying_account(session, session.get(Clinic, order.clinic_id), principal.user_id)
        attempt = session.scalar(
            select(PaymentAttempt).where(PaymentAttempt.order_id == order.id,
                                         PaymentAttempt.merchant_account_id == account.id,
                                         PaymentAttempt.status == PaymentStatus.PENDING)
            .order_by(PaymentAttempt.id.desc()))
        if attempt is None:
            seq = session.scalar(select(func.count(PaymentAttempt.id)).where(PaymentAttempt.order_id == order.id)) + 1
            attempt = PaymentAttempt(order_id=order.id, merchant_account_id=account.id, channel=order.channel,
                                     out_trade_no=ids.out_trade_no(order.order_no, seq), amount_fen=order.amount_fen,
                                     status=str(PaymentStatus.PENDING),
                                     payer_id=session.get(MpUser, principal.user_id).openid,
                                     next_query_at=_next_query_at(rt, 0))
            session.add(attempt)
            session.flush()
        adapter = channel_for_account(rt, session, account)
        notify_code = account_code(session, account)
        request = (attempt.id, attempt.out_trade_no, order.amount_fen, order.description, attempt.payer_id,
                   order.expires_at)
    attempt_id, out_trade_no, amount_fen, description, payer_id, expires_at = request
    try:
        prepay = adapter.create_payment(out_trade_no, amount_fen, description, payer_id,
                                        notify_url(rt, notify_code, order.channel), expires_at, client_ip)
    except ChannelRejected as exc:
        log.warning("channel refused to create %s: %s", out_trade_no, exc)
        raise Conflict(f"the payment channel refused the payment: {exc.message or exc.code}",
                       "channel_refused") from None
    except (ChannelUnavailable, InvalidResponse):
        # The attempt stays pending; the query schedule finds out whether the channel created it.
        raise Unavailable("the payment channel did not answer; try again", "channel_unavailable") from None
    with rt.db.session() as session:
        attempt = session.get(PaymentAttempt, attempt_id)
        attempt.prepay_id = prepay.prepay_id or attempt.prepay_id
        attempt.channel_trade_no = prepay.trade_no or attempt.channel_trade_no
    return PayInstructions(order.channel, out_trade_no, pay_params=prepay.pay_params, trade_no=prepay.trade_no)


def query_attempt(rt: Runtime, attempt_id: int) -> str:
    """Ask the channel about a payment we have not heard of; apply what it says."""
    with rt.db.session() as session:
        attempt = session.get(PaymentAttempt, attempt_id)
        if attempt is None or attempt.status != PaymentStatus.PENDING:
            return attempt.status if attempt else "missing"
        adapter = channel_for_account(rt, session, session.get(MerchantAccount, attempt.merchant_account_id))
        out_trade_no = attempt.out_trade_no
    try:
        result = adapter.query_payment(out_trade_no)
    except (ChannelUnavailable, InvalidResponse, ChannelRejected) as exc:
        log.warning("query of %s failed: %s", out_trade_no, exc)
        result = None
    with rt.db.session() as session:
        attempt = session.get(PaymentAttempt, attempt_id)
        if attempt.status != PaymentStatus.PENDING:
            return attempt.status
        if result is not None and result.state in (TradeState.PAID, TradeState.REFUNDED):
            record_payment(session, attempt, result.channel_trade_no, result.amount_fen, result.paid_at, "query")
            return PaymentStatus.PAID
        order = session.get(Order, attempt.order_id)
        if result is not None and result.state in (TradeState.CLOSED, TradeState.NOT_FOUND, TradeState.FAILED) \
                and order.status != o.CREATED:
            # The order is over and the channel holds no money for this attempt: stop asking.
            close_attempt(session, attempt, f"the order is {order.status} and the channel says {result.raw_state}")
            return attempt.status
        update_while(session, attempt, PaymentStatus.PENDING, query_count=attempt.query_count + 1,
                     next_query_at=_next_query_at(rt, attempt.query_count + 1))
        return attempt.status


def expire_order(rt: Runtime, order_id: int) -> str:
    """Close an expired unpaid order, after making sure at the channel that none of its attempts was paid."""
    with rt.db.session() as session:
        order = session.get(Order, order_id)
        if order is None or order.status != o.CREATED:
            return order.status if order else "missing"
        attempts = pending_attempts(rt, session, order)
    for attempt_id, adapter, out_trade_no in attempts:
        outcome = settle_attempt_at_channel(rt, attempt_id, adapter, out_trade_no)
        if outcome == ChannelCheck.PAID:
            return o.PAID
        if outcome == ChannelCheck.UNKNOWN:
            _check_again_later(rt, order_id)
            return o.CREATED
    with rt.db.session() as session:
        order = session.get(Order, order_id)
        if order.status == o.CREATED and move(session, order, o.CLOSED, "expired unpaid", closed_at=utcnow()):
            close_pending_attempts(session, order, "the order expired unpaid")
        return order.status


def pending_attempts(rt: Runtime, session: Session, order: Order) -> list[tuple[int, PaymentChannel, str]]:
    """(attempt id, its channel adapter, out_trade_no) of the order's attempts still pending."""
    return [(a.id, channel_for_account(rt, session, session.get(MerchantAccount, a.merchant_account_id)),
             a.out_trade_no) for a in order.payments if a.status == PaymentStatus.PENDING]


def close_attempt(session: Session, attempt: PaymentAttempt, why: str, actor: str = "system") -> bool:
    return set_status(session, attempt, PaymentStatus.CLOSED, reason=why, actor=actor, closed_at=utcnow(),
                      next_query_at=None)


def close_pending_attempts(session: Session, order: Order, why: str, actor: str = "system") -> None:
    """Close the attempts of an order that is over (closed or cancelled) that are still pending."""
    for attempt in session.scalars(select(PaymentAttempt).where(PaymentAttempt.order_id == order.id,
                                                                PaymentAttempt.status == PaymentStatus.PENDING)):
        close_attempt(session, attempt, why, actor)


def settle_attempt_at_channel(rt: Runtime, attempt_id: int, adapter: PaymentChannel,
                              out_trade_no: str) -> ChannelCheck:
    """paid (and recorded), closed, or unknown (the channel did not answer)."""
    try:
        result = adapter.query_payment(out_trade_no)
        if result.state not in (TradeState.PAID, TradeState.REFUNDED):
            if result.state == TradeState.PENDING:
                adapter.close_payment(out_trade_no)
            return ChannelCheck.CLOSED
    except AlreadyPaid:
        try:
            result = adapter.query_payment(out_trade_no)
        except (ChannelUnavailable, InvalidResponse, ChannelRejected):
            return ChannelCheck.UNKNOWN
    except (ChannelUnavailable, InvalidResponse, ChannelRejected) as exc:
        log.warning("could not settle %s at the channel before closing: %s", out_trade_no, exc)
        return ChannelCheck.UNKNOWN
    with rt.db.session() as session:
        attempt = session.get(PaymentAttempt, attempt_id)
        record_payment(session, attempt, result.channel_trade_no, result.amount_fen, result.paid_at, "query")
    return ChannelCheck.PAID


def _check_again_later(rt: Runtime, order_id: int) -> None:
    with rt.db.session() as session:
        session.get(Order, order_id).next_check_at = utcnow() + timedelta(
            seconds=delay_after(PAYMENT_QUERY_SCHEDULE, 1) * rt.settings.RETRY_TIME_SCALE)
