"""What a mini-program user subscribed to: the templates of their app they may be sent, and how many times.

In the mini-program the patient answers `wx.requestSubscribeMessage` / `my.requestSubscribeMessage` per
template (accept, reject, ban); the page reports the answers here. A one-time subscription allows one
message, so each accept adds one to the user's allowance for that template (up to MAX_ALLOWANCE), a
ban takes it all away, a reject changes nothing. A push spends one when the channel took it; a channel
saying there is none left sets it to 0.
"""
from __future__ import annotations

from sqlalchemy import case, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db.models import MessageSubscription, MpUser
from app.db.types import utcnow
from app.domain.errors import InvalidInput
from app.domain.messaging import MAX_ALLOWANCE
from app.runtime import Runtime
from app.services.common.principals import MpPrincipal
from app.services.messaging.templates import app_templates

ACCEPT, REJECT, BAN = "accept", "reject", "ban"
# The channel answered "no subscription left" (WeChat 43101): what our count said was wrong.
CHANNEL_REFUSED = "refused"
_CHANGES = {
    ACCEPT: case((MessageSubscription.allowance < MAX_ALLOWANCE, MessageSubscription.allowance + 1),
                 else_=MessageSubscription.allowance),
    REJECT: MessageSubscription.allowance,
    BAN: 0,
}


def _standing(session: Session, principal: MpPrincipal) -> list[dict]:
    user = session.get(MpUser, principal.user_id)
    allowances = dict(session.execute(select(MessageSubscription.template_id, MessageSubscription.allowance)
                                      .where(MessageSubscription.user_id == user.id)).all())
    return [{"template_id": t.template_id, "purpose": t.purpose, "allowance": allowances.get(t.template_id, 0)}
            for t in app_templates(session, user.merchant_account_id)]


def list_subscriptions(rt: Runtime, principal: MpPrincipal) -> list[dict]:
    """The message templates of the user's app, `[{template_id, purpose, allowance}]`."""
    with rt.db.session() as session:
        return _standing(session, principal)


def record_answers(rt: Runtime, principal: MpPrincipal, template_ids: list[str], result: str = ACCEPT) -> list[dict]:
    """Record the patient's answer for these templates of their app; returns the standing after it."""
    with rt.db.session() as session:
        user = session.get(MpUser, principal.user_id)
        known = {t.template_id for t in app_templates(session, user.merchant_account_id)}
        unknown = [t for t in template_ids if t not in known]
        if unknown:
            raise InvalidInput("not message templates of your mini-program", "unknown_template",
                               {"template_ids": unknown})
        for template_id in template_ids:
            _apply(session, user.id, template_id, result)
        return _standing(session, principal)


def _apply(session: Session, user_id: int, template_id: str, result: str) -> None:
    for _ in range(2):
        changed = session.execute(
            update(MessageSubscription)
            .where(MessageSubscription.user_id == user_id, MessageSubscription.template_id == template_id)
            .values(allowance=_CHANGES[result], last_result=result, updated_at=utcnow())
            .execution_options(synchronize_session=False)).rowcount
        if changed:
            return
        try:
            with session.begin_nested():
                session.add(MessageSubscription(user_id=user_id, template_id=template_id,
                                                allowance=1 if result == ACCEPT else 0, last_result=result,
                                                updated_at=utcnow()))
            return
        except IntegrityError:
            continue  # a concurrent answer inserted it first: update that row


def allowance_row(session: Session, user_id: int, template_id: str) -> MessageSubscription | None:
    return session.scalar(select(MessageSubscription).where(MessageSubscription.user_id == user_id,
                                                            MessageSubscription.template_id == template_id))


def spend_one(session: Session, user_id: int, template_id: str) -> bool:
    """One message sent: one allowance fewer (never below 0)."""
    return bool(session.execute(
        update(MessageSubscription)
        .where(MessageSubscription.user_id == user_id, MessageSubscription.template_id == template_id,
               MessageSubscription.allowance > 0)
        .values(allowance=MessageSubscription.allowance - 1, updated_at=utcnow())
        .execution_options(synchronize_session=False)).rowcount)


def none_left(session: Session, user_id: int, template_id: str) -> None:
    """The channel says the user has no subscription left for the template."""
    session.execute(update(MessageSubscription)
                    .where(MessageSubscription.user_id == user_id, MessageSubscription.template_id == template_id)
                    .values(allowance=0, last_result=CHANNEL_REFUSED, updated_at=utcnow())
                    .execution_options(synchronize_session=False))
