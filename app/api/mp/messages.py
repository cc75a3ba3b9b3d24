"""Messages to the patient: the templates they may subscribe to, what they subscribed to, and their inbox."""
from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate, validates

from app.api.mp.security import current_principal, login_required
from app.api.schemas import ApiErrorSchema
from app.extensions import runtime
from app.idempotent import PARAMETER as IDEMPOTENCY_KEY_HEADER
from app.idempotent import answer_once
from app.services.messaging import inbox, subscriptions

blp = Blueprint("mp_messages", __name__, url_prefix="/api/mp/v1", description="Mini-program messages")
_AUTH = [{"bearer": []}]
UNAUTHORIZED = "Missing or invalid bearer token"
MAX_TEMPLATES_PER_ANSWER = 3  # wx.requestSubscribeMessage / my.requestSubscribeMessage take at most 3


class SubscriptionSchema(Schema):
    template_id = fields.String(required=True)
    purpose = fields.String(required=True, metadata={"description": "bill_created, payment_succeeded, "
                                                                    "refund_succeeded"})
    allowance = fields.Integer(required=True, metadata={
        "description": "messages of this template the platform may still send you (each accept adds one)"})


class SubscriptionAnswerSchema(Schema):
    template_ids = fields.List(fields.String(validate=validate.Length(min=1, max=128)), required=True,
                               validate=validate.Length(min=1, max=MAX_TEMPLATES_PER_ANSWER),
                               metadata={"description": "the templates the patient answered for"})
    result = fields.String(load_default="accept", validate=validate.OneOf(["accept", "reject", "ban"]),
                           metadata={"description": "what wx.requestSubscribeMessage answered for them (default "
                                                    "accept); only accepted templates may be sent"})

    @validates("template_ids")
    def _distinct(self, value, **_kwargs):
        if len(set(value)) != len(value):
            raise ValidationError("name each template once")


class MessagesQuerySchema(Schema):
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=10**6))


class MessageSchema(Schema):
    id = fields.Integer(required=True)
    kind = fields.String(required=True, metadata={"description": "bill_created or bill_cancelled"})
    title = fields.String(required=True)
    bill_id = fields.String(required=True)
    card_no = fields.String(required=True)
    amount_fen = fields.Integer(allow_none=True)
    bill_kind = fields.String(allow_none=True)
    bill_title = fields.String(allow_none=True)
    page = fields.String(allow_none=True, metadata={"description": "the mini-program page the message opens"})
    created_at = fields.AwareDateTime(required=True)
    pushed = fields.String(allow_none=True, metadata={
        "description": "null: not pushed (no subscription); else the push: pending, sent, refused or failed"})


class MessagePageSchema(Schema):
    items = fields.List(fields.Nested(MessageSchema), required=True)
    total = fields.Integer(required=True)
    limit = fields.Integer(required=True)
    offset = fields.Integer(required=True)


@blp.route("/subscriptions", methods=["GET"])
@login_required
@blp.doc(security=_AUTH)
@blp.response(200, SubscriptionSchema(many=True))
@blp.alt_response(401, schema=ApiErrorSchema, description=UNAUTHORIZED)
def list_subscriptions():
    """The message templates of this mini-program (ask the patient with wx.requestSubscribeMessage for these ids),
    with how many messages of each you may still be sent."""
    return subscriptions.list_subscriptions(runtime(), current_principal())


SUBSCRIPTION_ANSWER_EXAMPLE = {"template_ids": ["tmpl-bill-created", "tmpl-payment-succeeded"], "result": "accept"}


@blp.route("/subscriptions", methods=["POST"])
@login_required
@blp.doc(security=_AUTH, parameters=[IDEMPOTENCY_KEY_HEADER])
@blp.arguments(SubscriptionAnswerSchema, example=SUBSCRIPTION_ANSWER_EXAMPLE)
@blp.response(200, SubscriptionSchema(many=True))
@blp.alt_response(401, schema=ApiErrorSchema, description=UNAUTHORIZED)
@blp.alt_response(409, schema=ApiErrorSchema, description="Idempotency-Key already used with another body")
@blp.alt_response(422, schema=ApiErrorSchema,
                  description="`unknown_template`: not a template of this mini-program; or a field is not valid")
def answer_subscriptions(body):
    """What the patient answered in wx.requestSubscribeMessage / my.requestSubscribeMessage: each accept allows one
    more message of that template; ban takes every one away. Send it once per answer (an Idempotency-Key makes a
    retry safe)."""
    principal = current_principal()
    return answer_once(f"mp:{principal.user_id}:POST /subscriptions", body, lambda: (200, SubscriptionSchema(
        many=True).dump(subscriptions.record_answers(runtime(), principal, body["template_ids"], body["result"]))))


@blp.route("/messages", methods=["GET"])
@login_required
@blp.doc(security=_AUTH)
@blp.arguments(MessagesQuerySchema, location="query")
@blp.response(200, MessagePageSchema)
@blp.alt_response(401, schema=ApiErrorSchema, description=UNAUTHORIZED)
def list_messages(query):
    """Your messages, newest first: every bill announced on a card you hold, whether or not it was pushed to you."""
    return inbox.list_messages(runtime(), current_principal(), query["limit"], query["offset"])
