"""Queue visibility for administrators under /api/admin/v1/ops: what the workers owe and what got stuck.

Who sees what. The rq queues are the platform's, shared by every clinic: their depths are numbers that say
nothing of any clinic, and every administrator sees them, with the backlog of each table of work. A failed job
or a flagged HIS write belongs to the clinic of the row it works on: a clinic's administrator sees (and requeues
or retries) only those of their clinics, never a job tied to no clinic (the dispatcher's own run, the daily
reconciliation). The platform-wide view, every clinic and every job, is for a platform role (the `operator` of
issue 11) once it exists; `_scope` gives it None. Every requeue and retry is audited.
"""
from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from admin_api.schemas import PageQuerySchema, documented_errors, text
from admin_api.security import ADMIN, ADMIN_PREFIX, current_staff, staff_required
from app.extensions import job_rows, lease_specs, runtime
from app.runtime import QUEUE_NAMES
from app.services import ops

blp = Blueprint("admin_ops", __name__, url_prefix=f"{ADMIN_PREFIX}/ops",
                description="Queues, failed jobs and flagged HIS writes")

# Roles whose view is platform-wide (every clinic, every job). The operator role comes with issue 11.
PLATFORM_ROLES = frozenset({"operator"})


def _scope() -> tuple[int, ...] | None:
    principal = current_staff()
    return None if principal.role in PLATFORM_ROLES else principal.clinic_ids


# --- schemas -----------------------------------------------------------------------------------------

class QueueDepthSchema(Schema):
    name = fields.String(required=True, metadata={"description": "notifications, his, channel, default"})
    queued = fields.Integer(required=True)
    started = fields.Integer(required=True)
    scheduled = fields.Integer(required=True)
    deferred = fields.Integer(required=True)
    failed = fields.Integer(required=True)


class BacklogSchema(Schema):
    name = fields.String(required=True, metadata={"description": "the lease spec: inbox, his_outbox, refunds, …"})
    queue = fields.String(required=True)
    backlog = fields.Integer(required=True, metadata={"description": "rows owed work, due now or waiting"})
    due = fields.Integer(required=True, metadata={"description": "rows whose time has come"})
    oldest_due_age_s = fields.Float(required=True, metadata={"description": "how long the oldest due row has "
                                                                            "waited (0: none due)"})


class DispatcherSchema(Schema):
    status = fields.String(required=True, metadata={"description": "ok, stale (N s) or unknown"})
    age_s = fields.Float(allow_none=True, metadata={"description": "seconds since its last run"})


class OpsOverviewSchema(Schema):
    queues = fields.List(fields.Nested(QueueDepthSchema), required=True)
    work = fields.List(fields.Nested(BacklogSchema), required=True)
    dispatcher = fields.Nested(DispatcherSchema, required=True)


class FailedJobQuerySchema(PageQuerySchema):
    queue = fields.String(validate=validate.OneOf(QUEUE_NAMES))


class FailedJobSchema(Schema):
    id = fields.String(required=True)
    queue = fields.String(required=True)
    function = fields.String(required=True, metadata={"description": "e.g. workers.jobs.send_his_write"})
    args = fields.String(required=True, metadata={"description": "its arguments (phones, ID numbers and "
                                                                 "secret-named arguments masked)"})
    error = fields.String(required=True, metadata={"description": "the exception that ended it"})
    failed_at = fields.AwareDateTime(allow_none=True)
    row_id = fields.Integer(allow_none=True, metadata={"description": "the row it works on"})
    clinic_code = fields.String(allow_none=True)


class FailedJobPageSchema(Schema):
    items = fields.List(fields.Nested(FailedJobSchema), required=True)
    total = fields.Integer(required=True)
    limit = fields.Integer(required=True)
    offset = fields.Integer(required=True)


class StatusEventSchema(Schema):
    from_status = fields.String(required=True)
    to_status = fields.String(required=True)
    reason = fields.String(required=True)
    actor = fields.String(required=True)
    at = fields.AwareDateTime(required=True)


class FlaggedWriteSchema(Schema):
    id = fields.Integer(required=True)
    clinic_code = fields.String(required=True)
    kind = fields.String(required=True, metadata={"description": "recharge, bill_settlement, registration, …"})
    status = fields.String(required=True)
    order_no = fields.String(allow_none=True)
    idempotency_key = fields.String(required=True)
    attempts = fields.Integer(required=True)
    last_error = fields.String(allow_none=True)
    created_at = fields.AwareDateTime(required=True)
    flagged_at = fields.AwareDateTime(allow_none=True)
    history = fields.List(fields.Nested(StatusEventSchema), required=True,
                          metadata={"description": "every status change, oldest first"})


class FlaggedPageSchema(Schema):
    items = fields.List(fields.Nested(FlaggedWriteSchema), required=True)
    total = fields.Integer(required=True)
    limit = fields.Integer(required=True)
    offset = fields.Integer(required=True)


class RetrySchema(Schema):
    note = text(0, 200, metadata={"description": "why (kept in the audit trail)"})


# --- views -------------------------------------------------------------------------------------------

@blp.route("/queues", methods=["GET"])
@staff_required(ADMIN)
@blp.response(200, OpsOverviewSchema)
@documented_errors(blp)
def queues():
    """The job queues' depths, the backlog of every table of work, and the dispatcher's last run."""
    rt = runtime()
    beat = ops.last_beat(rt)
    return {"queues": ops.depths(rt), "work": ops.backlogs(rt, lease_specs()),
            "dispatcher": {"status": beat.describe(rt.settings.DISPATCHER_STALE_S), "age_s": beat.age_s}}


@blp.route("/failed-jobs", methods=["GET"])
@staff_required(ADMIN)
@blp.arguments(FailedJobQuerySchema, location="query")
@blp.response(200, FailedJobPageSchema)
@documented_errors(blp, 404, 422)
def failed_jobs(query):
    """Jobs that failed (kept 7 days), newest first, with the error that ended each; yours only."""
    items, total = ops.failed_jobs(runtime(), _scope(), job_rows(), query.get("queue"), query.get("clinic_code"),
                                   query["limit"], query["offset"])
    return {"items": items, "total": total, "limit": query["limit"], "offset": query["offset"]}


@blp.route("/failed-jobs/<string:job_id>/requeue", methods=["POST"])
@staff_required(ADMIN)
@blp.response(200, FailedJobSchema)
@documented_errors(blp, 404)
def requeue_job(job_id: str):
    """Put a failed job back on its queue (every job is safe to run again); audited. `job_not_found` otherwise."""
    return ops.requeue(runtime(), current_staff(), _scope(), job_rows(), job_id)


@blp.route("/flagged", methods=["GET"])
@staff_required(ADMIN)
@blp.arguments(PageQuerySchema, location="query")
@blp.response(200, FlaggedPageSchema)
@documented_errors(blp, 404, 422)
def flagged(query):
    """HIS writes flagged for a person (not sent within the retry horizon), newest first, with their history."""
    items, total = ops.flagged_writes(runtime(), _scope(), query.get("clinic_code"), query["limit"], query["offset"])
    return {"items": items, "total": total, "limit": query["limit"], "offset": query["offset"]}


RETRY_EXAMPLE = {"note": "the HIS was down for maintenance; it is back"}


@blp.route("/flagged/<int:outbox_id>/retry", methods=["POST"])
@staff_required(ADMIN)
@blp.arguments(RetrySchema, example=RETRY_EXAMPLE)
@blp.response(200, FlaggedWriteSchema)
@documented_errors(blp, 404, 409, 422)
def retry_flagged(body, outbox_id: int):
    """Send a flagged HIS write again under its own idempotency key (the HIS records it once); audited.
    `his_write_not_flagged` (409) when it is not flagged (any more)."""
    return ops.retry(runtime(), current_staff(), _scope(), outbox_id, body.get("note"))
