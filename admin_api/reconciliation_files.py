"""Reconciliation you can hand on (finance): a run as a file, every line with its outcome, and the claims
against the channels that `trust_platform` decisions made."""
from __future__ import annotations

from flask import Response
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from admin_api.schemas import PageQuerySchema, documented_errors, text
from admin_api.security import ADMIN_PREFIX, FINANCE, current_staff, staff_required
from app.extensions import runtime
from app.services.common.table_export import FORMATS
from app.services.reconciliation import claims, run_export

blp = Blueprint("admin_reconciliation_files", __name__, url_prefix=ADMIN_PREFIX,
                description="Reconciliation run exports and claims against the channels (finance)")


class ExportQuerySchema(Schema):
    format = fields.String(required=True, validate=validate.OneOf(tuple(FORMATS)))


class ClaimQuerySchema(PageQuerySchema):
    status = fields.String(validate=validate.OneOf(claims.STATUSES))


class ClaimSchema(Schema):
    id = fields.Integer(required=True)
    clinic_code = fields.String(required=True)
    channel = fields.String(required=True)
    run_id = fields.Integer(required=True)
    date = fields.Date(required=True, metadata={"description": "the business day of the run"})
    discrepancy_id = fields.Integer(required=True)
    discrepancy_type = fields.String(required=True)
    ref = fields.String(required=True, metadata={"description": "out_trade_no or refund number"})
    amount_fen = fields.Integer(required=True, metadata={"description": "what the channel owes"})
    status = fields.String(required=True, metadata={"description": "`open` or `settled`"})
    note = fields.String(required=True)
    created_by = fields.String(required=True)
    created_at = fields.AwareDateTime(required=True)
    settled_by = fields.String(allow_none=True)
    settled_at = fields.AwareDateTime(allow_none=True)


class ClaimPageSchema(Schema):
    items = fields.List(fields.Nested(ClaimSchema), required=True)
    total = fields.Integer(required=True)
    limit = fields.Integer(required=True)
    offset = fields.Integer(required=True)


class SettleClaimSchema(Schema):
    note = text(1, 500, required=True, metadata={"description": "how the channel paid or corrected it"})


@blp.route("/reconciliation/runs/<int:run_id>/export", methods=["GET"])
@staff_required(FINANCE)
@blp.arguments(ExportQuerySchema, location="query")
@blp.doc(responses={"200": {"description": "every line of the run's day with its outcome: the discrepancies "
                                           "(status, decision, repair, claim) and the lines that matched",
                            "content": {mimetype: {"schema": {"type": "string", "format": "binary"}}
                                        for mimetype in FORMATS.values()}}})
@documented_errors(blp, 404, 422)
def export_run(query, run_id):
    """Download a run as CSV (UTF-8 with BOM) or XLSX: every line with its outcome, streamed."""
    exported = run_export.export_run(runtime(), current_staff(), run_id, query["format"])
    response = Response(exported.chunks, mimetype=exported.mimetype)
    response.headers.set("Content-Disposition", "attachment", filename=exported.filename)
    return response


@blp.route("/reconciliation/claims", methods=["GET"])
@staff_required(FINANCE)
@blp.arguments(ClaimQuerySchema, location="query")
@blp.response(200, ClaimPageSchema)
@documented_errors(blp, 404, 422)
def list_claims(query):
    """Claims against the channels of your clinics, newest first."""
    return claims.list_claims(runtime(), current_staff(), status=query.get("status"),
                              clinic_code=query.get("clinic_code"), limit=query["limit"], offset=query["offset"])


@blp.route("/reconciliation/claims/<int:claim_id>/settle", methods=["POST"])
@staff_required(FINANCE)
@blp.arguments(SettleClaimSchema, example={"note": "微信支付 12 月 6 日补发了这笔交易的账单"})
@blp.response(200, ClaimSchema)
@documented_errors(blp, 404, 409, 422)
def settle_claim(body, claim_id):
    """The channel paid or corrected what the claim names: settled, once, with a note (audited)."""
    return claims.settle_claim(runtime(), current_staff(), claim_id, body["note"])
