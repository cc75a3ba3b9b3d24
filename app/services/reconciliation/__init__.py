"""Daily reconciliation of the channels' bills and the HIS's export against our records.

    reconcile(rt, date, "wechat", clinic_id, merchant_account_id)   # one run, here and now
    run_daily(rt)                                                   # the scheduled job
    start_from_admin(...) / execute_started(rt, run_id, attempt)    # the admin API and its worker
"""
from app.services.reconciliation.channel_run import BillFetch, Progress
from app.services.reconciliation.findings import (
    AMOUNT_MISMATCH,
    HELD,
    MISSING_AT_CHANNEL,
    MISSING_IN_HIS,
    MISSING_ON_PLATFORM,
    OPEN,
    REPAIRED,
    RESOLUTIONS,
    RESOLVED,
    SOURCES,
    STATUS_MISMATCH,
    STATUSES,
    TYPES,
    UNKNOWN_IN_HIS,
)
from app.services.reconciliation.queries import get_run, list_discrepancies, list_runs, start_from_admin
from app.services.reconciliation.resolutions import resolve_discrepancy
from app.services.reconciliation.runner import (
    daily_cron,
    execute_run,
    execute_started,
    primary_target,
    reconcile,
    run_daily,
    targets,
)
from app.services.reconciliation.runs import DONE, FAILED, RUNNING, start_run

__all__ = [
    "AMOUNT_MISMATCH", "BillFetch", "DONE", "FAILED", "HELD", "MISSING_AT_CHANNEL", "MISSING_IN_HIS",
    "MISSING_ON_PLATFORM", "OPEN", "Progress", "REPAIRED", "RESOLUTIONS", "RESOLVED", "RUNNING", "SOURCES",
    "STATUSES", "STATUS_MISMATCH", "TYPES", "UNKNOWN_IN_HIS", "daily_cron", "execute_run", "execute_started", "get_run",
    "list_discrepancies", "list_runs", "primary_target", "reconcile", "resolve_discrepancy", "run_daily",
    "start_from_admin", "start_run", "targets",
]
