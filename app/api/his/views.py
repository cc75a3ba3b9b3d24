"""POST /api/his/v1/refunds (window refunds), POST /api/his/v1/events (bills announced) and
GET /api/his/v1/reconciliation/{date}.

Every view is `@his_signed` directly under `@blp.route`: the signature is checked before the body.
"""
from __future__ import annotations

from datetime import date

from flask import Response, abort
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from app.api.his.security import his_clinic_id, his_signed
from app.api.schemas import ApiErrorSchema, RefundRequestSchema
from app.domain.messaging import MessageKind
from app.extensions import runtime
from app.identifiers import bill_id as valid_bill_id
from app.identifiers import his_reference
from app.services import messaging
from app.services.his import ledger
from app.services.refunds import card_refunds

blp = Blueprint("his_api", __name__, url_prefix="/api/his/v1", description="HIS API (HMAC-signed)")
_HMAC = [{"his_hmac": []}]
UNSIGNED = ("`invalid_signature`: missing, malformed, stale (over 300 s old or 30 s ahead) or wrong signature; "
            "`replayed_request`: a nonce already used")


class WindowRefundSchema(Schema):
    card_no = fields.String(required=True, validate=his_reference)
    amount_fen = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=10**9))
    request_no = fields.String(required=True, validate=his_reference,
                               metadata={"description": "the HIS's own number for this request (idempotency)"})


class BillEventSchema(Schema):
    type = fields.String(required=True, validate=validate.OneOf([str(k) for k in MessageKind]))
    card_no = fields.String(required=True, validate=his_reference)
    bill_id = fields.String(required=True, validate=valid_bill_id)


class EventAcceptedSchema(Schema):
    accepted = fields.Boolean(required=True)


class HisWriteSchema(Schema):
    idempotency_key = fields.String(required=True)
    kind = fields.String(required=True)
    order_no = fields.String(allow_none=True)
    card_no = fields.String(allow_none=True)
    amount_fen = fields.Integer(allow_none=True)
    status = fields.String(required=True)
    sent_at = fields.AwareDateTime(allow_none=True)


class HisDaySchema(Schema):
    date = fields.Date(required=True)
    writes = fields.List(fields.Nested(HisWriteSchema), required=True)


WINDOW_REFUND_EXAMPLE = {"card_no": "D0000001", "amount_fen": 5000, "request_no": "HISRF20261205001"}


@blp.route("/refunds", methods=["POST"])
@his_signed
@blp.doc(security=_HMAC)
@blp.arguments(WindowRefundSchema, example=WINDOW_REFUND_EXAMPLE)
@blp.response(201, RefundRequestSchema)
@blp.alt_response(401, schema=ApiErrorSchema, description=UNSIGNED)
@blp.alt_response(409, schema=ApiErrorSchema, description="Over the balance or the online top-ups")
@blp.alt_response(503, schema=ApiErrorSchema,
                  description="`his_unavailable`: the card balance could not be read back from the HIS; "
                              "send the request again (same request_no, new nonce) after Retry-After")
def window_refund(body):
    """A refund asked for at the hospital window: the same rules as a patient's, over every channel app's
    top-ups; `request_no` makes it idempotent."""
    rt = runtime()
    request_no = card_refunds.request_refund(rt, clinic_id=his_clinic_id(), card_no=body["card_no"],
                                             amount_fen=body["amount_fen"], origin="window", account_ids=None,
                                             external_request_no=body["request_no"])
    return card_refunds.describe(rt, request_no)


BILL_EVENT_EXAMPLE = {"type": "bill_created", "card_no": "D0000001", "bill_id": "B10001"}


@blp.route("/events", methods=["POST"])
@his_signed
@blp.doc(security=_HMAC)
@blp.arguments(BillEventSchema, example=BILL_EVENT_EXAMPLE)
@blp.response(202, EventAcceptedSchema)
@blp.alt_response(401, schema=ApiErrorSchema, description=UNSIGNED)
@blp.alt_response(503, schema=ApiErrorSchema,
                  description="`his_unavailable`: the platform could not read the bill back from the HIS; announce it "
                              "again (new nonce) after Retry-After")
def bill_event(body):
    """The HIS announces a visit bill opened (`bill_created`) or cancelled (`bill_cancelled`) on a card.

    The platform reads the bill back from the HIS (its card, title, amount and status are the HIS's, not the
    announcement's), gives every mini-program user holding the card a message, and pushes a new bill to those
    who subscribed. The answer is 202 whatever the card (one nobody holds changes nothing); announcing again
    changes nothing either."""
    messaging.receive(runtime(), his_clinic_id(), MessageKind(body["type"]), body["card_no"], body["bill_id"])
    return {"accepted": True}


class HisDayQuerySchema(Schema):
    format = fields.String(load_default="json", validate=validate.OneOf(("json", "csv")),
                           metadata={"description": "`json` (the default) or `csv`: the same day as a file (UTF-8 "
                                                    "with BOM); the query string is part of what is signed"})


@blp.route("/reconciliation/<string:day>", methods=["GET"])
@his_signed
@blp.doc(security=_HMAC)
@blp.arguments(HisDayQuerySchema, location="query")
@blp.response(200, HisDaySchema, description="the day's writes; with `format=csv`, the same rows as a text/csv "
                                               "file")
@blp.alt_response(401, schema=ApiErrorSchema, description=UNSIGNED)
@blp.alt_response(422, schema=ApiErrorSchema, description="The date is not YYYY-MM-DD, or an unknown format")
def reconciliation_day(query, day):
    """The platform's record of the HIS writes it made that day (Asia/Shanghai), for the HIS to check; as a
    file with `format=csv`."""
    try:
        parsed = date.fromisoformat(day)
    except ValueError:
        abort(422, description="the date must be YYYY-MM-DD")
    if query["format"] == "csv":
        exported = ledger.ledger_file(runtime(), his_clinic_id(), _clinic_code(), parsed, "csv")
        response = Response(exported.chunks, mimetype=exported.mimetype)
        response.headers.set("Content-Disposition", "attachment", filename=exported.filename)
        return response
    return {"date": parsed, "writes": ledger.writes_on(runtime(), his_clinic_id(), parsed)}


def _clinic_code() -> str:
    return ledger.clinic_code(runtime(), his_clinic_id())
