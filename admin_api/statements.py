"""Monthly statements (generate, read, export, check) and their settlement in batches (finance)."""
from __future__ import annotations

from flask import Response, request
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from werkzeug.wsgi import wrap_file

from admin_api.schemas import CHANNELS, ROW_ID, ClinicQuerySchema, PageQuerySchema, documented_errors, text
from admin_api.security import ADMIN_PREFIX, FINANCE, OPERATOR, current_staff, staff_required
from app.domain.settlement import INVOICE_TYPES, SETTLEMENT_METHODS, STATEMENT_STATUSES
from app.extensions import runtime
from app.idempotent import answer_once
from app.services.settlement import settlements, statement_export, statements

blp = Blueprint("admin_statements", __name__, url_prefix=ADMIN_PREFIX,
                description="Monthly statements and settlements (finance)")
_IDEMPOTENCY_HEADER = [{"in": "header", "name": "Idempotency-Key", "required": False,
                        "schema": {"type": "string", "maxLength": 200}}]
EXPORT_CHUNK_BYTES = 64 * 1024
_MONTH = validate.Regexp(r"^[0-9]{4}-(0[1-9]|1[0-2])$", error="a month as YYYY-MM")


class StatementListQuerySchema(PageQuerySchema):
    month = fields.String(validate=_MONTH)
    channel = fields.String(validate=validate.OneOf(CHANNELS))
    status = fields.String(validate=validate.OneOf(STATEMENT_STATUSES))


class CreateStatementSchema(ClinicQuerySchema):
    month = fields.String(required=True, validate=_MONTH,
                          metadata={"description": "an Asia/Shanghai month that has ended"})
    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))


class StatementSchema(Schema):
    id = fields.Integer(required=True)
    clinic_code = fields.String(required=True)
    month = fields.String(required=True)
    channel = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "generated, checked or settled"})
    line_count = fields.Integer(required=True)
    total_fen = fields.Integer(required=True)
    generated_at = fields.AwareDateTime(required=True)
    generated_by = fields.String(required=True)
    checked_at = fields.AwareDateTime(allow_none=True)
    checked_by = fields.String(allow_none=True)
    settlement_id = fields.Integer(allow_none=True)
    settled_at = fields.AwareDateTime(allow_none=True)


class StatementPageSchema(Schema):
    items = fields.List(fields.Nested(StatementSchema), required=True)
    total = fields.Integer(required=True)
    limit = fields.Integer(required=True)
    offset = fields.Integer(required=True)


class LinesQuerySchema(Schema):
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=10**7))


class StatementLineSchema(Schema):
    order_no = fields.String(required=True)
    out_trade_no = fields.String(allow_none=True)
    channel_trade_no = fields.String(allow_none=True, metadata={"description": "the channel's order number"})
    patient_name = fields.String(required=True, metadata={"description": "masked"})
    patient_phone = fields.String(allow_none=True, metadata={"description": "masked"})
    item_name = fields.String(required=True)
    appointment_at = fields.AwareDateTime(allow_none=True)
    redeemed_at = fields.AwareDateTime(required=True)
    channel = fields.String(required=True)
    purchase_price_fen = fields.Integer(required=True, metadata={"description": "the channel purchase price"})
    amount_fen = fields.Integer(required=True)


class StatementLinePageSchema(Schema):
    items = fields.List(fields.Nested(StatementLineSchema), required=True)
    total = fields.Integer(required=True)
    limit = fields.Integer(required=True)
    offset = fields.Integer(required=True)


class ExportQuerySchema(Schema):
    format = fields.String(required=True, validate=validate.OneOf(tuple(statement_export.FORMATS)))
    columns = text(1, 500, data_key="fields",
                   metadata={"description": "comma list of columns (default all): "
                                            + ", ".join(statement_export.EXPORT_FIELDS)})


class BankAccountSchema(Schema):
    name = text(1, 100, required=True, metadata={"description": "the account holder (the clinic's company)"})
    bank = text(1, 100, required=True, metadata={"description": "the bank and branch"})
    account_no = text(1, 40, required=True)


class CreateSettlementSchema(Schema):
    statement_ids = fields.List(fields.Integer(strict=True, validate=ROW_ID), required=True,
                                validate=validate.Length(min=1, max=settlements.MAX_STATEMENTS_PER_BATCH))
    method = fields.String(required=True, validate=validate.OneOf(SETTLEMENT_METHODS))
    bank_account = fields.Nested(BankAccountSchema, metadata={"description": "cash only; required for cash"})
    invoice_type = fields.String(validate=validate.OneOf(INVOICE_TYPES),
                                 metadata={"description": "cash only: `normal` (for amount / 1.06) or `special`"})


class SettlementCouponSchema(Schema):
    code = fields.String(required=True)
    value_fen = fields.Integer(required=True)
    expires_on = fields.Date(required=True)


class SettlementBankAccountSchema(Schema):
    name = fields.String(required=True)
    bank = fields.String(required=True)
    account_no = fields.String(required=True, metadata={"description": "masked"})


class SettlementInvoiceSchema(Schema):
    type = fields.String(required=True, metadata={"description": "`normal` or `special` (VAT)"})
    title = fields.String(required=True, metadata={"description": "the buyer the invoice is made out to"})
    tax_no = fields.String(required=True, metadata={"description": "the buyer's tax number"})
    amount_fen = fields.Integer(required=True)
    status = fields.String(required=True, metadata={"description": "`awaiting` or `received`"})
    invoice_no = fields.String(allow_none=True)
    received_at = fields.AwareDateTime(allow_none=True)
    received_by = fields.String(allow_none=True)


class SettlementPayoutSchema(Schema):
    bank_serial_no = fields.String(required=True)
    paid_at = fields.AwareDateTime(required=True)
    paid_by = fields.String(required=True)


class SettlementSchema(Schema):
    id = fields.Integer(required=True)
    clinic_code = fields.String(required=True)
    method = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "cash: pending_payment, then paid; coupon: "
                                                                   "completed"})
    amount_fen = fields.Integer(required=True)
    statement_ids = fields.List(fields.Integer(), required=True)
    settled_on = fields.Date(required=True)
    created_by = fields.String(required=True)
    created_at = fields.AwareDateTime(required=True)
    invoice_type = fields.String()
    invoice_amount_fen = fields.Integer(metadata={"description": "cash: the amount the invoice is made out for"})
    bank_account = fields.Nested(SettlementBankAccountSchema)
    invoice = fields.Nested(SettlementInvoiceSchema, metadata={"description": "cash: the clinic's invoice"})
    payout = fields.Nested(SettlementPayoutSchema, allow_none=True,
                           metadata={"description": "cash: the operator's bank transfer, once paid"})
    coupon = fields.Nested(SettlementCouponSchema)


class SettlementPageSchema(Schema):
    items = fields.List(fields.Nested(SettlementSchema), required=True)
    total = fields.Integer(required=True)
    limit = fields.Integer(required=True)
    offset = fields.Integer(required=True)


def _created_once(path: str, body: dict, schema: Schema, work):
    """A creating POST, done at most once per Idempotency-Key (when sent)."""
    return answer_once(f"admin:{current_staff().user_id}:POST {path}", body, lambda: (201, schema.dump(work())))


@blp.route("/statements", methods=["GET"])
@staff_required(FINANCE)
@blp.arguments(StatementListQuerySchema, location="query")
@blp.response(200, StatementPageSchema)
@documented_errors(blp, 404, 422)
def list_statements(query):
    """Statements of your clinics, newest month first."""
    return statements.list_statements(runtime(), current_staff(), clinic_code=query.get("clinic_code"),
                                      month=query.get("month"), channel=query.get("channel"),
                                      status=query.get("status"), limit=query["limit"], offset=query["offset"])


CREATE_STATEMENT_EXAMPLE = {"month": "2026-11", "channel": "wechat"}


@blp.route("/statements", methods=["POST"])
@staff_required(FINANCE)
@blp.doc(parameters=_IDEMPOTENCY_HEADER)
@blp.arguments(CreateStatementSchema, example=CREATE_STATEMENT_EXAMPLE)
@blp.response(201, StatementSchema)
@documented_errors(blp, 404, 409, 422)
def create_statement(body):
    """Generate the statement of a month that has ended for one channel: its redeemed orders and total.
    An unsettled statement of the same month is replaced (and must be checked again); a settled one is final."""
    return _created_once("/statements", body, StatementSchema(), lambda: statements.generate_statement(
        runtime(), current_staff(), body["month"], body["channel"], clinic_code=body.get("clinic_code")))


@blp.route("/statements/<int:statement_id>", methods=["GET"])
@staff_required(FINANCE)
@blp.response(200, StatementSchema)
@documented_errors(blp, 404)
def get_statement(statement_id):
    """One statement of your clinics."""
    return statements.get_statement(runtime(), current_staff(), statement_id)


@blp.route("/statements/<int:statement_id>/lines", methods=["GET"])
@staff_required(FINANCE)
@blp.arguments(LinesQuerySchema, location="query")
@blp.response(200, StatementLinePageSchema)
@documented_errors(blp, 404, 422)
def list_lines(query, statement_id):
    """The statement's lines (redeemed orders, patients masked) in redemption order."""
    return statements.list_lines(runtime(), current_staff(), statement_id, query["limit"], query["offset"])


@blp.route("/statements/<int:statement_id>/export", methods=["GET"])
@staff_required(FINANCE)
@blp.arguments(ExportQuerySchema, location="query")
@blp.doc(responses={"200": {"description": "the statement as a file: Chinese headers, one row per line, a total",
                            "content": {mimetype: {"schema": {"type": "string", "format": "binary"}}
                                        for mimetype in statement_export.FORMATS.values()}}})
@documented_errors(blp, 404, 422)
def export_statement(query, statement_id):
    """Download the statement as CSV (UTF-8 with BOM) or XLSX, with the columns you choose."""
    exported = statement_export.export_statement(runtime(), current_staff(), statement_id, query["format"],
                                                 query.get("columns"))
    response = Response(wrap_file(request.environ, exported.content, EXPORT_CHUNK_BYTES), mimetype=exported.mimetype,
                        direct_passthrough=True)
    response.headers["Content-Length"] = str(exported.size)
    response.headers.set("Content-Disposition", "attachment", filename=exported.filename)
    return response


@blp.route("/statements/<int:statement_id>/check", methods=["POST"])
@staff_required(FINANCE)
@blp.response(200, StatementSchema)
@documented_errors(blp, 404, 409)
def check_statement(statement_id):
    """Compare the statement line by line with the clinic's own report of the month (GET /reports/channel-orders:
    channel order number and purchase price) and mark it checked (核对) when they agree. Any difference is refused
    409 `statement_differs`, `errors.differences[]` listing each (`kind`: `missing_in_report`,
    `missing_in_statement`, `price_differs`; `channel_trade_no, order_no, statement_price_fen, report_price_fen`)
    and `errors.difference_count`. Only checked statements are settled."""
    return statements.check_statement(runtime(), current_staff(), statement_id)


@blp.route("/settlements", methods=["GET"])
@staff_required(FINANCE, OPERATOR)
@blp.arguments(PageQuerySchema, location="query")
@blp.response(200, SettlementPageSchema)
@documented_errors(blp, 404, 422)
def list_settlements(query):
    """Settlements of your clinics (the operator: of every clinic), newest first."""
    return settlements.list_settlements(runtime(), current_staff(), clinic_code=query.get("clinic_code"),
                                        limit=query["limit"], offset=query["offset"])


CREATE_SETTLEMENT_EXAMPLES = {
    "cash": {
        "summary": "paid to the clinic's bank account, against an invoice",
        "value": {
            "statement_ids": [12, 13],
            "method": "cash",
            "bank_account": {"name": "示例口腔门诊有限公司", "bank": "招商银行上海分行",
                             "account_no": "6225880000000000"},
            "invoice_type": "normal",
        },
    },
    "coupon": {"summary": "settled as a coupon", "value": {"statement_ids": [12], "method": "coupon"}},
}


@blp.route("/settlements", methods=["POST"])
@staff_required(FINANCE)
@blp.doc(parameters=_IDEMPOTENCY_HEADER)
@blp.arguments(CreateSettlementSchema, examples=CREATE_SETTLEMENT_EXAMPLES)
@blp.response(201, SettlementSchema)
@documented_errors(blp, 404, 409, 422)
def create_settlement(body):
    """Settle checked statements of one clinic together, in the settlement months only: in cash (bank account
    and invoice type; an ordinary invoice is for amount / 1.06) or as a coupon of equal value valid 3 years."""
    return _created_once("/settlements", body, SettlementSchema(), lambda: settlements.settle(
        runtime(), current_staff(), body["statement_ids"], body["method"], bank_account=body.get("bank_account"),
        invoice_type=body.get("invoice_type")))


@blp.route("/settlements/<int:settlement_id>", methods=["GET"])
@staff_required(FINANCE, OPERATOR)
@blp.response(200, SettlementSchema)
@documented_errors(blp, 404)
def get_settlement(settlement_id):
    """One settlement of your clinics (the operator: of any clinic)."""
    return settlements.get_settlement(runtime(), current_staff(), settlement_id)
