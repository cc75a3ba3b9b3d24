"""Our side of a channel day: settled payments and refunds of one merchant account, read in one pass each.

A day can hold a million payments, so the rows are streamed (server-side on PostgreSQL) straight into
the matcher's dicts, keyed by the number the channel sees; the few bill rows that are not among the
day's records are then looked up by number, in batches.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import PaymentAttempt, Refund
from app.domain.payments import PaymentStatus
from app.domain.reconciliation import Book
from app.domain.refunds import RefundStatus
from app.services.reconciliation.findings import day_bounds

STREAM_ROWS = 20_000
LOOKUP_BATCH = 1_000
PAID = PaymentStatus.PAID
SUCCEEDED = RefundStatus.SUCCEEDED


def load_book(session: Session, merchant_account_id: int, day: date) -> Book:
    """Read through Core rather than the ORM: a million rows cost a second and a half instead of four."""
    start, end = day_bounds(day)
    connection = session.connection()
    payments = connection.execute(
        select(PaymentAttempt.out_trade_no, PaymentAttempt.amount_fen)
        .where(PaymentAttempt.merchant_account_id == merchant_account_id, PaymentAttempt.paid_at >= start,
               PaymentAttempt.paid_at < end, PaymentAttempt.status == PAID)
        .execution_options(yield_per=STREAM_ROWS))
    book = Book({key.encode(): amount for key, amount in payments})
    refunds = connection.execute(
        select(Refund.refund_no, Refund.amount_fen)
        .join(PaymentAttempt, PaymentAttempt.id == Refund.payment_attempt_id)
        .where(PaymentAttempt.merchant_account_id == merchant_account_id, Refund.succeeded_at >= start,
               Refund.succeeded_at < end, Refund.status == SUCCEEDED)
        .execution_options(yield_per=STREAM_ROWS))
    book.refunds = {key.encode(): amount for key, amount in refunds}
    return book


@dataclass(frozen=True)
class PaymentRecord:
    id: int
    out_trade_no: str
    merchant_account_id: int
    amount_fen: int
    status: str
    paid_at: datetime | None


@dataclass(frozen=True)
class RefundRecord:
    id: int
    refund_no: str
    merchant_account_id: int
    amount_fen: int
    status: str
    succeeded_at: datetime | None


def _batches(keys: Iterable[str]) -> Iterable[list[str]]:
    batch: list[str] = []
    for key in dict.fromkeys(keys):
        batch.append(key)
        if len(batch) == LOOKUP_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def find_payments(session: Session, out_trade_nos: Iterable[str]) -> dict[str, PaymentRecord]:
    found = {}
    for batch in _batches(out_trade_nos):
        for row in session.execute(select(PaymentAttempt.id, PaymentAttempt.out_trade_no,
                                          PaymentAttempt.merchant_account_id, PaymentAttempt.amount_fen,
                                          PaymentAttempt.status, PaymentAttempt.paid_at)
                                   .where(PaymentAttempt.out_trade_no.in_(batch))):
            found[row.out_trade_no] = PaymentRecord(*row)
    return found


def find_refunds(session: Session, refund_nos: Iterable[str]) -> dict[str, RefundRecord]:
    found = {}
    for batch in _batches(refund_nos):
        for row in session.execute(select(Refund.id, Refund.refund_no, PaymentAttempt.merchant_account_id,
                                          Refund.amount_fen, Refund.status, Refund.succeeded_at)
                                   .join(PaymentAttempt, PaymentAttempt.id == Refund.payment_attempt_id)
                                   .where(Refund.refund_no.in_(batch))):
            found[row.refund_no] = RefundRecord(*row)
    return found
