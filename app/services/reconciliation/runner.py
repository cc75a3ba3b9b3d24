"""Running reconciliations: one run by hand (CLI, admin API), and the daily schedule.

A run's failure is loud: the run is marked failed with the reason (a bill whose totals do not add up,
a channel or HIS that does not answer) and the error propagates to the caller, the CLI's exit status
or the rq job's failure. Nothing is repaired from a bill that fails its own totals: repairs come after
the whole bill was read and checked.
"""
from __future__ import annotations

import logging
import re
from datetime import date, datetime, time, timedelta

from sqlalchemy import select

from app.db.models import Clinic, MerchantAccount, ReconciliationRun
from app.db.types import utcnow
from app.domain.errors import InvalidInput, NotFound
from app.runtime import Runtime
from app.services.reconciliation.channel_run import BillFetch, Progress, run_channel
from app.services.reconciliation.findings import CHANNEL_SOURCES, SHANGHAI, shanghai_today
from app.services.reconciliation.his_run import run_his
from app.services.reconciliation.runs import (
    DONE,
    FAILED,
    RunTicket,
    fail_run,
    finish_run,
    load_run_view,
    scope_of,
    start_run,
)
from config.settings import ConfigurationError

log = logging.getLogger(__name__)

_CLOCK_TIME = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")


def daily_cron(reconcile_at: str, today: date | None = None) -> str:
    """The cron string (which rq reads in the host's local time) for HH:MM Asia/Shanghai. Computed when the
    scheduler starts: a host whose zone has daylight saving shifts by an hour until the scheduler restarts."""
    found = _CLOCK_TIME.match(reconcile_at)
    if found is None:
        raise ConfigurationError(f"HPAY_RECONCILE_AT={reconcile_at!r} must be HH:MM (Asia/Shanghai)")
    at = datetime.combine(today or shanghai_today(utcnow()), time(int(found[1]), int(found[2])), SHANGHAI)
    local = at.astimezone()
    return f"{local.minute} {local.hour} * * *"


def execute_run(rt: Runtime, ticket: RunTicket, fetch: BillFetch | None = None,
                progress: Progress | None = None) -> dict:
    """Reconcile a started run and store its result; returns the run. Re-raises what made it fail."""
    try:
        if ticket.source == "his":
            outcome = run_his(rt, ticket)
        else:
            outcome = run_channel(rt, ticket, fetch, progress)
    except Exception as exc:
        log.error("reconciliation run %s (%s %s) failed: %s", ticket.run_id, ticket.source, ticket.business_date,
                  exc)
        fail_run(rt, ticket, f"{exc.__class__.__name__}: {exc}")
        raise
    finish_run(rt, ticket, outcome)
    with rt.db.session() as session:
        return load_run_view(session, ticket.run_id)


def execute_started(rt: Runtime, run_id: int, attempt: int) -> dict:
    """The worker's half of a run started from the admin API."""
    with rt.db.session() as session:
        run = session.get(ReconciliationRun, run_id)
        if run is None or run.attempt != attempt:
            return {"id": run_id, "status": "superseded"}
        if run.status == DONE:
            return load_run_view(session, run_id)  # this attempt was executed already: its result stands
        ticket = RunTicket(run.id, run.attempt, run.business_date, run.source, run.clinic_id,
                           run.merchant_account_id, run.started_by or "platform")
    return execute_run(rt, ticket)


def reconcile(rt: Runtime, business_date: date, source: str, clinic_id: int, merchant_account_id: int | None = None,
              started_by: str = "platform", fetch: BillFetch | None = None,
              progress: Progress | None = None) -> dict:
    ticket = start_run(rt, business_date, source, clinic_id, merchant_account_id, started_by)
    return execute_run(rt, ticket, fetch, progress)


def targets(rt: Runtime, source: str, clinic_code: str | None = None,
            app_id: str | None = None) -> list[tuple[int, int | None]]:
    """(clinic id, merchant account id) pairs a source is reconciled for: every active account of the
    channel (or the one named), every clinic for the HIS."""
    with rt.db.session() as session:
        clinics = select(Clinic.id)
        if clinic_code is not None:
            clinics = clinics.where(Clinic.code == clinic_code)
        clinic_ids = list(session.scalars(clinics.order_by(Clinic.id)))
        if clinic_code is not None and not clinic_ids:
            raise NotFound(f"no clinic {clinic_code}", "clinic_not_found")
        if source == "his":
            return [(clinic_id, None) for clinic_id in clinic_ids]
        accounts = select(MerchantAccount).where(MerchantAccount.channel == source,
                                                 MerchantAccount.clinic_id.in_(clinic_ids))
        accounts = accounts.where(MerchantAccount.app_id == app_id) if app_id else accounts.where(
            MerchantAccount.active.is_(True))
        found = [(account.clinic_id, account.id) for account in session.scalars(accounts.order_by(MerchantAccount.id))]
    if app_id and not found:
        raise NotFound(f"no {source} merchant account {app_id}", "merchant_account_not_found")
    return found


def primary_target(rt: Runtime, source: str, clinic_id: int) -> int | None:
    """The account a clinic's run of a channel covers when none is named: its oldest active one."""
    if source not in CHANNEL_SOURCES:
        return None
    with rt.db.session() as session:
        account_id = session.scalar(select(MerchantAccount.id).where(
            MerchantAccount.clinic_id == clinic_id, MerchantAccount.channel == source,
            MerchantAccount.active.is_(True)).order_by(MerchantAccount.id))
    if account_id is None:
        raise InvalidInput(f"this clinic has no active {source} merchant account", "channel_not_enabled")
    return account_id


def run_daily(rt: Runtime, today: date | None = None, clinic_code: str | None = None) -> list[dict]:
    """The scheduled job: yesterday for every channel account and clinic HIS (of every clinic, or the one
    named), and the day before yesterday again where its run still holds rows for a late bill (or failed),
    now that its next day has ended."""
    today = today or shanghai_today(utcnow())
    yesterday, before = today - timedelta(days=1), today - timedelta(days=2)
    results = []
    for source in ("wechat", "alipay", "his"):
        for clinic_id, account_id in targets(rt, source, clinic_code):
            days = [yesterday]
            with rt.db.session() as session:
                earlier = session.scalar(select(ReconciliationRun).where(
                    ReconciliationRun.business_date == before, ReconciliationRun.source == source,
                    ReconciliationRun.scope == scope_of(source, clinic_id, account_id)))
                if earlier is not None and (earlier.held_count or earlier.status == FAILED):
                    days.append(before)
            for day in days:
                try:
                    results.append(reconcile(rt, day, source, clinic_id, account_id))
                except Exception as exc:  # one account's failure must not stop the others
                    results.append({"date": day.isoformat(), "source": source, "clinic_id": clinic_id,
                                    "merchant_account_id": account_id, "status": FAILED, "error": str(exc)})
    return results
