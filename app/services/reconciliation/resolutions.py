"""Finance's decisions on open discrepancies, and what each decision does.

- `trust_channel` on a payment or refund the channel's bill lists and we hold unsettled (`missing_on_platform`)
  repairs it through the automatic repair itself (repairs.repair_payment / repair_refund: ask the channel,
  record it as its notification would have, the order's HIS write with it), under the same once-only repair
  key, so a person and a later run never repair it twice. When the channel does not confirm it, nothing is
  decided and the discrepancy stays open with the channel's answer. A trade the platform never made has
  nothing to complete: the decision is recorded.
- `trust_platform` on a channel's bill records a claim against the channel (our record stands: the channel
  owes the difference), listed for finance until it is settled.
- `ignore` (and any other decision) is recorded with its note.
Every decision needs a note and is audited with the discrepancy before and after.
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import (
    MerchantAccount,
    PaymentAttempt,
    ReconciliationClaim,
    ReconciliationDiscrepancy,
    ReconciliationRepair,
    ReconciliationRun,
    Refund,
)
from app.db.types import utcnow
from app.domain.bills import BillKind, BillRow
from app.domain.errors import Conflict, InvalidInput, NotFound
from app.domain.reconciliation_runs import ClaimStatus
from app.runtime import Runtime
from app.services.clinics import channel_for_account
from app.services.common.audit import record_event
from app.services.common.principals import StaffPrincipal
from app.services.common.status import set_status
from app.services.reconciliation.findings import (
    AMOUNT_MISMATCH,
    CHANNEL_SOURCES,
    MISSING_AT_CHANNEL,
    MISSING_ON_PLATFORM,
    OPEN,
    REPAIRED,
    RESOLUTIONS,
    RESOLVED,
    TRUST_CHANNEL,
    TRUST_PLATFORM,
    Finding,
)
from app.services.reconciliation.records import find_payments, find_refunds
from app.services.reconciliation.repairs import repair_payment, repair_refund
from app.services.reconciliation.runs import RunTicket, scope_of

MAX_ROW_ID = 2**31 - 1


def discrepancy_view(row: ReconciliationDiscrepancy, repair: ReconciliationRepair | None,
                     claim: ReconciliationClaim | None = None) -> dict:
    return {
        "id": row.id, "run_id": row.run_id, "type": row.type, "status": row.status, "kind": row.kind,
        "ref": row.ref, "channel_trade_no": row.channel_trade_no, "their_amount_fen": row.their_amount_fen,
        "our_amount_fen": row.our_amount_fen, "their_status": row.their_status, "our_status": row.our_status,
        "occurred_at": row.occurred_at, "detail": row.detail, "resolution": row.resolution, "note": row.note,
        "resolved_by": row.resolved_by, "resolved_at": row.resolved_at,
        "repair": None if repair is None else {"id": repair.id, "action": repair.action, "outcome": repair.outcome,
                                               "at": repair.created_at},
        "claim_id": None if claim is None else claim.id,
    }


def _state(row: ReconciliationDiscrepancy) -> dict:
    return {"status": row.status, "type": row.type, "ref": row.ref, "resolution": row.resolution,
            "repair_id": row.repair_id}


def _scoped(session: Session, principal: StaffPrincipal, discrepancy_id: int, *, lock: bool = False):
    row = None
    if 0 < discrepancy_id <= MAX_ROW_ID:
        query = (select(ReconciliationDiscrepancy).join(ReconciliationRun)
                 .where(ReconciliationDiscrepancy.id == discrepancy_id,
                        ReconciliationRun.clinic_id.in_(principal.clinic_ids)))
        row = session.scalar(query.with_for_update(of=ReconciliationDiscrepancy) if lock else query)
    if row is None:
        raise NotFound("no such discrepancy in your clinics", "discrepancy_not_found")
    return row


def resolve_discrepancy(rt: Runtime, principal: StaffPrincipal, discrepancy_id: int, resolution: str,
                        note: str) -> dict:
    """Finance's decision on an open discrepancy, done (see the module's note), kept with who and when, and in
    the audit trail. The decision is carried over to the same discrepancy when its day is reconciled again."""
    if resolution not in RESOLUTIONS:
        raise InvalidInput(f"resolution must be one of {', '.join(RESOLUTIONS)}", "invalid_resolution")
    if not (note or "").strip():
        raise InvalidInput("say why in the note", "note_required")
    with rt.db.session() as session:
        row = _scoped(session, principal, discrepancy_id)
        if row.status != OPEN:
            raise Conflict(f"the discrepancy is {row.status}; only open ones are resolved", "discrepancy_not_open")
        run = session.get(ReconciliationRun, row.run_id)
        repairs = (resolution == TRUST_CHANNEL and row.type == MISSING_ON_PLATFORM
                   and run.source in CHANNEL_SOURCES)
    repair_id = _repair_as_the_run_would(rt, run, row) if repairs else None
    return _decide(rt, principal, discrepancy_id, resolution, note.strip()[:500], repair_id)


def _repair_as_the_run_would(rt: Runtime, run: ReconciliationRun, row: ReconciliationDiscrepancy) -> int | None:
    """The automatic repair of a payment or refund missing on our side; its repair id (None when it was
    recorded meanwhile). Refused (the discrepancy stays open) when the channel does not confirm it."""
    ticket = RunTicket(run.id, run.attempt, run.business_date, run.source, run.clinic_id, run.merchant_account_id,
                       "finance")
    scope = scope_of(run.source, run.clinic_id, run.merchant_account_id)
    with rt.db.session() as session:
        account = session.get(MerchantAccount, run.merchant_account_id)
        adapter = channel_for_account(rt, session, account)
        if row.kind == BillKind.PAYMENT:
            record = find_payments(session, [row.ref]).get(row.ref)
            out_trade_no = row.ref
        else:
            record = find_refunds(session, [row.ref]).get(row.ref)
            out_trade_no = record and session.scalar(
                select(PaymentAttempt.out_trade_no).join(Refund, Refund.payment_attempt_id == PaymentAttempt.id)
                .where(Refund.id == record.id))
    if record is None or record.merchant_account_id != run.merchant_account_id:
        # A trade the platform never made (taken outside it): nothing of ours to complete; the decision that the
        # channel's money stands is recorded as it is.
        return None
    bill_row = BillRow(kind=BillKind(row.kind), channel_trade_no=row.channel_trade_no or "", out_trade_no=out_trade_no,
                       channel_refund_no=None, out_refund_no=row.ref if row.kind == BillKind.REFUND else None,
                       amount_fen=row.their_amount_fen or record.amount_fen, fee_fen=0,
                       status=row.their_status or "", occurred_at=row.occurred_at or utcnow())
    repair = repair_payment if row.kind == BillKind.PAYMENT else repair_refund
    finding: Finding | None = repair(rt, ticket, scope, adapter, record, bill_row)
    if finding is not None and finding.status != REPAIRED:
        raise Conflict(f"not repaired: {finding.detail}", "repair_refused", {"detail": finding.detail})
    return None if finding is None else finding.repair_id


def _claim_amount(row: ReconciliationDiscrepancy) -> int:
    if row.type == AMOUNT_MISMATCH:
        return abs((row.our_amount_fen or 0) - (row.their_amount_fen or 0))
    if row.type == MISSING_AT_CHANNEL:
        return row.our_amount_fen or 0
    return row.our_amount_fen or row.their_amount_fen or 0


def _decide(rt: Runtime, principal: StaffPrincipal, discrepancy_id: int, resolution: str, note: str,
            repair_id: int | None) -> dict:
    now = utcnow()
    actor = f"staff:{principal.username}"
    with rt.db.session() as session:
        row = _scoped(session, principal, discrepancy_id, lock=True)
        before = _state(row)
        fields = {"resolution": resolution, "note": note, "resolved_by": principal.username, "resolved_at": now}
        if repair_id is not None:
            fields["repair_id"] = repair_id
        if row.status != OPEN or not set_status(session, row, RESOLVED, reason=f"resolved: {resolution}",
                                                actor=actor, **fields):
            raise Conflict("the discrepancy was resolved meanwhile", "discrepancy_not_open")
        run = session.get(ReconciliationRun, row.run_id)
        claim = None
        if resolution == TRUST_PLATFORM and run.source in CHANNEL_SOURCES:
            claim = ReconciliationClaim(discrepancy_id=row.id, clinic_id=run.clinic_id, channel=run.source,
                                        discrepancy_type=row.type, ref=row.ref, amount_fen=_claim_amount(row),
                                        status=str(ClaimStatus.OPEN), note=note, created_by=principal.username,
                                        created_at=now)
            session.add(claim)
            session.flush()
        after = {**_state(row), "claim_id": claim and claim.id}
        record_event(session, actor_type="staff", actor_id=str(principal.user_id), actor_name=principal.username,
                     clinic_id=run.clinic_id, action="reconciliation_resolve", target_type="reconciliation_discrepancy",
                     target_id=row.id, before=before, after=after, note=note)
        session.refresh(row)
        repair = session.get(ReconciliationRepair, row.repair_id) if row.repair_id else None
        return discrepancy_view(row, repair, claim)
