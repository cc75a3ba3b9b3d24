"""Which of our records a verified notification is about, found through the merchant account that verified it.

Every number in a notification is chosen by whoever signed it. The only thing we
may trust is which merchant account's key verified it, so a payment is matched by
its out_trade_no on that account, and a refund through its payment attempt on that
account: a refund number alone would let one clinic's key settle another clinic's
refund. The amounts the channel states are checked against our records too.
Ingestion uses these checks to refuse before storing; processing repeats them,
since an inbox row may have been stored by an older version.
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.channels.base import RefundNotification
from app.db.models import PaymentAttempt, Refund


class NotificationRefused(Exception):
    """The notification names something that is not this merchant account's, or disagrees with our record."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def payment_attempt(session: Session, account_id: int | None, out_trade_no: str, *,
                    lock: bool = False) -> PaymentAttempt:
    query = select(PaymentAttempt).where(PaymentAttempt.out_trade_no == out_trade_no,
                                         PaymentAttempt.merchant_account_id == account_id)
    attempt = session.scalar(query.with_for_update() if lock else query)
    if attempt is None or account_id is None:
        raise NotificationRefused(f"no payment {out_trade_no} on merchant account {account_id}")
    return attempt


def refund_mismatch(note: RefundNotification, attempt: PaymentAttempt, part: Refund | None) -> str | None:
    """Why the channel's figures for a refund disagree with our payment and refund part, or None."""
    if note.channel_trade_no and attempt.channel_trade_no and note.channel_trade_no != attempt.channel_trade_no:
        return f"channel trade {note.channel_trade_no} is not payment {attempt.out_trade_no}'s"
    if note.payment_total_fen is not None and note.payment_total_fen != attempt.amount_fen:
        return (f"the channel says payment {attempt.out_trade_no} was {note.payment_total_fen} fen, "
                f"we took {attempt.amount_fen} fen")
    if part is None:
        return None
    if note.amount_fen is not None and note.amount_fen != part.amount_fen:
        return f"refund_fee {note.amount_fen} fen does not match refund {part.refund_no}'s {part.amount_fen} fen"
    # Alipay states only the trade's cumulative refund, which holds this part and at most the whole payment.
    if note.refund_total_fen is not None and not part.amount_fen <= note.refund_total_fen <= attempt.amount_fen:
        return (f"refunded total {note.refund_total_fen} fen cannot hold refund {part.refund_no}'s "
                f"{part.amount_fen} fen of a {attempt.amount_fen} fen payment")
    return None


def refund_target(session: Session, account_id: int | None, note: RefundNotification, *,
                  lock: bool = False) -> tuple[PaymentAttempt, Refund | None]:
    """The payment and the refund part a verified refund notification settles (no part when the channel did not
    name the refund: Alipay may omit out_biz_no). NotificationRefused when they are not this account's or the
    amounts disagree."""
    attempt = payment_attempt(session, account_id, note.out_trade_no)
    part = None
    if note.out_refund_no:
        query = select(Refund).where(Refund.refund_no == note.out_refund_no, Refund.payment_attempt_id == attempt.id)
        part = session.scalar(query.with_for_update() if lock else query)
        if part is None:
            raise NotificationRefused(f"refund {note.out_refund_no} is not a refund of payment {note.out_trade_no} "
                                      f"on merchant account {account_id}")
    problem = refund_mismatch(note, attempt, part)
    if problem:
        raise NotificationRefused(problem)
    return attempt, part
