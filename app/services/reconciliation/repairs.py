"""Automatic repairs where the truth is knowable, each done at most once.

A repair row with a unique key (`payment:<out_trade_no>`, `refund:<out_refund_no>`, `his:<idempotency
key>`) is inserted in the same transaction as the repair itself, so however many runs find the same
difference, and however many run at once, the repair happens once; a later run reports the earlier
repair instead of acting. The effects go through the paths every notification takes: record_payment
(exactly once per payment attempt), the refund executor's apply_notification, and the HIS outbox,
whose re-sent write keeps its idempotency key so the HIS records it once.
"""
from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.channels.base import ChannelError, PaymentChannel, RefundState, TradeState
from app.db.models import HisOutbox, PaymentAttempt, ReconciliationRepair, Refund
from app.domain.bills import BillRow
from app.domain.his_writes import HisWriteStatus
from app.domain.payments import PaymentStatus
from app.domain.refunds import RefundStatus
from app.runtime import Runtime
from app.services.common.audit import record_system_event
from app.services.his import redrive
from app.services.payments import AmountMismatch, record_payment
from app.services.reconciliation.findings import (
    AMOUNT_MISMATCH,
    MISSING_IN_HIS,
    MISSING_ON_PLATFORM,
    OPEN,
    REPAIRED,
    STATUS_MISMATCH,
    Finding,
)
from app.services.reconciliation.records import PaymentRecord, RefundRecord
from app.services.reconciliation.runs import RunTicket
from app.services.refunds import apply_notification

log = logging.getLogger(__name__)


def payment_key(out_trade_no: str) -> str:
    return f"payment:{out_trade_no}"


def refund_key(refund_no: str) -> str:
    return f"refund:{refund_no}"


def his_key(idempotency_key: str) -> str:
    return f"his:{idempotency_key}"


def repairs_by_key(session: Session, keys: list[str]) -> dict[str, ReconciliationRepair]:
    found = {}
    for start in range(0, len(keys), 1000):
        for repair in session.scalars(select(ReconciliationRepair).where(
                ReconciliationRepair.key.in_(keys[start:start + 1000]))):
            found[repair.key] = repair
    return found


def repairs_of_run(session: Session, ticket: RunTicket, scope: str) -> list[ReconciliationRepair]:
    """The repairs earlier starts of this run made, to report them again."""
    return [repair for repair in session.scalars(select(ReconciliationRepair).where(
        ReconciliationRepair.business_date == ticket.business_date, ReconciliationRepair.source == ticket.source,
        ReconciliationRepair.clinic_id == ticket.clinic_id)) if (repair.detail or {}).get("scope") == scope]


def _bill_finding(type_: str, status: str, row: BillRow, ref: str, our_status: str | None,
                  our_amount_fen: int | None, detail: str, repair_id: int | None = None) -> Finding:
    return Finding(type_, status, row.kind.value, ref, channel_trade_no=row.channel_trade_no or None,
                   their_amount_fen=row.amount_fen, our_amount_fen=our_amount_fen, their_status=row.status,
                   our_status=our_status, occurred_at=row.occurred_at, detail=detail[:500], repair_id=repair_id)


def repair_payment(rt: Runtime, ticket: RunTicket, scope: str, adapter: PaymentChannel, record: PaymentRecord,
                   row: BillRow) -> Finding | None:
    """The bill lists a payment we hold unpaid (we never heard of it): ask the channel, and apply what it says
    as its notification would have. None when the payment was recorded meanwhile (a match)."""
    key = payment_key(record.out_trade_no)
    try:
        result = adapter.query_payment(record.out_trade_no)
    except ChannelError as exc:
        return _bill_finding(MISSING_ON_PLATFORM, OPEN, row, record.out_trade_no, record.status, record.amount_fen,
                             f"the channel did not answer the query ({exc}); the next run tries again")
    if result.state not in (TradeState.PAID, TradeState.REFUNDED):
        return _bill_finding(STATUS_MISMATCH, OPEN, row, record.out_trade_no, record.status, record.amount_fen,
                             f"the bill lists it paid, the channel's query answers {result.raw_state}")
    try:
        with rt.db.session() as session:
            attempt = session.scalar(select(PaymentAttempt).where(PaymentAttempt.id == record.id).with_for_update())
            outcome = record_payment(session, attempt, result.channel_trade_no, result.amount_fen, result.paid_at,
                                     "reconciliation")
            if outcome == "already_recorded":
                return None
            repair = _add_repair(session, ticket, scope, key, "record_payment", outcome,
                                 {"type": MISSING_ON_PLATFORM, "kind": "payment", "ref": record.out_trade_no,
                                  "channel_trade_no": result.channel_trade_no})
            record_system_event(session, ticket.clinic_id, "reconciliation_repair", "payment_attempt",
                                record.out_trade_no, before={"status": record.status},
                                after={"status": PaymentStatus.PAID, "outcome": outcome,
                                       "amount_fen": result.amount_fen, "channel_trade_no": result.channel_trade_no},
                                note=f"missing on the platform in the {ticket.source} bill of {ticket.business_date}")
            repair_id = repair.id
    except AmountMismatch as exc:
        return _bill_finding(AMOUNT_MISMATCH, OPEN, row, record.out_trade_no, record.status, record.amount_fen,
                             str(exc))
    except IntegrityError:
        return _reported(rt, key, row, record.out_trade_no, record.status, record.amount_fen)
    log.warning("reconciliation recorded payment %s from the %s bill of %s: %s", record.out_trade_no, ticket.source,
                ticket.business_date, outcome)
    return _bill_finding(MISSING_ON_PLATFORM, REPAIRED, row, record.out_trade_no, record.status, record.amount_fen,
                         f"recorded from the channel's query ({outcome})", repair_id)


def repair_refund(rt: Runtime, ticket: RunTicket, scope: str, adapter: PaymentChannel, record: RefundRecord,
                  row: BillRow) -> Finding | None:
    """The bill lists a refund we still hold in flight: ask the channel and settle it as its notification
    would have. None when it settled meanwhile."""
    key = refund_key(record.refund_no)
    try:
        result = adapter.query_refund(row.out_trade_no, record.refund_no)
    except ChannelError as exc:
        return _bill_finding(MISSING_ON_PLATFORM, OPEN, row, record.refund_no, record.status, record.amount_fen,
                             f"the channel did not answer the refund query ({exc}); the next run tries again")
    if result.state is not RefundState.SUCCEEDED:
        return _bill_finding(STATUS_MISMATCH, OPEN, row, record.refund_no, record.status, record.amount_fen,
                             f"the bill lists it refunded, the channel's query answers {result.raw_status}")
    try:
        with rt.db.session() as session:
            part = session.scalar(select(Refund).where(Refund.id == record.id).with_for_update())
            if not apply_notification(session, part, RefundState.SUCCEEDED, result.channel_refund_id,
                                      result.succeeded_at):
                return None
            repair = _add_repair(session, ticket, scope, key, "settle_refund", RefundStatus.SUCCEEDED,
                                 {"type": MISSING_ON_PLATFORM, "kind": "refund", "ref": record.refund_no})
            record_system_event(session, ticket.clinic_id, "reconciliation_repair", "refund", record.refund_no,
                                before={"status": record.status}, after={"status": RefundStatus.SUCCEEDED},
                                note=f"missing on the platform in the {ticket.source} bill of {ticket.business_date}")
            repair_id = repair.id
    except IntegrityError:
        return _reported(rt, key, row, record.refund_no, record.status, record.amount_fen)
    return _bill_finding(MISSING_ON_PLATFORM, REPAIRED, row, record.refund_no, record.status, record.amount_fen,
                         "settled from the channel's refund query", repair_id)


def _reported(rt: Runtime, key: str, row: BillRow, ref: str, our_status: str, our_amount_fen: int) -> Finding:
    """Another run made this repair at the same moment: report it."""
    with rt.db.session() as session:
        repair = session.scalar(select(ReconciliationRepair).where(ReconciliationRepair.key == key))
    return _bill_finding(MISSING_ON_PLATFORM, REPAIRED, row, ref, our_status, our_amount_fen,
                         f"repaired by another run ({repair.outcome})", repair.id)


def redrive_his_write(rt: Runtime, ticket: RunTicket, scope: str, outbox_id: int, why: str,
                      finding_type: str = MISSING_IN_HIS) -> Finding | None:
    """Send a write the HIS does not hold again, under its own idempotency key: the HIS records it once.
    None when the write is already on its way (pending)."""
    try:
        with rt.db.session() as session:
            row = session.scalar(select(HisOutbox).where(HisOutbox.id == outbox_id).with_for_update())
            if row.status == HisWriteStatus.PENDING:
                return None
            before = row.status
            repair = _add_repair(session, ticket, scope, his_key(row.idempotency_key), "redrive_his_write",
                                 HisWriteStatus.PENDING, {"type": finding_type, "kind": row.kind,
                                                          "ref": row.idempotency_key, "was": before})
            redrive(session, row, why, actor=f"reconciliation:{ticket.run_id}")
            record_system_event(session, ticket.clinic_id, "reconciliation_repair", "his_outbox",
                                row.idempotency_key, before={"status": before},
                                after={"status": HisWriteStatus.PENDING},
                                note=f"{why} (HIS export of {ticket.business_date})")
            finding = Finding(finding_type, REPAIRED, row.kind, row.idempotency_key,
                              our_amount_fen=(row.payload or {}).get("amount_fen"), our_status=before,
                              detail=f"{why}; sent again under its idempotency key", repair_id=repair.id)
    except IntegrityError:
        return None
    log.warning("reconciliation re-drove HIS write %s: %s", finding.ref, why)
    return finding


def _add_repair(session: Session, ticket: RunTicket, scope: str, key: str, action: str, outcome: str,
                detail: dict) -> ReconciliationRepair:
    repair = ReconciliationRepair(key=key, clinic_id=ticket.clinic_id, action=action, outcome=outcome,
                                  business_date=ticket.business_date, source=ticket.source,
                                  detail={**detail, "scope": scope, "run_id": ticket.run_id})
    session.add(repair)
    session.flush()
    return repair
