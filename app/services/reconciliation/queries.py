"""Finance's view of reconciliation: runs and their discrepancies within the user's clinics, and starting a
run (done by a worker). Resolving a discrepancy: resolutions.py."""
from __future__ import annotations

from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db.models import (
    Clinic,
    MerchantAccount,
    ReconciliationClaim,
    ReconciliationDiscrepancy,
    ReconciliationRepair,
    ReconciliationRun,
)
from app.domain.errors import InvalidInput, NotFound, Unavailable
from app.runtime import Runtime
from app.services.common.audit import record_event
from app.services.common.principals import StaffPrincipal
from app.services.common.staff_scope import clinic_ids_in_scope, one_clinic
from app.services.reconciliation.findings import SOURCES, STATUSES, TYPES
from app.services.reconciliation.resolutions import discrepancy_view
from app.services.reconciliation.runner import primary_target
from app.services.reconciliation.runs import fail_run, load_run_view, run_view, start_run

MAX_ROW_ID = 2**31 - 1
JOB = "workers.jobs.reconcile_run"
JOB_TIMEOUT_S = 3600


def scoped_run(session: Session, principal: StaffPrincipal, run_id: int) -> ReconciliationRun:
    run = None
    if 0 < run_id <= MAX_ROW_ID:
        run = session.scalar(select(ReconciliationRun).where(ReconciliationRun.id == run_id,
                                                             ReconciliationRun.clinic_id.in_(principal.clinic_ids)))
    if run is None:
        raise NotFound("no such reconciliation run in your clinics", "run_not_found")
    return run


def list_runs(rt: Runtime, principal: StaffPrincipal, clinic_code: str | None = None,
              business_date: date | None = None, source: str | None = None, status: str | None = None,
              limit: int = 50, offset: int = 0) -> dict:
    with rt.db.session() as session:
        conditions = [ReconciliationRun.clinic_id.in_(clinic_ids_in_scope(session, principal.clinic_ids,
                                                                          clinic_code))]
        if business_date is not None:
            conditions.append(ReconciliationRun.business_date == business_date)
        if source is not None:
            conditions.append(ReconciliationRun.source == source)
        if status is not None:
            conditions.append(ReconciliationRun.status == status)
        total = session.scalar(select(func.count()).select_from(ReconciliationRun).where(*conditions))
        rows = session.execute(
            select(ReconciliationRun, Clinic.code, MerchantAccount.app_id)
            .join(Clinic, Clinic.id == ReconciliationRun.clinic_id)
            .outerjoin(MerchantAccount, MerchantAccount.id == ReconciliationRun.merchant_account_id)
            .where(*conditions).order_by(ReconciliationRun.business_date.desc(), ReconciliationRun.id.desc())
            .limit(limit).offset(offset))
        return {"items": [run_view(*row) for row in rows], "total": total, "limit": limit, "offset": offset}


def get_run(rt: Runtime, principal: StaffPrincipal, run_id: int) -> dict:
    with rt.db.session() as session:
        return load_run_view(session, scoped_run(session, principal, run_id).id)


def start_from_admin(rt: Runtime, principal: StaffPrincipal, business_date: date, source: str,
                     clinic_code: str | None = None) -> dict:
    """Claim the run and hand it to a worker; the answer is the run, `running` until the worker is done."""
    if source not in SOURCES:
        raise InvalidInput(f"source must be one of {', '.join(SOURCES)}", "invalid_source")
    with rt.db.session() as session:
        clinic_id = one_clinic(session, principal.clinic_ids, clinic_code).id
    ticket = start_run(rt, business_date, source, clinic_id, primary_target(rt, source, clinic_id),
                       started_by=principal.username)
    with rt.db.session() as session:
        record_event(session, actor_type="staff", actor_id=str(principal.user_id), actor_name=principal.username,
                     clinic_id=clinic_id, action="reconciliation_start", target_type="reconciliation_run",
                     target_id=ticket.run_id, after={"date": business_date.isoformat(), "source": source,
                                                     "attempt": ticket.attempt})
    try:
        rt.enqueue("default", JOB, ticket.run_id, ticket.attempt, job_timeout=JOB_TIMEOUT_S, result_ttl=3600,
                   failure_ttl=7 * 24 * 3600)
    except Exception as exc:  # Redis unreachable: the run must not stay `running` with nobody doing it
        fail_run(rt, ticket, f"could not be queued: {exc}")
        raise Unavailable("the job queue did not answer; start the run again", "redis_unavailable") from None
    with rt.db.session() as session:
        return load_run_view(session, ticket.run_id)


def list_discrepancies(rt: Runtime, principal: StaffPrincipal, run_id: int, type_: str | None = None,
                       status: str | None = None, limit: int = 100, offset: int = 0) -> dict:
    if type_ is not None and type_ not in TYPES:
        raise InvalidInput(f"type must be one of {', '.join(TYPES)}", "invalid_type")
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(STATUSES)}", "invalid_status")
    with rt.db.session() as session:
        run = scoped_run(session, principal, run_id)
        conditions = [ReconciliationDiscrepancy.run_id == run.id]
        if type_ is not None:
            conditions.append(ReconciliationDiscrepancy.type == type_)
        if status is not None:
            conditions.append(ReconciliationDiscrepancy.status == status)
        total = session.scalar(select(func.count()).select_from(ReconciliationDiscrepancy).where(*conditions))
        rows = session.execute(
            select(ReconciliationDiscrepancy, ReconciliationRepair, ReconciliationClaim)
            .outerjoin(ReconciliationRepair, ReconciliationRepair.id == ReconciliationDiscrepancy.repair_id)
            .outerjoin(ReconciliationClaim, ReconciliationClaim.discrepancy_id == ReconciliationDiscrepancy.id)
            .where(*conditions).order_by(ReconciliationDiscrepancy.id).limit(limit).offset(offset))
        return {"items": [discrepancy_view(*row) for row in rows], "total": total, "limit": limit,
                "offset": offset}
