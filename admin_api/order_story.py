"""An order's whole story, asking the channel now, and the payment receipt (finance and staff)."""
from __future__ import annotations

from flask import Response
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from admin_api.schemas import BookingItemSchema, documented_errors
from admin_api.security import ADMIN_PREFIX, FINANCE, STAFF, clinic_scope, current_staff, staff_required
from app.extensions import runtime
from app.identifiers import use_identifier_converters
from app.services.support import get_order_story, staff_inquiry, staff_receipt

blp = Blueprint("admin_order_story", __name__, url_prefix=ADMIN_PREFIX,
                description="An order's whole story, asking the channel, receipts (finance, staff)")
use_identifier_converters(blp)


class StoryPatientSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    phone = fields.String(allow_none=True, metadata={"description": "masked"})


class StoryOrderSchema(Schema):
    order_no = fields.String(required=True)
    type = fields.String(required=True)
    status = fields.String(required=True)
    clinic_code = fields.String(required=True)
    amount_fen = fields.Integer(required=True)
    refunded_fen = fields.Integer(required=True)
    channel = fields.String(required=True)
    description = fields.String(required=True)
    created_at = fields.AwareDateTime(required=True)
    expires_at = fields.AwareDateTime(required=True)
    paid_at = fields.AwareDateTime(allow_none=True)
    completed_at = fields.AwareDateTime(allow_none=True)
    closed_at = fields.AwareDateTime(allow_none=True)
    redeemed_at = fields.AwareDateTime(allow_none=True)
    appointment_at = fields.AwareDateTime(allow_none=True)
    card_no = fields.String(allow_none=True)
    bill_ids = fields.List(fields.String(), allow_none=True)
    item = fields.Nested(BookingItemSchema)
    patient = fields.Nested(StoryPatientSchema)


class StoryEventSchema(Schema):
    at = fields.AwareDateTime(required=True)
    record = fields.String(required=True, metadata={
        "description": "order, payment attempt, refund, refund request, HIS write or inbox notification"})
    ref = fields.String(required=True, metadata={"description": "which one: its number, or a HIS write's kind"})
    from_status = fields.String(required=True)
    to_status = fields.String(required=True)
    reason = fields.String(required=True)
    actor = fields.String(required=True)


class StoryPaymentSchema(Schema):
    out_trade_no = fields.String(required=True)
    channel = fields.String(required=True)
    status = fields.String(required=True)
    amount_fen = fields.Integer(required=True)
    channel_trade_no = fields.String(allow_none=True)
    late = fields.Boolean(required=True)
    created_at = fields.AwareDateTime(required=True)
    paid_at = fields.AwareDateTime(allow_none=True)
    closed_at = fields.AwareDateTime(allow_none=True)
    query_count = fields.Integer(required=True, metadata={"description": "times the janitor asked the channel"})
    next_query_at = fields.AwareDateTime(allow_none=True)


class StoryNotificationSchema(Schema):
    id = fields.Integer(required=True)
    received_at = fields.AwareDateTime(required=True)
    channel = fields.String(required=True)
    kind = fields.String(required=True, metadata={"description": "payment or refund"})
    out_trade_no = fields.String(allow_none=True)
    verified = fields.Boolean(required=True, metadata={
        "description": "always true: a notification is stored only once verified; refused ones are only logged"})
    status = fields.String(required=True, metadata={"description": "received, processed or failed"})
    reason = fields.String(allow_none=True, metadata={"description": "why processing refused it"})
    attempts = fields.Integer(required=True)
    processed_at = fields.AwareDateTime(allow_none=True)


class StoryHisWriteSchema(Schema):
    kind = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "pending, sent, rejected or flagged"})
    attempts = fields.Integer(required=True)
    last_error = fields.String(allow_none=True)
    created_at = fields.AwareDateTime(required=True)
    sent_at = fields.AwareDateTime(allow_none=True)
    next_attempt_at = fields.AwareDateTime(allow_none=True)
    his_record_id = fields.String(allow_none=True)


class StoryRefundPartSchema(Schema):
    refund_no = fields.String(required=True)
    out_trade_no = fields.String(allow_none=True)
    amount_fen = fields.Integer(required=True)
    status = fields.String(required=True)
    channel_refund_id = fields.String(allow_none=True)
    failure_reason = fields.String(allow_none=True)
    created_at = fields.AwareDateTime(required=True)
    succeeded_at = fields.AwareDateTime(allow_none=True)


class StoryRefundSchema(Schema):
    refund_request_no = fields.String(required=True)
    origin = fields.String(required=True)
    amount_fen = fields.Integer(required=True)
    status = fields.String(required=True)
    reason = fields.String(allow_none=True)
    created_at = fields.AwareDateTime(required=True)
    parts = fields.List(fields.Nested(StoryRefundPartSchema), required=True,
                        metadata={"description": "this order's parts (a card refund may span other orders)"})


class StoryAuditSchema(Schema):
    at = fields.AwareDateTime(required=True)
    actor_type = fields.String(required=True)
    actor_name = fields.String(allow_none=True)
    action = fields.String(required=True)
    target_type = fields.String(allow_none=True)
    target_id = fields.String(allow_none=True)
    before = fields.Dict(allow_none=True)
    after = fields.Dict(allow_none=True)
    note = fields.String(allow_none=True)


class StoryInquirySchema(Schema):
    outcome = fields.String(required=True, metadata={"description": "paid_now, already_paid, not_paid, no_payment"})
    asked = fields.Integer(required=True)
    hint = fields.String(required=True)


class OrderStorySchema(Schema):
    order = fields.Nested(StoryOrderSchema, required=True)
    events = fields.List(fields.Nested(StoryEventSchema), required=True,
                         metadata={"description": "every status change, oldest first"})
    payments = fields.List(fields.Nested(StoryPaymentSchema), required=True)
    notifications = fields.List(fields.Nested(StoryNotificationSchema), required=True)
    his_writes = fields.List(fields.Nested(StoryHisWriteSchema), required=True)
    refunds = fields.List(fields.Nested(StoryRefundSchema), required=True)
    audit = fields.List(fields.Nested(StoryAuditSchema), required=True)
    receipt_available = fields.Boolean(required=True)
    inquiry = fields.Nested(StoryInquirySchema, metadata={"description": "after asking the channel: what it said"})


@blp.route("/orders/<order_no:order_no>", methods=["GET"])
@staff_required(FINANCE, STAFF)
@blp.response(200, OrderStorySchema)
@documented_errors(blp, 404)
def get_story(order_no):
    """An order of any type with its whole history: status events, payment attempts, notifications received, HIS
    writes, refunds and audit events."""
    return get_order_story(runtime(), clinic_scope(), order_no)


@blp.route("/orders/<order_no:order_no>/inquiry", methods=["POST"])
@staff_required(STAFF)
@blp.response(200, OrderStorySchema)
@documented_errors(blp, 404, 503)
def inquire(order_no):
    """Ask the channel now (not at the janitor's next turn) about the order's payments that hold no money with us;
    a payment the channel confirms is recorded at once. Answers the story with `inquiry`."""
    return staff_inquiry(runtime(), current_staff(), order_no)


@blp.route("/orders/<order_no:order_no>/receipt", methods=["GET"])
@staff_required(FINANCE, STAFF)
@blp.doc(responses={"200": {"description": "the payment receipt",
                            "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}}})
@documented_errors(blp, 404, 409)
def receipt(order_no):
    """The payment receipt of an order that received money, as a PDF."""
    made = staff_receipt(runtime(), clinic_scope(), order_no)
    response = Response(made.content, mimetype=made.mimetype)
    response.headers.set("Content-Disposition", "attachment", filename=made.filename)
    return response
