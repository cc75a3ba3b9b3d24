"""Asking the channel now about an order's payments, because someone says it was paid.

The patient's "I paid but it does not show" and staff's "ask the channel now" take the janitor's path
(`query_attempt`) without waiting for its next turn: each attempt that holds no money on our side is queried,
and a payment the channel confirms is applied by `record_payment` through conditional updates, so a
notification or a janitor's query arriving at the same moment changes nothing twice. A closed attempt is
asked too: money the channel took after we closed the order is a late payment, honoured or refunded as when
its notification comes. Nothing is closed and no schedule moves when the channel says unpaid: the janitor
goes on as before.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select

from app.channels.base import ChannelRejected, ChannelUnavailable, InvalidResponse, TradeState
from app.db.models import MerchantAccount, Order, PaymentAttempt
from app.domain import orders as o
from app.domain.payments import PaymentOutcome, PaymentStatus
from app.runtime import Runtime
from app.services.clinics import channel_for_account
from app.services.payments.outcomes import AmountMismatch, record_payment

log = logging.getLogger(__name__)

INQUIRY_SOURCE = "inquiry"


class InquiryOutcome(StrEnum):
    PAID_NOW = "paid_now"
    """The channel had the money and we had not heard: recorded now."""
    ALREADY_PAID = "already_paid"
    """We had recorded the money already; nothing to ask."""
    NOT_PAID = "not_paid"
    """The channel holds no money for any attempt of the order."""
    NO_PAYMENT = "no_payment"
    """The order was never sent to a channel."""
    UNKNOWN = "unknown"
    """The channel did not answer clearly; ask again later."""


@dataclass(frozen=True)
class Inquiry:
    outcome: InquiryOutcome
    asked: int
    """How many payment attempts were asked about."""
    recorded: tuple[str, ...] = ()
    """What recording each payment found did (paid, late_honoured, duplicate_refunded, ...)."""


def inquire(rt: Runtime, order_id: int) -> Inquiry:
    """Ask the channel about every attempt of the order that holds no money with us; record what was paid."""
    with rt.db.session() as session:
        order = session.get(Order, order_id)
        if order.status not in (o.CREATED, o.CLOSED, o.CANCELLED):
            return Inquiry(InquiryOutcome.ALREADY_PAID, 0)
        targets = [(a.id, a.out_trade_no, channel_for_account(rt, session, session.get(MerchantAccount,
                                                                                       a.merchant_account_id)))
                   for a in session.scalars(select(PaymentAttempt).where(
                       PaymentAttempt.order_id == order_id, PaymentAttempt.status != PaymentStatus.PAID)
                       .order_by(PaymentAttempt.id))]
    if not targets:
        return Inquiry(InquiryOutcome.NO_PAYMENT, 0)
    recorded: list[str] = []
    unanswered = 0
    for attempt_id, out_trade_no, adapter in targets:
        try:
            result = adapter.query_payment(out_trade_no)
        except (ChannelUnavailable, InvalidResponse, ChannelRejected) as exc:
            log.warning("inquiry about %s: the channel did not answer: %s", out_trade_no, exc)
            unanswered += 1
            continue
        if result.state not in (TradeState.PAID, TradeState.REFUNDED):
            continue
        with rt.db.session() as session:
            attempt = session.get(PaymentAttempt, attempt_id)
            try:
                outcome = record_payment(session, attempt, result.channel_trade_no, result.amount_fen,
                                         result.paid_at, INQUIRY_SOURCE)
            except AmountMismatch as exc:
                # Not ours to settle here: reconciliation lists it; the order stays as it is.
                log.error("inquiry about %s: %s", out_trade_no, exc)
                session.rollback()
                unanswered += 1
                continue
        log.info("inquiry about %s: the channel says paid; %s", out_trade_no, outcome)
        recorded.append(str(outcome))
    if any(outcome != PaymentOutcome.ALREADY_RECORDED for outcome in recorded):
        return Inquiry(InquiryOutcome.PAID_NOW, len(targets), tuple(recorded))
    if recorded:
        return Inquiry(InquiryOutcome.ALREADY_PAID, len(targets), tuple(recorded))
    if unanswered:
        return Inquiry(InquiryOutcome.UNKNOWN, len(targets))
    return Inquiry(InquiryOutcome.NOT_PAID, len(targets))
