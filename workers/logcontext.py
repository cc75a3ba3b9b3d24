"""Worker log lines say which job wrote them: its id, its function, the row it works on and that row's order.

`ContextWorker` is rq's SimpleWorker with every job performed inside `config.logging.log_context`, so every line
the job writes (ours and rq's own, the failure's traceback included) carries those fields, as a web request's
lines carry its request id. The row is the job's first argument, named by the lease spec whose job it is; its
order number is looked up once per job (one indexed query) and left out when there is none or the database
does not answer.
"""
from __future__ import annotations

import logging

from rq import SimpleWorker
from rq.job import Job

from app.db.models import ReconciliationRun
from app.services import ops
from config.logging import log_context
from workers.context import runtime
from workers.dispatcher import LEASES

log = logging.getLogger(__name__)

# The table each job's first argument is a row of: every lease spec's job, and the jobs started otherwise.
JOB_ROWS: dict[str, type] = {spec.job: spec.model for spec in LEASES} | {
    "workers.jobs.reconcile_run": ReconciliationRun}
_ROW_NAMES: dict[str, str] = {spec.job: spec.name for spec in LEASES} | {
    "workers.jobs.reconcile_run": "reconciliation_run"}


def job_fields(job: Job) -> dict:
    """What the lines of `job` carry."""
    function = job.func_name or ""
    fields: dict = {"job": function, "job_id": job.id}
    args = job.args or ()
    model = JOB_ROWS.get(function)
    if model is None or not args or not isinstance(args[0], int):
        return fields
    fields["row"] = f"{_ROW_NAMES[function]}:{args[0]}"
    try:
        with runtime().db.session() as session:
            fields["order_no"] = ops.order_no_of(session, model, args[0])
    except Exception as exc:  # noqa: BLE001  (a log field is never worth failing the job for)
        log.debug("no order number for %s: %s", fields["row"], exc.__class__.__name__)
    return fields


class ContextWorker(SimpleWorker):
    def perform_job(self, job: Job, queue, execution) -> bool:
        with log_context(**job_fields(job)):
            return super().perform_job(job, queue, execution)
