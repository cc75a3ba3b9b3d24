"""One day of one merchant account against the channel's bill.

Our settled records of the day are read first (the book); the bill is downloaded to a temporary file and
streamed through the matcher, which pops each row's key from the book. What does not match is judged
here: a bill row for a payment we hold unpaid is repaired by asking the channel; a row of ours on
another day is a match; the rest are discrepancies. Records left in the book are missing from the bill:
they are looked for in the next day's bill (a row of 23:59:59 may be billed the day after) and flagged
only once that day has ended; until then they are held.
"""
from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Protocol

from app.channels.base import ChannelError, PaymentChannel
from app.db.models import MerchantAccount
from app.db.types import utcnow
from app.domain.bills import AlipayBill, BillError, BillKind, BillRow
from app.domain.reconciliation import (
    AMOUNT,
    SETTLED_STATUSES,
    STATUS,
    UNKNOWN,
    BillMatch,
    Book,
    Unmatched,
    match_rows,
    match_wechat_bill,
)
from app.domain.refunds import IN_FLIGHT
from app.runtime import Runtime
from app.services.clinics import channel_for_account
from app.services.reconciliation.findings import (
    AMOUNT_MISMATCH,
    HELD,
    MISSING_AT_CHANNEL,
    MISSING_ON_PLATFORM,
    OPEN,
    REPAIRED,
    STATUS_MISMATCH,
    Finding,
    RunOutcome,
    shanghai_today,
)
from app.services.reconciliation.records import (
    PAID,
    SUCCEEDED,
    PaymentRecord,
    RefundRecord,
    find_payments,
    find_refunds,
    load_book,
)
from app.services.reconciliation.repairs import (
    payment_key,
    refund_key,
    repair_payment,
    repair_refund,
    repairs_by_key,
    repairs_of_run,
)
from app.services.reconciliation.runs import RunTicket, scope_of

log = logging.getLogger(__name__)

BillFetch = Callable[[date, Path], "Path | None"]


class Progress(Protocol):
    """How far the bill has been read (the CLI's progress bar)."""

    def begin(self, label: str, total_bytes: int) -> None: ...

    def advance(self, read_bytes: int) -> None: ...

    def end(self) -> None: ...


def run_channel(rt: Runtime, ticket: RunTicket, fetch: BillFetch | None = None,
                progress: Progress | None = None) -> RunOutcome:
    scope = scope_of(ticket.source, ticket.clinic_id, ticket.merchant_account_id)
    with rt.db.session() as session:
        account = session.get(MerchantAccount, ticket.merchant_account_id)
        adapter = channel_for_account(rt, session, account)
        book = load_book(session, account.id, ticket.business_date)
        earlier = {(repair.detail or {}).get("ref"): repair for repair in repairs_of_run(session, ticket, scope)}
    fetch = fetch or adapter.download_bill
    platform = {"platform_payments": len(book.payments), "platform_payment_fen": sum(book.payments.values()),
                "platform_refunds": len(book.refunds), "platform_refund_fen": sum(book.refunds.values())}
    in_book = {ref for ref in earlier if ref.encode() in book.payments or ref.encode() in book.refunds}
    match, billed = _match_day(ticket.source, fetch, ticket.business_date, book, progress)
    outcome = RunOutcome(matched=match.matched)
    _judge_unmatched(rt, ticket, scope, adapter, match.unmatched, outcome)
    _missing_at_channel(rt, ticket, fetch, book, outcome)
    found = {finding.ref for finding in outcome.findings}
    for ref, repair in earlier.items():
        if ref not in found:
            # Repaired by an earlier start of this run: the row matches now, and is reported as the repair.
            if ref in in_book and ref.encode() not in book.payments and ref.encode() not in book.refunds:
                outcome.matched = max(0, outcome.matched - 1)
            outcome.findings.append(Finding(MISSING_ON_PLATFORM, REPAIRED, repair.detail.get("kind", "payment"), ref,
                                            detail=f"repaired on {repair.created_at:%Y-%m-%d %H:%M} UTC "
                                                   f"({repair.outcome})", repair_id=repair.id))
    outcome.totals = {"bill_exists": billed, "bill_rows": match.rows, "bill_payments": match.payment_rows,
                      "bill_refunds": match.refund_rows, "bill_payment_fen": match.payment_fen,
                      "bill_refund_fen": match.refund_fen, "bill_fee_fen": match.fee_fen, **platform}
    return outcome


def _match_day(source: str, fetch: BillFetch, day: date, book: Book, progress: Progress | None,
               keep_unknown: bool = True) -> tuple[BillMatch, bool]:
    """Download the day's bill and stream it through the matcher; an absent bill is an empty day."""
    with tempfile.TemporaryDirectory(prefix="hpay-bill-") as folder:
        path = fetch(day, Path(folder) / ("bill.csv" if source == "wechat" else "bill.csv.zip"))
        if path is None:
            return BillMatch(), False
        size = os.path.getsize(path)
        if progress:
            progress.begin(f"{source} bill {day}", size)
        try:
            if source == "wechat":
                with open(path, "rb") as stream:
                    return match_wechat_bill(stream, book, progress.advance if progress else None,
                                             keep_unknown), True
            result = match_rows(AlipayBill(path), book, keep_unknown)
            if progress:
                progress.advance(size)
            return result, True
        finally:
            if progress:
                progress.end()


def _judge_unmatched(rt: Runtime, ticket: RunTicket, scope: str, adapter: PaymentChannel,
                     unmatched: list[Unmatched], outcome: RunOutcome) -> None:
    unknown = [u.row for u in unmatched if u.reason == UNKNOWN]
    with rt.db.session() as session:
        payments = find_payments(session, [r.out_trade_no for r in unknown if r.kind is BillKind.PAYMENT])
        refunds = find_refunds(session, [r.out_refund_no for r in unknown if r.kind is BillKind.REFUND
                                         and r.out_refund_no])
        repairs = repairs_by_key(session, [payment_key(k) for k in payments] + [refund_key(k) for k in refunds])
    for item in unmatched:
        row = item.row
        ref = row.out_trade_no if row.kind is BillKind.PAYMENT else (row.out_refund_no or "")
        ours = PAID if row.kind is BillKind.PAYMENT else SUCCEEDED
        if item.reason == AMOUNT:
            outcome.findings.append(_finding(AMOUNT_MISMATCH, row, ref, ours, item.platform_amount_fen,
                                             "the bill's amount differs from ours"))
        elif item.reason == STATUS:
            outcome.findings.append(_finding(STATUS_MISMATCH, row, ref, ours, item.platform_amount_fen,
                                             f"the bill says {row.status}"))
        elif row.kind is BillKind.PAYMENT:
            record = payments.get(ref)
            _judge_payment(rt, ticket, scope, adapter, row, record,
                           repairs.get(payment_key(ref)) if record else None, outcome)
        else:
            record = refunds.get(ref)
            _judge_refund(rt, ticket, scope, adapter, row, record,
                          repairs.get(refund_key(ref)) if record else None, outcome)


def _finding(type_: str, row: BillRow, ref: str, our_status: str | None, our_amount_fen: int | None,
             detail: str, status: str = OPEN, repair_id: int | None = None) -> Finding:
    return Finding(type_, status, row.kind.value, ref, channel_trade_no=row.channel_trade_no or None,
                   their_amount_fen=row.amount_fen, our_amount_fen=our_amount_fen, their_status=row.status,
                   our_status=our_status, occurred_at=row.occurred_at, detail=detail[:500], repair_id=repair_id)


def _judge_payment(rt: Runtime, ticket: RunTicket, scope: str, adapter: PaymentChannel, row: BillRow,
                   record: PaymentRecord | None, repair, outcome: RunOutcome) -> None:
    settled = row.status in SETTLED_STATUSES
    ref, add = row.out_trade_no, outcome.findings.append
    if record is None:
        if settled:
            add(_finding(MISSING_ON_PLATFORM, row, ref, None, None,
                         "no payment with this out_trade_no on the platform"))
        else:
            outcome.matched += 1  # an unsettled row of a payment we never took: nothing moved on either side
    elif record.merchant_account_id != ticket.merchant_account_id:
        add(_finding(MISSING_ON_PLATFORM, row, ref, record.status, record.amount_fen,
                     f"recorded under merchant account {record.merchant_account_id}, not this one"))
    elif record.status == PAID:
        if not settled:
            add(_finding(STATUS_MISMATCH, row, ref, record.status, record.amount_fen, f"the bill says {row.status}"))
        elif record.amount_fen != row.amount_fen:
            add(_finding(AMOUNT_MISMATCH, row, ref, record.status, record.amount_fen,
                         "the bill's amount differs from ours (recorded on another day)"))
        else:
            outcome.matched += 1  # ours too, recorded on a neighbouring day
    elif not settled:
        outcome.matched += 1
    elif repair is not None:
        add(_finding(MISSING_ON_PLATFORM, row, ref, record.status, record.amount_fen,
                     f"repaired once already ({repair.outcome}); still not paid here", status=OPEN,
                     repair_id=repair.id))
    else:
        finding = repair_payment(rt, ticket, scope, adapter, record, row)
        if finding is None:
            outcome.matched += 1
        else:
            add(finding)


def _judge_refund(rt: Runtime, ticket: RunTicket, scope: str, adapter: PaymentChannel, row: BillRow,
                  record: RefundRecord | None, repair, outcome: RunOutcome) -> None:
    ref, add = row.out_refund_no or "", outcome.findings.append
    if record is None:
        add(_finding(MISSING_ON_PLATFORM, row, ref, None, None, "no refund with this number on the platform"))
    elif record.merchant_account_id != ticket.merchant_account_id:
        add(_finding(MISSING_ON_PLATFORM, row, ref, record.status, record.amount_fen,
                     f"a refund of merchant account {record.merchant_account_id}, not this one"))
    elif record.status == SUCCEEDED:
        if record.amount_fen != row.amount_fen or row.status not in SETTLED_STATUSES:
            add(_finding(AMOUNT_MISMATCH if record.amount_fen != row.amount_fen else STATUS_MISMATCH, row, ref,
                         record.status, record.amount_fen, "the bill differs from ours (settled on another day)"))
        else:
            outcome.matched += 1
    elif record.status in IN_FLIGHT and row.status in SETTLED_STATUSES:
        if repair is not None:
            add(_finding(MISSING_ON_PLATFORM, row, ref, record.status, record.amount_fen,
                         f"repaired once already ({repair.outcome}); still not settled here", repair_id=repair.id))
            return
        finding = repair_refund(rt, ticket, scope, adapter, record, row)
        if finding is None:
            outcome.matched += 1
        else:
            add(finding)
    else:
        add(_finding(STATUS_MISMATCH, row, ref, record.status, record.amount_fen,
                     f"the bill says {row.status}, we say {record.status}"))


def _missing_at_channel(rt: Runtime, ticket: RunTicket, fetch: BillFetch, book: Book, outcome: RunOutcome) -> None:
    """Our records the bill did not list: looked for in the next day's bill, then held or flagged."""
    if not book.payments and not book.refunds:
        return
    next_day, today = ticket.business_date + timedelta(days=1), shanghai_today(utcnow())
    why, final = f"not in the bill of {ticket.business_date}", next_day < today
    if next_day <= today:
        try:
            late, _ = _match_day(ticket.source, fetch, next_day, book, None, keep_unknown=False)
        except (ChannelError, BillError) as exc:
            log.warning("the %s bill of %s could not be read for late rows: %s", ticket.source, next_day, exc)
            why, final = f"{why}; the bill of {next_day} could not be read ({exc}): held", False
        else:
            outcome.matched += late.matched
            for item in late.unmatched:
                row = item.row
                ref = row.out_trade_no if row.kind is BillKind.PAYMENT else (row.out_refund_no or "")
                outcome.findings.append(_finding(AMOUNT_MISMATCH if item.reason == AMOUNT else STATUS_MISMATCH,
                                                 row, ref, PAID if row.kind is BillKind.PAYMENT else SUCCEEDED,
                                                 item.platform_amount_fen, f"billed late, on {next_day}"))
            why += f" nor (so far) of {next_day}" if not final else f" nor of {next_day}"
    if next_day >= today:
        why += f"; held until {next_day} has ended"
    status = OPEN if final else HELD
    with rt.db.session() as session:
        payments = find_payments(session, [key.decode() for key in book.payments])
        refunds = find_refunds(session, [key.decode() for key in book.refunds])
    for kind, records in (("payment", payments), ("refund", refunds)):
        for ref, record in records.items():
            outcome.findings.append(Finding(
                MISSING_AT_CHANNEL, status, kind, ref, our_amount_fen=record.amount_fen, our_status=record.status,
                occurred_at=record.paid_at if kind == "payment" else record.succeeded_at, detail=why[:500]))
