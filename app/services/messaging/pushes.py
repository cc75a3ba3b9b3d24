"""Sending the push outbox: one message at a time to its channel, retried with backoff, failed after the horizon.

A send takes two short transactions around the channel call. The first checks that the user still has a
subscription left for the template (none: refused without calling, the allowance was spent by an earlier
message); the second applies the answer if the push is still pending: sent spends one allowance in the same
transaction; a refusal ends the push (no subscription left at the channel sets the allowance to 0); a channel
that cannot be reached schedules a retry, and after PUSH_RETRY_HORIZON_S (scaled by HPAY_RETRY_TIME_SCALE)
the push is failed for a person.

The channels take no idempotency key for these messages: a send whose answer was lost (a timeout) is sent
again and the patient may see the bill twice. That is the better side to err on for a reminder to pay.
"""
from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy.orm import Session

from app.channels.messaging import MessageRefused, MessageSent, MessengerUnavailable
from app.db.models import Clinic, MerchantAccount, MessagePush, MpUser
from app.db.types import utcnow
from app.domain.backoff import PUSH_RETRY_HORIZON_S, PUSH_RETRY_SCHEDULE, delay_after
from app.domain.messaging import PushStatus
from app.runtime import Runtime
from app.services.clinics import merchant_config
from app.services.common.audit import record_system_event
from app.services.common.status import set_status, update_while
from app.services.messaging.subscriptions import allowance_row, none_left, spend_one

log = logging.getLogger(__name__)

PENDING, SENT, REFUSED, FAILED = PushStatus.PENDING, PushStatus.SENT, PushStatus.REFUSED, PushStatus.FAILED
NO_SUBSCRIPTION_LEFT = "no_subscription_left"


def send(rt: Runtime, push_id: int) -> str:
    """Send one pending push; returns its status afterwards."""
    with rt.db.session() as session:
        push = session.get(MessagePush, push_id)
        if push is None or push.status != PENDING:
            return push.status if push else "missing"
        subscription = allowance_row(session, push.user_id, push.template_id)
        if subscription is None or subscription.allowance <= 0:
            set_status(session, push, REFUSED, reason="no subscription left (spent by an earlier message)",
                       attempts=push.attempts, last_error=f"{NO_SUBSCRIPTION_LEFT}: nothing was sent")
            return push.status
        user = session.get(MpUser, push.user_id)
        account = session.get(MerchantAccount, push.merchant_account_id)
        sender = rt.messenger(merchant_config(account, session.get(Clinic, account.clinic_id).code))
        to, template_id, page, data = user.openid, push.template_id, push.page, dict(push.data)
    outcome: MessageSent | MessageRefused | MessengerUnavailable
    try:
        outcome = sender.send(to, template_id, page, data)
    except (MessageRefused, MessengerUnavailable) as exc:
        outcome = exc
    with rt.db.session() as session:
        push = session.get(MessagePush, push_id)
        if push.status != PENDING:
            return push.status
        if isinstance(outcome, MessengerUnavailable):
            _retry_or_fail(rt, session, push, f"{outcome.__class__.__name__}: {outcome}")
        elif isinstance(outcome, MessageRefused):
            _refused(session, push, outcome)
        elif set_status(session, push, SENT, reason="the channel took it", attempts=push.attempts + 1,
                        sent_at=utcnow(), channel_msg_id=outcome.msg_id, last_error=None):
            spend_one(session, push.user_id, push.template_id)
        return push.status


def _refused(session: Session, push: MessagePush, refusal: MessageRefused) -> None:
    if not set_status(session, push, REFUSED, reason=f"the channel refused it: {refusal.code}",
                      attempts=push.attempts + 1, last_error=f"{refusal.code}: {refusal.message}"[:500]):
        return
    if refusal.no_subscription:
        none_left(session, push.user_id, push.template_id)
    log.warning("message push %s refused by the channel: %s", push.id, refusal)


def _retry_or_fail(rt: Runtime, session: Session, push: MessagePush, error: str) -> None:
    now = utcnow()
    attempts, last_error = push.attempts + 1, error[:500]
    if now - push.created_at >= timedelta(seconds=PUSH_RETRY_HORIZON_S * rt.settings.RETRY_TIME_SCALE):
        if set_status(session, push, FAILED, reason=f"not sent after {attempts} attempts", attempts=attempts,
                      last_error=last_error):
            log.error("message push %s failed after %s attempts: %s", push.id, attempts, error)
            record_system_event(session, push.clinic_id, "message_push_failed", "message_push", push.id,
                                after={"attempts": attempts, "last_error": last_error})
        return
    delay = delay_after(PUSH_RETRY_SCHEDULE, attempts) * rt.settings.RETRY_TIME_SCALE
    update_while(session, push, PENDING, attempts=attempts, last_error=last_error,
                 next_attempt_at=now + timedelta(seconds=delay))
    log.warning("message push %s failed (attempt %s), retrying in %.1fs: %s", push.id, attempts, delay, error)
