"""Closing the month: the clinic's own channel-orders report, the cash payout and its invoice (operator), and
settlement coupons (finance)."""
from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from admin_api.schemas import CHANNELS, ClinicQuerySchema, PageQuerySchema, documented_errors, plausible_time, text
from admin_api.security import ADMIN_PREFIX, FINANCE, OPERATOR, current_staff, staff_required
from admin_api.statements import SettlementSchema
from app.domain.settlement import CouponStatus
from app.extensions import runtime
from app.services.settlement import channel_orders, coupons, settlements

blp = Blueprint("admin_settlement_ops", __name__, url_prefix=ADMIN_PREFIX,
                description="The channel-orders report, payouts and invoices of cash settlements, coupons")
_MONTH = validate.Regexp(r"^[0-9]{4}-(0[1-9]|1[0-2])$", error="a month as YYYY-MM")


class ChannelOrdersQuerySchema(ClinicQuerySchema):
    month = fields.String(required=True, validate=_MONTH,
                          metadata={"description": "an Asia/Shanghai month that has ended"})
    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=10**7))


class ChannelOrderSchema(Schema):
    order_no = fields.String(required=True)
    out_trade_no = fields.String(allow_none=True)
    channel_trade_no = fields.String(allow_none=True, metadata={"description": "the channel's order number"})
    item_name = fields.String(required=True)
    redeemed_at = fields.AwareDateTime(required=True)
    purchase_price_fen = fields.Integer(required=True, metadata={
        "description": "the item's channel purchase price as it was when the order was made"})
    amount_fen = fields.Integer(required=True, metadata={"description": "what the patient paid"})


class ChannelOrdersReportSchema(Schema):
    clinic_code = fields.String(required=True)
    month = fields.String(required=True)
    channel = fields.String(required=True)
    count = fields.Integer(required=True, metadata={"description": "orders in the whole month"})
    total_purchase_fen = fields.Integer(required=True, metadata={"description": "their purchase prices, summed"})
    items = fields.List(fields.Nested(ChannelOrderSchema), required=True)
    limit = fields.Integer(required=True)
    offset = fields.Integer(required=True)


class PayoutSchema(Schema):
    bank_serial_no = text(6, 64, required=True, metadata={"description": "the bank transfer's serial number"})
    paid_at = fields.AwareDateTime(required=True, validate=plausible_time,
                                   metadata={"description": "when the transfer was made, with its offset"})


class InvoiceReceivedSchema(Schema):
    invoice_no = text(6, 32, required=True, metadata={"description": "the number printed on the clinic's invoice"})


class CouponQuerySchema(PageQuerySchema):
    status = fields.String(validate=validate.OneOf(tuple(CouponStatus)))


class CouponSchema(Schema):
    code = fields.String(required=True)
    clinic_code = fields.String(required=True)
    settlement_id = fields.Integer(required=True)
    value_fen = fields.Integer(required=True)
    issued_on = fields.Date(required=True)
    expires_on = fields.Date(required=True, metadata={"description": "the last day it may be used (Asia/Shanghai)"})
    status = fields.String(required=True, metadata={"description": "`unused`, `used` or `expired`"})
    used_at = fields.AwareDateTime(allow_none=True)
    used_by = fields.String(allow_none=True)


class CouponPageSchema(Schema):
    items = fields.List(fields.Nested(CouponSchema), required=True)
    total = fields.Integer(required=True)
    limit = fields.Integer(required=True)
    offset = fields.Integer(required=True)


@blp.route("/reports/channel-orders", methods=["GET"])
@staff_required(FINANCE)
@blp.arguments(ChannelOrdersQuerySchema, location="query")
@blp.response(200, ChannelOrdersReportSchema)
@documented_errors(blp, 404, 422)
def channel_orders_report(query):
    """The clinic's own report of a month: its redeemed platform-collected orders of the channel (from the orders
    themselves, not from a statement), each with the channel order number and its purchase price."""
    return channel_orders.channel_orders_report(runtime(), current_staff(), query["month"], query["channel"],
                                                clinic_code=query.get("clinic_code"), limit=query["limit"],
                                                offset=query["offset"])


@blp.route("/settlements/<int:settlement_id>/invoice", methods=["POST"])
@staff_required(OPERATOR)
@blp.arguments(InvoiceReceivedSchema, example={"invoice_no": "04412345"})
@blp.response(200, SettlementSchema)
@documented_errors(blp, 404, 409, 422)
def record_invoice(body, settlement_id):
    """The clinic's invoice for a cash settlement arrived (its number): status `received`. Once only."""
    return settlements.record_invoice_received(runtime(), current_staff(), settlement_id, body["invoice_no"])


@blp.route("/settlements/<int:settlement_id>/payout", methods=["POST"])
@staff_required(OPERATOR)
@blp.arguments(PayoutSchema, example={"bank_serial_no": "BOC20261205000123", "paid_at": "2026-12-05T15:30:00+08:00"})
@blp.response(200, SettlementSchema)
@documented_errors(blp, 404, 409, 422)
def record_payout(body, settlement_id):
    """The operator paid a cash settlement by bank transfer: status `paid`, with the bank serial number and time,
    which the clinic's finance sees. Only once its invoice is received (409 `invoice_not_received`); once only
    (409 `settlement_already_paid`)."""
    return settlements.record_payout(runtime(), current_staff(), settlement_id, body["bank_serial_no"],
                                     body["paid_at"])


@blp.route("/coupons", methods=["GET"])
@staff_required(FINANCE, OPERATOR)
@blp.arguments(CouponQuerySchema, location="query")
@blp.response(200, CouponPageSchema)
@documented_errors(blp, 404, 422)
def list_coupons(query):
    """Settlement coupons of your clinics (the operator: of every clinic), newest first, with their state."""
    return coupons.list_coupons(runtime(), current_staff(), status=query.get("status"),
                                clinic_code=query.get("clinic_code"), limit=query["limit"], offset=query["offset"])


@blp.route("/coupons/<string:code>/use", methods=["POST"])
@staff_required(FINANCE)
@blp.response(200, CouponSchema)
@documented_errors(blp, 404, 409)
def use_coupon(code):
    """Use a coupon of your clinic: once (409 `coupon_already_used`), while valid (409 `coupon_expired`)."""
    return coupons.use_coupon(runtime(), current_staff(), code)
