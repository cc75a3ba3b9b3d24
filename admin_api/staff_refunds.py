"""Staff refunds of any paid order, approved by finance above HPAY_REFUND_APPROVAL_FEN (maker-checker)."""
from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from admin_api.schemas import documented_errors
from admin_api.security import ADMIN_PREFIX, FINANCE, STAFF, current_staff, staff_required
from app.domain.refunds import RefundRequestStatus
from app.domain.staff_refunds import MAX_REASON_LENGTH
from app.extensions import runtime
from app.idempotent import PARAMETER as IDEMPOTENCY_HEADER
from app.idempotent import answer_once
from app.identifiers import use_identifier_converters
from app.services.refunds import (
    approve,
    get_request,
    list_requests,
    refund_quote,
    reject,
    request_staff_refund,
)

blp = Blueprint("admin_staff_refunds", __name__, url_prefix=ADMIN_PREFIX,
                description="Staff refunds of any paid order; finance approves the large ones (maker-checker)")
use_identifier_converters(blp)

MAX_FEN = 2**31 - 1


class StaffRefundBodySchema(Schema):
    amount_fen = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=MAX_FEN))
    reason = fields.String(required=True, validate=validate.Length(min=1, max=MAX_REASON_LENGTH))


class ApproveBodySchema(Schema):
    note = fields.String(validate=validate.Length(max=MAX_REASON_LENGTH), allow_none=True)


class RejectBodySchema(Schema):
    note = fields.String(required=True, validate=validate.Length(min=1, max=MAX_REASON_LENGTH),
                         metadata={"description": "why (the requester sees it)"})


class RequestListQuerySchema(Schema):
    status = fields.String(validate=validate.OneOf([str(s) for s in RefundRequestStatus]),
                           metadata={"description": "`awaiting_approval`: finance's list of refunds to decide"})


class PersonSchema(Schema):
    id = fields.Integer(required=True)
    username = fields.String(required=True)


class StaffRefundPartSchema(Schema):
    order_no = fields.String(required=True)
    refund_no = fields.String(required=True)
    amount_fen = fields.Integer(required=True)
    status = fields.String(required=True)
    failure_code = fields.String(allow_none=True)
    failure_reason = fields.String(allow_none=True)


class RefundHisWriteSchema(Schema):
    kind = fields.String(required=True)
    status = fields.String(required=True)
    last_error = fields.String(allow_none=True)


class StaffRefundRequestSchema(Schema):
    refund_request_no = fields.String(required=True)
    origin = fields.String(required=True)
    status = fields.String(required=True, metadata={
        "description": "awaiting_approval (above HPAY_REFUND_APPROVAL_FEN, until finance decides), processing, "
                       "succeeded, failed, partially_failed or rejected"})
    amount_fen = fields.Integer(required=True)
    reason = fields.String(allow_none=True)
    created_at = fields.AwareDateTime(required=True)
    clinic_code = fields.String(required=True)
    order_no = fields.String(required=True)
    order_type = fields.String(required=True)
    order_status = fields.String(required=True)
    order_amount_fen = fields.Integer(required=True)
    channel = fields.String(required=True)
    requested_by = fields.Nested(PersonSchema, allow_none=True)
    decided_by = fields.Nested(PersonSchema, allow_none=True)
    decided_at = fields.AwareDateTime(allow_none=True)
    decision_note = fields.String(allow_none=True)
    mine = fields.Boolean(required=True, metadata={"description": "you asked for it (so you may not decide it)"})
    can_decide = fields.Boolean(required=True, metadata={"description": "you may approve or reject it now"})
    parts = fields.List(fields.Nested(StaffRefundPartSchema), required=True)
    his_writes = fields.List(fields.Nested(RefundHisWriteSchema), required=True, metadata={
        "description": "what the HIS is told before the money leaves: refund_hold (top-up), "
                       "bill_settlement_reversal (visit bill) or charge_adjustment (redeemed booking)"})


class RefusalSchema(Schema):
    error = fields.String(required=True)
    message = fields.String(required=True)


class RefundQuoteSchema(Schema):
    order_no = fields.String(required=True)
    order_type = fields.String(required=True)
    order_status = fields.String(required=True)
    amount_fen = fields.Integer(required=True)
    refunded_fen = fields.Integer(required=True)
    refundable_fen = fields.Integer(required=True, metadata={
        "description": "paid, less refunded or on its way back, less what requests awaiting approval hold"})
    max_refund_fen = fields.Integer(required=True, metadata={
        "description": "the most one staff refund may be (a booking not yet redeemed keeps 1 fen: all of it is "
                       "its cancellation)"})
    approval_threshold_fen = fields.Integer(required=True)
    staff_refunded_fen = fields.Integer(required=True)
    approval_needed_above_fen = fields.Integer(required=True, metadata={
        "description": "a refund above this waits for finance (the threshold less the order's earlier staff "
                       "refunds)"})
    his_write = fields.String(allow_none=True)
    refusal = fields.Nested(RefusalSchema, allow_none=True, metadata={
        "description": "why staff cannot refund this order (null: they can)"})


@blp.route("/orders/<order_no:order_no>/refund-quote", methods=["GET"])
@staff_required(STAFF, FINANCE)
@blp.response(200, RefundQuoteSchema)
@documented_errors(blp, 404)
def get_refund_quote(order_no):
    """What remains refundable of an order, above which amount finance must approve, and what the HIS is told
    first."""
    return refund_quote(runtime(), current_staff(), order_no)


@blp.route("/orders/<order_no:order_no>/refunds", methods=["POST"])
@staff_required(STAFF, FINANCE)
@blp.doc(parameters=[IDEMPOTENCY_HEADER])
@blp.arguments(StaffRefundBodySchema, example={"amount_fen": 3000, "reason": "患者投诉服务未完成，部分退款"})
@blp.response(201, StaffRefundRequestSchema)
@documented_errors(blp, 404, 409, 422, 503)
def ask_for_refund(body, order_no):
    """Refund part or all of a paid order of any type (also after redemption), with a reason. Up to
    HPAY_REFUND_APPROVAL_FEN (with the order's earlier staff refunds) it starts at once; above it the request is
    `awaiting_approval` until a finance user other than you approves it. A booking not yet redeemed is refunded
    in full by cancelling it."""
    principal = current_staff()
    return answer_once(f"admin:{principal.user_id}:staff_refund:{order_no}", body, lambda: (
        201, StaffRefundRequestSchema().dump(request_staff_refund(runtime(), principal, order_no, body["amount_fen"],
                                                                  body["reason"]))))


@blp.route("/refund-requests", methods=["GET"])
@staff_required(STAFF, FINANCE)
@blp.arguments(RequestListQuerySchema, location="query")
@blp.response(200, StaffRefundRequestSchema(many=True))
@documented_errors(blp, 422)
def list_refund_requests(query):
    """Staff refund requests of your clinics, newest first (at most 200); `status=awaiting_approval` is finance's
    list to decide."""
    return list_requests(runtime(), current_staff(), query.get("status"))


@blp.route("/refund-requests/<refund_request_no:refund_request_no>", methods=["GET"])
@staff_required(STAFF, FINANCE)
@blp.response(200, StaffRefundRequestSchema)
@documented_errors(blp, 404)
def get_refund_request(refund_request_no):
    """One staff refund request of your clinics."""
    return get_request(runtime(), current_staff(), refund_request_no)


@blp.route("/refund-requests/<refund_request_no:refund_request_no>/approve", methods=["POST"])
@staff_required(FINANCE)
@blp.arguments(ApproveBodySchema, example={"note": "已核实"})
@blp.response(200, StaffRefundRequestSchema)
@documented_errors(blp, 404, 409, 422, 503)
def approve_refund_request(body, refund_request_no):
    """Approve a refund awaiting approval (not one you asked for: 403 `self_approval_forbidden`); it is checked
    again and starts. Of two finance users deciding at once, one wins; the other gets 409
    `refund_request_decided`."""
    return approve(runtime(), current_staff(), refund_request_no, body.get("note"))


@blp.route("/refund-requests/<refund_request_no:refund_request_no>/reject", methods=["POST"])
@staff_required(FINANCE)
@blp.arguments(RejectBodySchema, example={"note": "已到院处理，无需退款"})
@blp.response(200, StaffRefundRequestSchema)
@documented_errors(blp, 404, 409, 422)
def reject_refund_request(body, refund_request_no):
    """Reject a refund awaiting approval, saying why (not one you asked for); nothing is refunded."""
    return reject(runtime(), current_staff(), refund_request_no, body["note"])
