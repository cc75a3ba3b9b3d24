"""Claims against the channels: what finance decided the channel owes (a `trust_platform` decision on a channel
bill's discrepancy), listed until the channel pays or corrects it and finance settles the claim."""
from __future__ import annotations

from sqlalchemy import func, select

from app.db.models import Clinic, ReconciliationClaim, ReconciliationDiscrepancy, ReconciliationRun
from app.db.types import utcnow
from app.domain.errors import Conflict, InvalidInput, NotFound
from app.domain.reconciliation_runs import ClaimStatus
from app.runtime import Runtime
from app.services.common.audit import record_staff_event
from app.services.common.principals import StaffPrincipal
from app.services.common.staff_scope import MAX_ROW_ID, clinic_ids_in_scope
from app.services.common.status import set_status

STATUSES = tuple(ClaimStatus)


def claim_view(claim: ReconciliationClaim, clinic_code: str, run: ReconciliationRun) -> dict:
    return {"id": claim.id, "clinic_code": clinic_code, "channel": claim.channel, "run_id": run.id,
            "date": run.business_date, "discrepancy_id": claim.discrepancy_id,
            "discrepancy_type": claim.discrepancy_type, "ref": claim.ref, "amount_fen": claim.amount_fen,
            "status": claim.status, "note": claim.note, "created_by": claim.created_by,
            "created_at": claim.created_at, "settled_by": claim.settled_by, "settled_at": claim.settled_at}


def _query():
    return (select(ReconciliationClaim, Clinic.code, ReconciliationRun)
            .join(Clinic, Clinic.id == ReconciliationClaim.clinic_id)
            .join(ReconciliationDiscrepancy, ReconciliationDiscrepancy.id == ReconciliationClaim.discrepancy_id)
            .join(ReconciliationRun, ReconciliationRun.id == ReconciliationDiscrepancy.run_id))


def list_claims(rt: Runtime, principal: StaffPrincipal, status: str | None = None, clinic_code: str | None = None,
                limit: int = 50, offset: int = 0) -> dict:
    """The claims of the user's clinics, newest first."""
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(STATUSES)}", "invalid_status")
    with rt.db.session() as session:
        conditions = [ReconciliationClaim.clinic_id.in_(clinic_ids_in_scope(session, principal.clinic_ids,
                                                                           clinic_code))]
        if status is not None:
            conditions.append(ReconciliationClaim.status == status)
        total = session.scalar(select(func.count()).select_from(ReconciliationClaim).where(*conditions))
        rows = session.execute(_query().where(*conditions).order_by(ReconciliationClaim.id.desc())
                               .limit(limit).offset(offset))
        return {"items": [claim_view(*row) for row in rows], "total": total, "limit": limit, "offset": offset}


def settle_claim(rt: Runtime, principal: StaffPrincipal, claim_id: int, note: str) -> dict:
    """The channel paid or corrected what the claim names: it is settled (once), with finance's note."""
    note = (note or "").strip()
    if not note:
        raise InvalidInput("say how the channel settled it in the note", "note_required")
    with rt.db.session() as session:
        row = None
        if 0 < claim_id <= MAX_ROW_ID:
            row = session.execute(_query().where(ReconciliationClaim.id == claim_id,
                                                 ReconciliationClaim.clinic_id.in_(principal.clinic_ids))).first()
        if row is None:
            raise NotFound(f"no claim {claim_id} in your clinics", "claim_not_found")
        claim, clinic_code, run = row
        if claim.status != ClaimStatus.OPEN or not set_status(
                session, claim, ClaimStatus.SETTLED, reason="settled by the channel",
                actor=f"staff:{principal.username}", settled_at=utcnow(), settled_by=principal.username):
            raise Conflict(f"claim {claim_id} is settled already", "claim_already_settled")
        record_staff_event(session, principal, claim.clinic_id, "reconciliation_claim.settled",
                           "reconciliation_claim", claim.id, before={"status": str(ClaimStatus.OPEN)},
                           after={"status": str(ClaimStatus.SETTLED), "amount_fen": claim.amount_fen}, note=note[:500])
        return claim_view(claim, clinic_code, run)
