"""The rq queues as an administrator sees them: how deep each is, the jobs that failed (with their error), and
putting one back.

Jobs carry row ids, never personal data; what a failed job shows is masked all the same (phone and ID numbers,
and any keyword argument named like a secret). Who sees a failed job: the platform-wide view sees all; a clinic's
administrator sees the jobs whose row (found through `job_rows`, the job function -> the table its first
argument is a row of) belongs to one of their clinics, and never a job tied to no clinic.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job
from rq.results import Result
from sqlalchemy import select

from app.db.models import Clinic
from app.domain.errors import NotFound
from app.runtime import QUEUE_NAMES, Runtime
from app.services.common.audit import record_staff_event
from app.services.common.principals import StaffPrincipal
from app.services.ops.rows import clinic_ids_of, narrowed
from config.logging import mask_text

# The most recent failed jobs looked at per queue (a failed job is kept 7 days; beyond this, use rq's tools).
SCAN_LIMIT = 1000
_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_SECRET_NAME = re.compile(r"secret|password|token|key|sign", re.IGNORECASE)
ERROR_MAX = 300
ARGS_MAX = 200


@dataclass(frozen=True)
class QueueDepth:
    name: str
    queued: int
    started: int
    scheduled: int
    deferred: int
    failed: int


def depths(rt: Runtime) -> list[QueueDepth]:
    """Every platform queue's jobs by state (numbers only: they say nothing of any clinic)."""
    found = []
    for name in QUEUE_NAMES:
        queue = rt.queue(name)
        found.append(QueueDepth(name, queue.count, queue.started_job_registry.count,
                                queue.scheduled_job_registry.count, queue.deferred_job_registry.count,
                                queue.failed_job_registry.count))
    return found


@dataclass(frozen=True)
class FailedJob:
    id: str
    queue: str
    function: str
    args: str
    error: str
    failed_at: datetime | None
    row_id: int | None
    clinic_id: int | None
    clinic_code: str | None = None


def _masked_args(job: Job) -> str:
    kwargs = {key: "***" if _SECRET_NAME.search(str(key)) else value for key, value in (job.kwargs or {}).items()}
    parts = [repr(arg) for arg in job.args or ()] + [f"{key}={value!r}" for key, value in kwargs.items()]
    return mask_text(", ".join(parts))[:ARGS_MAX]


def _failure(job: Job) -> tuple[str, datetime | None]:
    """The last line of the failure's traceback (the exception and its message), and when it failed."""
    result = job.latest_result()
    if result is None or result.type != Result.Type.FAILED or not result.exc_string:
        return "", job.ended_at
    lines = [line.strip() for line in result.exc_string.strip().splitlines() if line.strip()]
    return mask_text(lines[-1] if lines else "")[:ERROR_MAX], result.created_at


def _row_id(job: Job) -> int | None:
    args = job.args or ()
    return args[0] if args and isinstance(args[0], int) and not isinstance(args[0], bool) else None


def _describe(rt: Runtime, jobs: list[tuple[str, Job]], job_rows: Mapping[str, type]) -> list[FailedJob]:
    """Failed jobs with their error, and the clinic of the row each works on (one query per table)."""
    rows_by_model: dict[type, list[int]] = {}
    for _, job in jobs:
        model, row_id = job_rows.get(job.func_name or ""), _row_id(job)
        if model is not None and row_id is not None:
            rows_by_model.setdefault(model, []).append(row_id)
    clinics: dict[tuple[type, int], int] = {}
    if rows_by_model:
        with rt.db.session() as session:
            for model, ids in rows_by_model.items():
                clinics.update(((model, row_id), clinic)
                               for row_id, clinic in clinic_ids_of(session, model, ids).items())
    codes: dict[int, str] = {}
    if clinics:
        with rt.db.session() as session:
            codes = {clinic_id: code for clinic_id, code in
                     session.execute(select(Clinic.id, Clinic.code).where(Clinic.id.in_(set(clinics.values()))))}
    found = []
    for name, job in jobs:
        model, row_id = job_rows.get(job.func_name or ""), _row_id(job)
        clinic = clinics.get((model, row_id)) if model is not None and row_id is not None else None
        error, failed_at = _failure(job)
        found.append(FailedJob(job.id, name, job.func_name or "", _masked_args(job), error, failed_at, row_id,
                               clinic, codes.get(clinic) if clinic is not None else None))
    return found


def _visible(job: FailedJob, scope: tuple[int, ...] | None) -> bool:
    return scope is None or (job.clinic_id is not None and job.clinic_id in scope)


def failed_jobs(rt: Runtime, scope: tuple[int, ...] | None, job_rows: Mapping[str, type], queue: str | None = None,
                clinic_code: str | None = None, limit: int = 50, offset: int = 0) -> tuple[list[FailedJob], int]:
    """The failed jobs the caller may see (scope None: platform-wide), of one clinic when named, newest first;
    (page, total)."""
    if clinic_code is not None:
        with rt.db.session() as session:
            scope = narrowed(session, scope, clinic_code)
    jobs: list[tuple[str, Job]] = []
    for name in QUEUE_NAMES if queue is None else tuple(n for n in QUEUE_NAMES if n == queue):
        ids = rt.queue(name).failed_job_registry.get_job_ids(0, SCAN_LIMIT - 1, desc=True)
        jobs += [(name, job) for job in Job.fetch_many(ids, connection=rt.redis) if job is not None]
    visible = [job for job in _describe(rt, jobs, job_rows) if _visible(job, scope)]
    visible.sort(key=lambda j: j.failed_at.timestamp() if j.failed_at else 0.0, reverse=True)
    return visible[offset:offset + limit], len(visible)


def requeue(rt: Runtime, principal: StaffPrincipal, scope: tuple[int, ...] | None, job_rows: Mapping[str, type],
            job_id: str) -> FailedJob:
    """Put a failed job the caller may see back on its queue (every job is safe to run again); audited."""
    not_found = NotFound(f"no failed job {job_id[:64]} you may see", "job_not_found")
    if not _JOB_ID.match(job_id):
        raise not_found
    for name in QUEUE_NAMES:
        registry = rt.queue(name).failed_job_registry
        if job_id not in registry:
            continue
        try:
            [job] = _describe(rt, [(name, Job.fetch(job_id, connection=rt.redis))], job_rows)
        except NoSuchJobError:
            raise not_found from None
        if not _visible(job, scope):
            raise not_found
        try:
            registry.requeue(job_id)
        except (InvalidJobOperation, NoSuchJobError):
            raise not_found from None
        with rt.db.session() as session:
            record_staff_event(session, principal, job.clinic_id, "job_requeued", "rq_job", job.id,
                               before={"queue": name, "function": job.function, "error": job.error},
                               after={"queue": name, "status": "queued"})
        return job
    raise not_found

