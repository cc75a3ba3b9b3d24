"""One day of one clinic against its HIS's daily export: what the HIS recorded versus what we wrote.

Our side is the clinic's ledger writes (every outbox kind the HIS keeps a record of: not an extra charge's
bill) sent that day, and those given up (flagged) that day. A write
the export lacks is looked for in the exports of the neighbouring days (the HIS's clock and ours may
put a write of midnight on different days), then re-driven: its outbox row goes back to pending under
the same idempotency key, so the HIS records it exactly once however often it is sent. A record the
HIS holds that we never wrote is a discrepancy for finance. Writes still pending are the outbox's own
business and not judged here.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from app.db.models import Clinic, HisOutbox
from app.db.types import utcnow
from app.domain.his_writes import LEDGER_KINDS, HisWriteStatus
from app.domain.keyed_match import match_keyed
from app.his.base import HisClient, HisRecord
from app.runtime import Runtime
from app.services.his import his_client
from app.services.reconciliation.findings import (
    AMOUNT_MISMATCH,
    MISSING_IN_HIS,
    OPEN,
    REPAIRED,
    STATUS_MISMATCH,
    UNKNOWN_IN_HIS,
    Finding,
    RunOutcome,
    day_bounds,
    shanghai_today,
)
from app.services.reconciliation.repairs import his_key, redrive_his_write, repairs_by_key, repairs_of_run
from app.services.reconciliation.runs import RunTicket, scope_of

LOOKUP_BATCH = 1_000
PENDING, SENT, FLAGGED = HisWriteStatus.PENDING, HisWriteStatus.SENT, HisWriteStatus.FLAGGED


@dataclass(frozen=True)
class OurWrite:
    id: int
    clinic_id: int
    kind: str
    key: str
    amount_fen: int | None
    status: str


def _write(row: HisOutbox) -> OurWrite:
    return OurWrite(row.id, row.clinic_id, row.kind, row.idempotency_key, (row.payload or {}).get("amount_fen"),
                    row.status)


def our_writes(session: Session, clinic_id: int, day: date) -> dict[str, OurWrite]:
    start, end = day_bounds(day)
    rows = session.scalars(select(HisOutbox).where(
        HisOutbox.clinic_id == clinic_id, HisOutbox.kind.in_(LEDGER_KINDS), or_(
        and_(HisOutbox.status == SENT, HisOutbox.sent_at >= start, HisOutbox.sent_at < end),
        and_(HisOutbox.status == FLAGGED, HisOutbox.created_at >= start, HisOutbox.created_at < end))))
    return {row.idempotency_key: _write(row) for row in rows}


def writes_by_key(session: Session, keys: list[str]) -> dict[str, OurWrite]:
    found = {}
    for start in range(0, len(keys), LOOKUP_BATCH):
        for row in session.scalars(select(HisOutbox).where(
                HisOutbox.idempotency_key.in_(keys[start:start + LOOKUP_BATCH]))):
            found[row.idempotency_key] = _write(row)
    return found


def run_his(rt: Runtime, ticket: RunTicket) -> RunOutcome:
    scope = scope_of(ticket.source, ticket.clinic_id, None)
    day = ticket.business_date
    with rt.db.session() as session:
        client = his_client(rt, session.get(Clinic, ticket.clinic_id))
        ours = our_writes(session, ticket.clinic_id, day)
        earlier = {(repair.detail or {}).get("ref"): repair for repair in repairs_of_run(session, ticket, scope)}
    records = client.export(day)
    exported = {record.idempotency_key for record in records}
    # Only acknowledged writes are expected in the export; a given-up one found there is judged apart.
    expected = {key: write.amount_fen for key, write in ours.items() if write.status == SENT}
    match = match_keyed(records, lambda r: r.idempotency_key, lambda r: r.amount_fen, expected)
    outcome = RunOutcome(matched=match.matched)
    for record, amount in match.amount_mismatches:
        outcome.findings.append(_record_finding(AMOUNT_MISMATCH, record, ours[record.idempotency_key], amount,
                                                "the HIS recorded another amount"))
    _judge_unknown(rt, ticket, scope, match.unknown, outcome)
    missing = {key: ours[key] for key in expected}
    missing.update((key, write) for key, write in ours.items() if write.status == FLAGGED and key not in exported)
    _judge_missing(rt, ticket, scope, client, missing, outcome)
    found = {finding.ref for finding in outcome.findings}
    for ref, repair in earlier.items():
        if ref not in found:
            if ref in exported:  # it matched this time, and is reported as the repair instead
                outcome.matched = max(0, outcome.matched - 1)
            outcome.findings.append(Finding(repair.detail.get("type", MISSING_IN_HIS), REPAIRED,
                                            repair.detail.get("kind", "write"), ref,
                                            detail=f"re-driven on {repair.created_at:%Y-%m-%d %H:%M} UTC",
                                            repair_id=repair.id))
    outcome.totals = {"his_records": len(records), "his_record_fen": sum(r.amount_fen for r in records),
                      "platform_writes": len(ours)}
    return outcome


def _record_finding(type_: str, record: HisRecord, write: OurWrite | None, our_amount: int | None,
                    detail: str, status: str = OPEN) -> Finding:
    return Finding(type_, status, record.kind, record.idempotency_key, their_amount_fen=record.amount_fen,
                   our_amount_fen=our_amount, their_status="recorded", our_status=write.status if write else None,
                   occurred_at=record.recorded_at, detail=detail)


def _judge_unknown(rt: Runtime, ticket: RunTicket, scope: str, records: list[HisRecord],
                   outcome: RunOutcome) -> None:
    """Export records that are not among the day's writes: ours from another day, or never ours."""
    with rt.db.session() as session:
        writes = writes_by_key(session, [record.idempotency_key for record in records])
        repairs = repairs_by_key(session, [his_key(key) for key in writes])
    for record in records:
        write = writes.get(record.idempotency_key)
        if write is None:
            outcome.findings.append(_record_finding(UNKNOWN_IN_HIS, record, None, None,
                                                    "the platform never made this write"))
        elif write.clinic_id != ticket.clinic_id:
            continue  # another clinic's write to a HIS it shares with this one
        elif write.status in (SENT, PENDING):
            if write.amount_fen is not None and write.amount_fen != record.amount_fen:
                outcome.findings.append(_record_finding(AMOUNT_MISMATCH, record, write, write.amount_fen,
                                                        "the HIS recorded another amount"))
            else:
                outcome.matched += 1
        elif write.status == FLAGGED:
            # We gave up on a write the HIS did record (an answer lost to a timeout): sending it again makes
            # the HIS answer from its record, and the outbox completes it.
            repair = repairs.get(his_key(write.key))
            finding = None if repair else redrive_his_write(rt, ticket, scope, write.id,
                                                            "the HIS holds a write we had given up on",
                                                            STATUS_MISMATCH)
            if finding is None:
                outcome.findings.append(_record_finding(
                    STATUS_MISMATCH, record, write, write.amount_fen,
                    "the HIS holds a write we gave up on" + ("; re-driven once already, given up on again"
                                                             if repair else "")))
            else:
                outcome.findings.append(finding)
        else:
            outcome.findings.append(_record_finding(STATUS_MISMATCH, record, write, write.amount_fen,
                                                    f"the HIS holds a write that it {write.status}"))


def _judge_missing(rt: Runtime, ticket: RunTicket, scope: str, client: HisClient, missing: dict[str, OurWrite],
                   outcome: RunOutcome) -> None:
    """Our writes the export lacks: a neighbouring day's export may hold them; the rest are re-driven."""
    if not missing:
        return
    today = shanghai_today(utcnow())
    for day in (ticket.business_date - timedelta(days=1), ticket.business_date + timedelta(days=1)):
        if day <= today and missing:
            for record in client.export(day):
                if missing.pop(record.idempotency_key, None) is not None:
                    outcome.matched += 1
    with rt.db.session() as session:
        repairs = repairs_by_key(session, [his_key(key) for key in missing])
    for key, write in missing.items():
        repair = repairs.get(his_key(key))
        if repair is not None:
            outcome.findings.append(Finding(
                MISSING_IN_HIS, OPEN if write.status == FLAGGED else REPAIRED, write.kind, key,
                our_amount_fen=write.amount_fen, our_status=write.status,
                detail="re-driven once already" + ("; the write failed again" if write.status == FLAGGED else ""),
                repair_id=repair.id))
            continue
        why = ("the HIS does not hold a write it acknowledged" if write.status == SENT
               else "the write was given up on")
        finding = redrive_his_write(rt, ticket, scope, write.id, why)
        if finding is not None:
            outcome.findings.append(finding)

