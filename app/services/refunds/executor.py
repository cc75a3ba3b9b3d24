"""Sending refunds along their payment's channel and following them until they settle.

A refund row is written (status `pending`, deterministic refund number) before
the channel is called; every retry reuses its number, so the channel refunds it
once. At most one refund per payment is in flight at a time. Refunds without a
notification are queried on a backoff schedule.

A part's status is only ever written by a conditional update on the status it was
read with: a notification or a reconciliation repair may settle the part between
the executor's read and its write, and the loser of that race changes nothing.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.channels.base import ChannelRejected, ChannelUnavailable, InvalidResponse, RefundState
from app.db.models import MerchantAccount, PaymentAttempt, Refund, RefundRequest
from app.db.types import utcnow
from app.domain import ids
from app.domain.backoff import REFUND_QUERY_SCHEDULE, delay_after
from app.domain.refunds import IN_FLIGHT, WECHAT_MAX_REFUNDS_PER_PAYMENT, RefundStatus
from app.runtime import Runtime
from app.services.clinics import account_code, channel_for_account
from app.services.common.status import set_status, update_while
from app.services.refunds.outcomes import on_part_settled

log = logging.getLogger(__name__)

WAITING, PENDING, PROCESSING, SUCCEEDED, FAILED = (RefundStatus.WAITING, RefundStatus.PENDING,
                                                   RefundStatus.PROCESSING, RefundStatus.SUCCEEDED,
                                                   RefundStatus.FAILED)
CLOSED_BY_CHANNEL = ("REFUNDCLOSE", "the channel closed the refund")


def refund_notify_url(rt: Runtime, clinic_code: str, channel: str) -> str | None:
    if channel != "wechat":
        return None  # Alipay reports refunds through the trade's own notify_url
    return f"{rt.settings.PUBLIC_BASE_URL.rstrip('/')}/notify/wechat/{clinic_code}/refund"


def add_refund(session: Session, request: RefundRequest, attempt: PaymentAttempt, amount_fen: int,
               wait: bool = False) -> Refund:
    """A refund part in the caller's transaction; its number is the payment's next refund sequence."""
    seq = session.scalar(select(func.count(Refund.id)).where(Refund.payment_attempt_id == attempt.id)) + 1
    part = Refund(refund_no=ids.refund_no(attempt.out_trade_no, seq), request=request,
                  payment_attempt_id=attempt.id, order_id=attempt.order_id, amount_fen=amount_fen,
                  status=str(WAITING if wait else PENDING), query_count=0, next_query_at=None if wait else utcnow())
    session.add(part)
    return part


def refunded_on_attempt(session: Session, attempt_id: int) -> int:
    """Money refunded or on its way back from one payment (failed refunds excluded)."""
    return session.scalar(select(func.coalesce(func.sum(Refund.amount_fen), 0))
                          .where(Refund.payment_attempt_id == attempt_id, Refund.status != FAILED))


def refunds_counted_by_channel(session: Session, attempt_id: int) -> int:
    """The refunds of a payment the channel counts against its limit (sent, and not failed)."""
    return session.scalar(select(func.count(Refund.id)).where(Refund.payment_attempt_id == attempt_id,
                                                              Refund.status.in_((PROCESSING, SUCCEEDED))))


def advance(rt: Runtime, refund_id: int) -> str:
    """Send a pending refund or query a processing one; returns its status afterwards."""
    with rt.db.session() as session:
        part = session.get(Refund, refund_id)
        if part is None or part.status not in IN_FLIGHT:
            return part.status if part else "missing"
        attempt = session.get(PaymentAttempt, part.payment_attempt_id)
        account = session.get(MerchantAccount, attempt.merchant_account_id)
        if part.status == PENDING:
            blocked = _blocked_reason(session, part, attempt, account)
            if blocked == "in_flight":
                update_while(session, part, PENDING, next_query_at=_next_query_at(rt, part.query_count))
                return PENDING
            if blocked:
                if not _settle(session, part, FAILED, code=blocked[0], reason=blocked[1]):
                    session.expire(part)
                return part.status
        adapter = channel_for_account(rt, session, account)
        status, snapshot = part.status, (part.refund_no, part.amount_fen, attempt.out_trade_no, attempt.amount_fen)
        notify_url = refund_notify_url(rt, account_code(session, account), account.channel)
    refund_no, amount_fen, out_trade_no, total_fen = snapshot
    try:
        if status == PENDING:
            result = adapter.refund(out_trade_no, refund_no, total_fen, amount_fen, "退款 refund", notify_url)
            state, channel_refund_id, succeeded_at = result.state, result.channel_refund_id, None
        else:
            queried = adapter.query_refund(out_trade_no, refund_no)
            state, channel_refund_id, succeeded_at = queried.state, queried.channel_refund_id, queried.succeeded_at
    except ChannelRejected as exc:
        return _record(rt, refund_id, FAILED, code=exc.code, reason=exc.message or str(exc))
    except (ChannelUnavailable, InvalidResponse) as exc:
        log.warning("refund %s: channel did not answer clearly (%s); will retry", refund_no, exc)
        return _record(rt, refund_id, None)
    if state == RefundState.SUCCEEDED:
        return _record(rt, refund_id, SUCCEEDED, channel_refund_id=channel_refund_id, succeeded_at=succeeded_at)
    if state == RefundState.FAILED:
        return _record(rt, refund_id, FAILED, code=CLOSED_BY_CHANNEL[0], reason=CLOSED_BY_CHANNEL[1],
                       channel_refund_id=channel_refund_id)
    if state == RefundState.NOT_FOUND:
        # The channel never got it: sending it again under the same number is safe.
        return _record(rt, refund_id, PENDING)
    return _record(rt, refund_id, PROCESSING, channel_refund_id=channel_refund_id)


def _blocked_reason(session: Session, part: Refund, attempt: PaymentAttempt,
                    account: MerchantAccount) -> str | tuple[str, str] | None:
    in_flight = session.scalar(select(func.count(Refund.id)).where(
        Refund.payment_attempt_id == attempt.id, Refund.status == PROCESSING, Refund.id != part.id))
    if in_flight:
        return "in_flight"
    if attempt.paid_at and utcnow() - attempt.paid_at > timedelta(days=account.refund_window_days):
        return ("refund_window_passed", f"the payment is older than {account.refund_window_days} days")
    counted = refunds_counted_by_channel(session, attempt.id) if account.channel == "wechat" else 0
    if counted >= WECHAT_MAX_REFUNDS_PER_PAYMENT:
        return ("refund_count_limit", f"WeChat allows at most {WECHAT_MAX_REFUNDS_PER_PAYMENT} refunds per payment")
    return None


def _next_query_at(rt: Runtime, attempts: int) -> datetime:
    delay = delay_after(REFUND_QUERY_SCHEDULE, attempts) * rt.settings.RETRY_TIME_SCALE
    return utcnow() + timedelta(seconds=delay)


def _lost_race(part: Refund, expected: str) -> None:
    log.warning("refund %s changed from %s while we worked on it; our write is dropped", part.refund_no, expected)


def _record(rt: Runtime, refund_id: int, status: RefundStatus | None, *, code: str | None = None,
            reason: str | None = None, channel_refund_id: str | None = None,
            succeeded_at: datetime | None = None) -> str:
    """Write what the channel said: settle the part, or move it to `status` (None: unchanged) and schedule the
    next look. Every write is conditional on the status read here."""
    with rt.db.session() as session:
        part = session.get(Refund, refund_id)
        read_status = part.status
        if read_status not in IN_FLIGHT:
            return read_status
        query_count = part.query_count + 1
        found_id = {"channel_refund_id": channel_refund_id} if channel_refund_id else {}
        if status in (SUCCEEDED, FAILED):
            if not _settle(session, part, status, code=code, reason=reason, succeeded_at=succeeded_at,
                           query_count=query_count, **found_id):
                _lost_race(part, read_status)
                session.expire(part)
            return part.status
        schedule = {"query_count": query_count, "next_query_at": _next_query_at(rt, query_count), **found_id}
        if status is None or status == read_status:
            written = update_while(session, part, read_status, **schedule)
        else:
            written = set_status(session, part, status, reason=_why(status), **schedule)
        if not written:
            _lost_race(part, read_status)
            session.expire(part)
        return part.status


def _why(status: str) -> str:
    return {PROCESSING: "the channel accepted it", PENDING: "the channel does not know it: send it again"}[status]


def apply_notification(session: Session, part: Refund, state: RefundState, channel_refund_id: str | None,
                       succeeded_at: datetime | None) -> bool:
    """A verified refund notification (or what a reconciliation found); False when the refund had already settled
    or the channel still reports it in progress. The caller has matched the part to the account that verified
    the notification (notification_match) and holds its row lock."""
    if part.status not in IN_FLIGHT:
        log.info("refund %s is %s already; the channel's %s changes nothing", part.refund_no, part.status, state.value)
        return False
    found_id = {"channel_refund_id": channel_refund_id} if channel_refund_id else {}
    if state == RefundState.SUCCEEDED:
        return _settle(session, part, SUCCEEDED, succeeded_at=succeeded_at, **found_id)
    if state == RefundState.FAILED:
        return _settle(session, part, FAILED, code=CLOSED_BY_CHANNEL[0], reason=CLOSED_BY_CHANNEL[1], **found_id)
    return False


def _settle(session: Session, part: Refund, status: RefundStatus, *, code: str | None = None,
            reason: str | None = None, succeeded_at: datetime | None = None, **values) -> bool:
    """Conditional final status, then the request's and the order's consequences, exactly once."""
    now = utcnow()
    why = "the channel refunded it" if status == SUCCEEDED else f"failed: {code}"
    if not set_status(session, part, status, reason=why, failure_code=code,
                      failure_reason=(reason or "")[:500] or None,
                      succeeded_at=(succeeded_at or now) if status == SUCCEEDED else None, **values):
        log.info("refund %s is no longer %s; %s not written", part.refund_no, part.status, status)
        return False
    if status == FAILED:
        log.error("refund %s failed: %s %s", part.refund_no, code, reason)
    on_part_settled(session, part)
    return True
