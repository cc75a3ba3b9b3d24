"""Mini-program card-balance refunds."""
from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from app.api.mp.security import current_principal, login_required
from app.api.schemas import ApiErrorSchema, RefundRequestSchema
from app.extensions import runtime
from app.idempotent import answer_once
from app.identifiers import use_identifier_converters
from app.services.refunds import describe, request_patient_refund

blp = Blueprint("mp_refunds", __name__, url_prefix="/api/mp/v1", description="Mini-program refunds")
use_identifier_converters(blp)
_AUTH = [{"bearer": []}]
UNAUTHORIZED = "Missing or invalid bearer token"


class CardRefundSchema(Schema):
    amount_fen = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=10**9))


# login_required directly under the route: a caller who is not signed in learns nothing about the body.
CARD_REFUND_EXAMPLE = {"amount_fen": 5000}


@blp.route("/cards/<string:card_no>/refunds", methods=["POST"])
@login_required
@blp.doc(security=_AUTH, parameters=[{"in": "header", "name": "Idempotency-Key", "required": False,
                                      "schema": {"type": "string", "maxLength": 200}}])
@blp.arguments(CardRefundSchema, example=CARD_REFUND_EXAMPLE)
@blp.response(201, RefundRequestSchema)
@blp.alt_response(401, schema=ApiErrorSchema, description=UNAUTHORIZED)
@blp.alt_response(404, schema=ApiErrorSchema, description="`card_not_found`: not a card of this user")
@blp.alt_response(409, schema=ApiErrorSchema, description="Over the balance or the online top-ups")
@blp.alt_response(503, schema=ApiErrorSchema,
                  description="`his_unavailable`: the card balance is read live from the HIS, which did not "
                              "answer; try again after Retry-After")
def refund_card(body, card_no):
    """Refund part of a card balance back along the top-ups made through this mini-program, newest first."""
    principal = current_principal()
    return answer_once(f"mp:{principal.user_id}:POST /cards/{card_no}/refunds", body, lambda: (
        201, RefundRequestSchema().dump(request_patient_refund(runtime(), principal, card_no, body["amount_fen"]))))


@blp.route("/refunds/<refund_request_no:refund_request_no>", methods=["GET"])
@login_required
@blp.doc(security=_AUTH)
@blp.response(200, RefundRequestSchema)
@blp.alt_response(401, schema=ApiErrorSchema, description=UNAUTHORIZED)
@blp.alt_response(404, schema=ApiErrorSchema,
                  description="No such refund request of this user (or not a refund request number at all)")
def get_refund(refund_request_no):
    """A refund request with each part's status."""
    return describe(runtime(), refund_request_no, user_id=current_principal().user_id)
