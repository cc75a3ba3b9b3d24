"""Daily reconciliation (finance): runs per day and source, their discrepancies, and resolving them."""
from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate

from admin_api.schemas import ClinicQuerySchema, PageQuerySchema, documented_errors, text
from admin_api.security import ADMIN_PREFIX, FINANCE, current_staff, staff_required
from app.extensions import runtime
from app.idempotent import answer_once
from app.services import reconciliation

blp = Blueprint("admin_reconciliation", __name__, url_prefix=ADMIN_PREFIX,
                description="Daily reconciliation against the channels' bills and the HIS (finance)")
_IDEMPOTENCY_HEADER = [{"in": "header", "name": "Idempotency-Key", "required": False,
                        "schema": {"type": "string", "maxLength": 200}}]
_RUN_STATUSES = (reconciliation.RUNNING, reconciliation.DONE, reconciliation.FAILED)


def _business_day(value) -> None:
    if not 2000 <= value.year <= 2099:
        raise ValidationError("a date between the years 2000 and 2099")


class RunListQuerySchema(PageQuerySchema):
    date = fields.Date(validate=_business_day, metadata={"description": "the Asia/Shanghai business day"})
    source = fields.String(validate=validate.OneOf(reconciliation.SOURCES))
    status = fields.String(validate=validate.OneOf(_RUN_STATUSES))


class StartRunSchema(ClinicQuerySchema):
    date = fields.Date(required=True, validate=_business_day,
                       metadata={"description": "any Asia/Shanghai day up to today (today's run is provisional)"})
    source = fields.String(required=True, validate=validate.OneOf(reconciliation.SOURCES))


class RunCountsSchema(Schema):
    matched = fields.Integer(required=True)
    discrepancies = fields.Integer(required=True, metadata={"description": "open and resolved"})
    repaired = fields.Integer(required=True, metadata={"description": "repaired automatically"})
    held = fields.Integer(required=True, metadata={"description": "missing from the bill, waiting for the next "
                                                                  "day's bill"})


class RunSchema(Schema):
    id = fields.Integer(required=True)
    date = fields.String(required=True)
    source = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "running, done or failed"})
    clinic_code = fields.String(required=True)
    merchant_account_id = fields.Integer(allow_none=True)
    app_id = fields.String(allow_none=True, metadata={"description": "the merchant account's app id"})
    provisional = fields.Boolean(required=True, metadata={"description": "made before the day ended"})
    counts = fields.Nested(RunCountsSchema, required=True)
    totals = fields.Dict(required=True, metadata={"description": "the bill's rows, amounts and fees (fen), and "
                                                                 "ours"})
    error = fields.String(allow_none=True, metadata={"description": "why the run failed"})
    attempt = fields.Integer(required=True, metadata={"description": "how many times the day was run"})
    started_by = fields.String(allow_none=True)
    started_at = fields.AwareDateTime(required=True)
    finished_at = fields.AwareDateTime(allow_none=True)


class RunPageSchema(Schema):
    items = fields.List(fields.Nested(RunSchema), required=True)
    total = fields.Integer(required=True)
    limit = fields.Integer(required=True)
    offset = fields.Integer(required=True)


class DiscrepancyQuerySchema(Schema):
    type = fields.String(validate=validate.OneOf(reconciliation.TYPES))
    status = fields.String(validate=validate.OneOf(reconciliation.STATUSES))
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=10**7))


class RepairSchema(Schema):
    id = fields.Integer(required=True)
    action = fields.String(required=True, metadata={"description": "record_payment, settle_refund or "
                                                                   "redrive_his_write"})
    outcome = fields.String(required=True)
    at = fields.AwareDateTime(required=True)


class DiscrepancySchema(Schema):
    id = fields.Integer(required=True)
    run_id = fields.Integer(required=True)
    type = fields.String(required=True, metadata={"description": ", ".join(reconciliation.TYPES)})
    status = fields.String(required=True, metadata={"description": "open, held, repaired or resolved"})
    kind = fields.String(required=True, metadata={"description": "payment, refund, or the HIS write's kind"})
    ref = fields.String(required=True, metadata={"description": "out_trade_no, out_refund_no or HIS idempotency key"})
    channel_trade_no = fields.String(allow_none=True)
    their_amount_fen = fields.Integer(allow_none=True, metadata={"description": "the bill's, or the HIS's"})
    our_amount_fen = fields.Integer(allow_none=True)
    their_status = fields.String(allow_none=True)
    our_status = fields.String(allow_none=True)
    occurred_at = fields.AwareDateTime(allow_none=True)
    detail = fields.String(allow_none=True)
    resolution = fields.String(allow_none=True)
    note = fields.String(allow_none=True)
    resolved_by = fields.String(allow_none=True)
    resolved_at = fields.AwareDateTime(allow_none=True)
    repair = fields.Nested(RepairSchema, allow_none=True)
    claim_id = fields.Integer(allow_none=True, metadata={"description": "the claim a trust_platform decision made"})


class DiscrepancyPageSchema(Schema):
    items = fields.List(fields.Nested(DiscrepancySchema), required=True)
    total = fields.Integer(required=True)
    limit = fields.Integer(required=True)
    offset = fields.Integer(required=True)


class ResolveSchema(Schema):
    resolution = fields.String(required=True, validate=validate.OneOf(reconciliation.RESOLUTIONS))
    note = text(1, 500, required=True, metadata={"description": "why"})


@blp.route("/reconciliation/runs", methods=["GET"])
@staff_required(FINANCE)
@blp.arguments(RunListQuerySchema, location="query")
@blp.response(200, RunPageSchema)
@documented_errors(blp, 404, 422)
def list_runs(query):
    """Reconciliation runs of your clinics, newest day first."""
    return reconciliation.list_runs(runtime(), current_staff(), clinic_code=query.get("clinic_code"),
                                    business_date=query.get("date"), source=query.get("source"),
                                    status=query.get("status"), limit=query["limit"], offset=query["offset"])


START_RUN_EXAMPLE = {"date": "2026-12-04", "source": "wechat"}


@blp.route("/reconciliation/runs", methods=["POST"])
@staff_required(FINANCE)
@blp.doc(parameters=_IDEMPOTENCY_HEADER)
@blp.arguments(StartRunSchema, example=START_RUN_EXAMPLE)
@blp.response(202, RunSchema)
@documented_errors(blp, 404, 409, 422, 503)
def start_run(body):
    """Reconcile a day of a channel's bill (the clinic's merchant account) or of the HIS's export. A worker
    does it: the run answers `running` and is polled with GET. Running a day again replaces its result;
    409 while that day's run is still running."""
    principal = current_staff()
    return answer_once(f"admin:{principal.user_id}:POST /reconciliation/runs", body, lambda: (
        202, RunSchema().dump(reconciliation.start_from_admin(runtime(), principal, body["date"], body["source"],
                                                              clinic_code=body.get("clinic_code")))))


@blp.route("/reconciliation/runs/<int:run_id>", methods=["GET"])
@staff_required(FINANCE)
@blp.response(200, RunSchema)
@documented_errors(blp, 404)
def get_run(run_id):
    """One run of your clinics."""
    return reconciliation.get_run(runtime(), current_staff(), run_id)


@blp.route("/reconciliation/runs/<int:run_id>/discrepancies", methods=["GET"])
@staff_required(FINANCE)
@blp.arguments(DiscrepancyQuerySchema, location="query")
@blp.response(200, DiscrepancyPageSchema)
@documented_errors(blp, 404, 422)
def list_discrepancies(query, run_id):
    """A run's discrepancies, filtered by type and status."""
    return reconciliation.list_discrepancies(runtime(), current_staff(), run_id, type_=query.get("type"),
                                             status=query.get("status"), limit=query["limit"],
                                             offset=query["offset"])


RESOLVE_EXAMPLE = {
    "resolution": "trust_channel",
    "note": "the channel's bill shows the payment; the notification never arrived",
}


@blp.route("/reconciliation/discrepancies/<int:discrepancy_id>/resolve", methods=["POST"])
@staff_required(FINANCE)
@blp.arguments(ResolveSchema, example=RESOLVE_EXAMPLE)
@blp.response(200, DiscrepancySchema)
@documented_errors(blp, 404, 409, 422)
def resolve(body, discrepancy_id):
    """Finance's decision on an open discrepancy, with a note, that acts: `trust_channel` on a payment or refund
    missing on our side repairs it as the automatic repair does (asks the channel, completes the order and its
    HIS write; 409 `repair_refused` with the channel's answer when it does not confirm, and the discrepancy stays
    open); `trust_platform` on a channel bill records a claim against the channel (`claim_id`; GET
    /reconciliation/claims); `ignore` records the decision. Kept in the audit trail (before/after) and carried
    over when the day is reconciled again."""
    return reconciliation.resolve_discrepancy(runtime(), current_staff(), discrepancy_id, body["resolution"],
                                              body["note"])
