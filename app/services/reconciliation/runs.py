"""A run's life: claimed (one at a time per day, source and scope), then its result stored over the last one.

Starting a run bumps its `attempt`; the result is written only if the row still carries that attempt,
so a run that lost its lease to a newer one (a worker that stalled) cannot overwrite the newer result,
and only once per attempt, so a job delivered twice cannot replace rows finance is already working on.
Writing a result replaces the run's discrepancies in one transaction, and a finance resolution of a
discrepancy that is found again carries over to the new row.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import live_events, metrics
from app.db.models import Clinic, MerchantAccount, ReconciliationDiscrepancy, ReconciliationRun
from app.db.types import utcnow
from app.domain.errors import Conflict, InvalidInput
from app.domain.reconciliation_runs import RunStatus
from app.runtime import Runtime
from app.services.common.audit import record_event
from app.services.common.status import set_status
from app.services.reconciliation.findings import (
    CHANNEL_SOURCES,
    HELD,
    OPEN,
    REPAIRED,
    RESOLVED,
    SOURCES,
    RunOutcome,
    shanghai_today,
)

log = logging.getLogger(__name__)

RUNNING, DONE, FAILED = RunStatus.RUNNING, RunStatus.DONE, RunStatus.FAILED
# A run still `running` after this long lost its worker; it may be started again.
RUN_LEASE = timedelta(minutes=30)


@dataclass(frozen=True)
class RunTicket:
    run_id: int
    attempt: int
    business_date: date
    source: str
    clinic_id: int
    merchant_account_id: int | None
    started_by: str


def scope_of(source: str, clinic_id: int, merchant_account_id: int | None) -> str:
    return f"clinic:{clinic_id}" if source == "his" else f"account:{merchant_account_id}"


def start_run(rt: Runtime, business_date: date, source: str, clinic_id: int,
              merchant_account_id: int | None = None, started_by: str = "platform") -> RunTicket:
    """Claim the run of (day, source, scope); Conflict while another start of it is still running."""
    if source not in SOURCES:
        raise InvalidInput(f"source must be one of {', '.join(SOURCES)}", "invalid_source")
    today = shanghai_today(utcnow())
    if business_date > today:
        raise InvalidInput("a day that has not begun has nothing to reconcile", "date_in_future")
    if source in CHANNEL_SOURCES and merchant_account_id is None:
        raise InvalidInput("a channel run needs a merchant account", "merchant_account_required")
    scope = scope_of(source, clinic_id, None if source == "his" else merchant_account_id)
    for _ in range(2):
        try:
            with rt.db.session() as session:
                return _claim(session, business_date, source, scope, clinic_id,
                              None if source == "his" else merchant_account_id, started_by,
                              provisional=business_date >= today)
        except IntegrityError:
            continue  # another start inserted the row first: claim the row it made
    raise Conflict("this reconciliation is being started elsewhere", "reconciliation_running")


def _claim(session: Session, business_date: date, source: str, scope: str, clinic_id: int,
           merchant_account_id: int | None, started_by: str, provisional: bool) -> RunTicket:
    now = utcnow()
    run = session.scalar(select(ReconciliationRun).where(
        ReconciliationRun.business_date == business_date, ReconciliationRun.source == source,
        ReconciliationRun.scope == scope).with_for_update())
    if run is None:
        run = ReconciliationRun(clinic_id=clinic_id, merchant_account_id=merchant_account_id,
                                business_date=business_date, source=source, scope=scope, status=str(RUNNING),
                                attempt=0, matched_count=0, discrepancy_count=0, repaired_count=0, held_count=0)
        session.add(run)
    elif run.status == RUNNING and now - run.started_at < RUN_LEASE:
        raise Conflict(f"the {source} reconciliation of {business_date} is already running (run {run.id})",
                       "reconciliation_running")
    elif run.status != RUNNING:
        session.flush()
        set_status(session, run, RUNNING, reason="started again", actor=started_by)
    run.attempt, run.provisional = run.attempt + 1, provisional
    run.started_at, run.finished_at, run.error, run.started_by = now, None, None, started_by[:100]
    session.flush()
    return RunTicket(run.id, run.attempt, business_date, source, clinic_id, merchant_account_id, started_by)


def finish_run(rt: Runtime, ticket: RunTicket, outcome: RunOutcome) -> bool:
    """Store the result over the run's previous one; False when a newer start owns the run now."""
    with rt.db.session() as session:
        run = session.scalar(select(ReconciliationRun).where(ReconciliationRun.id == ticket.run_id).with_for_update())
        if run.attempt != ticket.attempt:
            log.warning("reconciliation run %s attempt %s was overtaken by attempt %s; result dropped", run.id,
                        ticket.attempt, run.attempt)
            return False
        if run.status == DONE:
            # A second execution of the same attempt (a redelivered job): the first result stays, so the
            # discrepancy ids finance is reading or resolving are not replaced under them.
            log.info("reconciliation run %s attempt %s already has its result; duplicate dropped", run.id,
                     ticket.attempt)
            return False
        resolved = {(d.type, d.kind, d.ref): d for d in session.scalars(select(ReconciliationDiscrepancy).where(
            ReconciliationDiscrepancy.run_id == run.id, ReconciliationDiscrepancy.status == RESOLVED))}
        session.execute(delete(ReconciliationDiscrepancy).where(ReconciliationDiscrepancy.run_id == run.id))
        rows = []
        for finding in outcome.findings:
            # Every row names every column: one executemany takes its columns from the first row.
            row = {**vars(finding), "run_id": run.id, "resolution": None, "note": None, "resolved_by": None,
                   "resolved_at": None}
            earlier = resolved.get((finding.type, finding.kind, finding.ref))
            if earlier is not None and finding.status == OPEN:
                row.update(status=RESOLVED, resolution=earlier.resolution, note=earlier.note,
                           resolved_by=earlier.resolved_by, resolved_at=earlier.resolved_at)
            rows.append(row)
        if rows:
            session.connection().execute(insert(ReconciliationDiscrepancy.__table__), rows)
        counts = {status: sum(1 for row in rows if row["status"] == status) for status in (OPEN, HELD, REPAIRED,
                                                                                         RESOLVED)}
        if run.status == RUNNING:
            session.flush()
            set_status(session, run, DONE, reason="its result is stored", actor=ticket.started_by)
        run.finished_at, run.error, run.totals = utcnow(), None, outcome.totals
        run.matched_count = outcome.matched
        run.discrepancy_count = counts[OPEN] + counts[RESOLVED]
        run.repaired_count, run.held_count = counts[REPAIRED], counts[HELD]
        actor_type = ("system" if ticket.started_by == "platform" else
                      "operator" if ticket.started_by.startswith("cli:") else "staff")
        record_event(session, actor_type=actor_type, actor_id=None,
                     actor_name=ticket.started_by, clinic_id=ticket.clinic_id, action="reconciliation_run",
                     target_type="reconciliation_run", target_id=run.id,
                     after={"date": ticket.business_date.isoformat(), "source": ticket.source,
                            "matched": run.matched_count, "discrepancies": run.discrepancy_count,
                            "repaired": run.repaired_count, "held": run.held_count})
        if counts[OPEN]:
            live_events.announce(session, ticket.clinic_id, live_events.DISCREPANCY_FOUND,
                                 {"run_id": run.id, "date": ticket.business_date.isoformat(), "source": ticket.source,
                                  "open": counts[OPEN]})
    metrics.RECONCILIATION_RUNS.labels(ticket.source, str(DONE)).inc()
    for status, count in counts.items():
        metrics.RECONCILIATION_FINDINGS.labels(ticket.source, str(status)).inc(count)
    return True


def fail_run(rt: Runtime, ticket: RunTicket, error: str) -> None:
    """Mark the run failed; the discrepancies of its last complete result stay as they were."""
    with rt.db.session() as session:
        run = session.get(ReconciliationRun, ticket.run_id)
        failed = run.status == RUNNING and set_status(
            session, run, FAILED, reason=error[:200], actor=ticket.started_by,
            where=(ReconciliationRun.attempt == ticket.attempt,), error=error[:1000], finished_at=utcnow())
    if failed:
        metrics.RECONCILIATION_RUNS.labels(ticket.source, str(FAILED)).inc()


def run_view(run: ReconciliationRun, clinic_code: str, app_id: str | None) -> dict:
    return {
        "id": run.id, "date": run.business_date.isoformat(), "source": run.source, "status": run.status,
        "clinic_code": clinic_code, "merchant_account_id": run.merchant_account_id, "app_id": app_id,
        "provisional": run.provisional,
        "counts": {"matched": run.matched_count, "discrepancies": run.discrepancy_count,
                   "repaired": run.repaired_count, "held": run.held_count},
        "totals": run.totals or {}, "error": run.error, "attempt": run.attempt, "started_by": run.started_by,
        "started_at": run.started_at, "finished_at": run.finished_at,
    }


def load_run_view(session: Session, run_id: int) -> dict:
    run, clinic_code, app_id = session.execute(
        select(ReconciliationRun, Clinic.code, MerchantAccount.app_id)
        .join(Clinic, Clinic.id == ReconciliationRun.clinic_id)
        .outerjoin(MerchantAccount, MerchantAccount.id == ReconciliationRun.merchant_account_id)
        .where(ReconciliationRun.id == run_id)).one()
    return run_view(run, clinic_code, app_id)
