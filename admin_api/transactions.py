"""Finding any payment or refund of your clinics, and the same list as a CSV or XLSX file (finance and staff)."""
from __future__ import annotations

from flask import Response
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from admin_api.schemas import CHANNELS, PageQuerySchema, documented_errors, text
from admin_api.security import ADMIN_PREFIX, FINANCE, STAFF, clinic_scope, staff_required
from app.extensions import runtime
from app.services.support import EXPORT_FORMATS, KINDS, MAX_PAGE_DEPTH, STATUSES, export_transactions, list_transactions

blp = Blueprint("admin_transactions", __name__, url_prefix=ADMIN_PREFIX,
                description="Every payment and refund: search and export (finance, staff)")


class TransactionFilterSchema(Schema):
    clinic_code = text(1, 32, metadata={"description": "one of your clinics (default: all of them)"})
    q = text(1, 64, metadata={"description": "an order number, out_trade_no, refund number, refund request number, "
                                             "the channel's trade or refund number, a card number, a phone number "
                                             "or its last 4 digits"})
    kind = fields.String(validate=validate.OneOf(KINDS))
    channel = fields.String(validate=validate.OneOf(CHANNELS))
    status = fields.String(validate=validate.OneOf(STATUSES),
                           metadata={"description": "a payment's (pending, paid, closed) or a refund's (waiting, "
                                                    "pending, processing, succeeded, failed)"})
    date_from = fields.Date(data_key="from", metadata={"description": "created on or after (Asia/Shanghai date)"})
    date_to = fields.Date(data_key="to", metadata={"description": "created on or before (Asia/Shanghai date)"})


class TransactionListQuerySchema(TransactionFilterSchema, PageQuerySchema):
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=MAX_PAGE_DEPTH),
                            metadata={"description": f"offset + limit may reach {MAX_PAGE_DEPTH} rows"})


class TransactionExportQuerySchema(TransactionFilterSchema):
    format = fields.String(required=True, validate=validate.OneOf(tuple(EXPORT_FORMATS)))


class TransactionPatientSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    phone = fields.String(allow_none=True, metadata={"description": "masked"})


class TransactionSchema(Schema):
    kind = fields.String(required=True, metadata={"description": "payment or refund"})
    order_no = fields.String(required=True)
    order_type = fields.String(required=True)
    clinic_code = fields.String(required=True)
    out_trade_no = fields.String(allow_none=True, metadata={"description": "the payment's (a refund's too)"})
    refund_no = fields.String(allow_none=True)
    refund_request_no = fields.String(allow_none=True)
    channel = fields.String(required=True)
    channel_trade_no = fields.String(allow_none=True, metadata={"description": "the payment's at the channel"})
    channel_refund_id = fields.String(allow_none=True, metadata={"description": "the refund's at the channel"})
    amount_fen = fields.Integer(required=True)
    status = fields.String(required=True)
    created_at = fields.AwareDateTime(required=True)
    settled_at = fields.AwareDateTime(allow_none=True, metadata={"description": "paid, or the refund succeeded"})
    card_no = fields.String(allow_none=True)
    late = fields.Boolean(required=True, metadata={"description": "a payment that came after its order closed"})
    patient = fields.Nested(TransactionPatientSchema, allow_none=True)


class ChannelLookupSchema(Schema):
    channel = fields.String(required=True)
    out_trade_no = fields.String(required=True, metadata={"description": "the payment the channel named"})
    state = fields.String(required=True, metadata={"description": "the channel's state of the trade (SUCCESS, …)"})


class TransactionPageSchema(Schema):
    items = fields.List(fields.Nested(TransactionSchema), required=True)
    total = fields.Integer(required=True, metadata={"description": f"counted up to {MAX_PAGE_DEPTH}"})
    total_exact = fields.Boolean(required=True, metadata={"description": f"false: more than {MAX_PAGE_DEPTH} match"})
    limit = fields.Integer(required=True)
    offset = fields.Integer(required=True)
    channel_lookup = fields.Nested(ChannelLookupSchema, allow_none=True, metadata={
        "description": "a trade number none of our records held, looked up at the channel: the payment it names "
                       "(ask the channel on its order to record it)"})


def _filters(query: dict) -> dict:
    return {name: query.get(name) for name in ("q", "kind", "channel", "status", "date_from", "date_to")}


@blp.route("/transactions", methods=["GET"])
@staff_required(FINANCE, STAFF)
@blp.arguments(TransactionListQuerySchema, location="query")
@blp.response(200, TransactionPageSchema)
@documented_errors(blp, 404, 422)
def search_transactions(query):
    """Payments and refunds of every order type, newest first: `q` is recognised by its shape; filters narrow it.
    Pages go `offset + limit` <= 10000 rows deep (422 `page_too_deep`): narrow the search instead. A channel trade
    number none of our records holds (its notification was lost) is looked up at the channel."""
    return list_transactions(runtime(), clinic_scope(), clinic_code=query.get("clinic_code"), limit=query["limit"],
                             offset=query["offset"], **_filters(query))


@blp.route("/transactions/export", methods=["GET"])
@staff_required(FINANCE, STAFF)
@blp.arguments(TransactionExportQuerySchema, location="query")
@blp.doc(responses={"200": {"description": "the transactions as a file, newest first; names and phones masked",
                            "content": {mimetype: {"schema": {"type": "string", "format": "binary"}}
                                        for mimetype in EXPORT_FORMATS.values()}}})
@documented_errors(blp, 404, 422)
def export(query):
    """Download the search as CSV (UTF-8 with BOM) or XLSX, streamed. More rows than
    HPAY_TRANSACTION_EXPORT_MAX_ROWS is refused (422 `export_too_large`) before anything is sent."""
    exported = export_transactions(runtime(), clinic_scope(), query["format"], clinic_code=query.get("clinic_code"),
                                   **_filters(query))
    # The chunks need no request context: they read the database through the runtime they were made with.
    response = Response(exported.chunks, mimetype=exported.mimetype)
    response.headers.set("Content-Disposition", "attachment", filename=exported.filename)
    return response
