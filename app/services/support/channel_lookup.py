"""A trade number we have not heard of, looked up at the channel.

A patient reads the number on their WeChat or Alipay bill; when its notification was lost and the janitor has
not asked yet, our records do not hold that number (WeChat gives its transaction id only when it reports the
payment). Then the search asks the channel, on each active merchant account of the user's clinics of the
channel the number's shape points to, which trade bears it; the answer's out_trade_no, when it is one of our
payments on that account, is searched instead. Nothing is recorded here: "ask the channel now" on the order
records the payment, through the same path as the janitor.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.channels.base import ChannelError
from app.db.models import MerchantAccount, PaymentAttempt
from app.domain.transaction_search import channels_of_trade_no
from app.runtime import Runtime
from app.services.clinics import channel_for_account

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChannelFinding:
    channel: str
    out_trade_no: str
    state: str
    """The channel's own word for the trade's state (SUCCESS, TRADE_SUCCESS, NOTPAY, ...)."""


def find_at_channel(rt: Runtime, session: Session, clinic_ids: tuple[int, ...], trade_no: str) -> ChannelFinding | None:
    for channel in channels_of_trade_no(trade_no):
        accounts = session.scalars(select(MerchantAccount).where(
            MerchantAccount.clinic_id.in_(clinic_ids), MerchantAccount.channel == channel,
            MerchantAccount.active.is_(True)).order_by(MerchantAccount.id))
        for account in accounts:
            try:
                found = channel_for_account(rt, session, account).find_payment(trade_no)
            except ChannelError as exc:
                log.warning("looking up %s trade %s on account %s failed: %s", channel, trade_no, account.id, exc)
                continue
            if found is None:
                continue
            ours = session.scalar(select(PaymentAttempt.id).where(PaymentAttempt.out_trade_no == found.out_trade_no,
                                                                  PaymentAttempt.merchant_account_id == account.id))
            if ours is not None:
                return ChannelFinding(channel, found.out_trade_no, found.raw_state)
    return None
