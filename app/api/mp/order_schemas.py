"""Request and response schemas of the mini-program orders API."""
from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from app.domain.orders import ORDER_TYPES
from app.identifiers import bill_id

_POSITIVE_ID = validate.Range(min=1, max=2**31 - 1)


class CreateOrderSchema(Schema):
    type = fields.String(required=True, validate=validate.OneOf(ORDER_TYPES))
    channel = fields.String(required=True, validate=validate.OneOf(["wechat", "alipay"]))
    item_id = fields.Integer(validate=_POSITIVE_ID)
    slot_id = fields.Integer(validate=_POSITIVE_ID)
    patient_id = fields.Integer(validate=_POSITIVE_ID)
    card_no = fields.String(validate=validate.Length(min=1, max=64))
    amount_fen = fields.Integer(strict=True, validate=validate.Range(min=1, max=10**9))
    bill_ids = fields.List(fields.String(validate=bill_id), validate=validate.Length(min=1, max=20))

    _REQUIRED = {"booking": ("item_id", "slot_id", "patient_id"), "topup": ("card_no", "amount_fen"),
                 "visit_bill": ("card_no", "bill_ids")}

    @validates_schema
    def _fields_of_type(self, data, **_kwargs):
        missing = [name for name in self._REQUIRED.get(data.get("type"), ()) if name not in data]
        if missing:
            raise ValidationError({name: [f"required for a {data['type']} order"] for name in missing})
        if data.get("type") == "visit_bill" and "amount_fen" in data:
            raise ValidationError({"amount_fen": ["a visit-bill amount comes from the hospital, not the client"]})
        bill_ids = data.get("bill_ids") or []
        if len(set(bill_ids)) != len(bill_ids):
            raise ValidationError({"bill_ids": ["name each bill once"]})


class CancelOrderSchema(Schema):
    reason = fields.String(validate=validate.Length(max=200))


class ListOrdersQuerySchema(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=10**6))


class OrderPaymentSchema(Schema):
    out_trade_no = fields.String(required=True)
    channel = fields.String(required=True)
    status = fields.String(required=True)
    amount_fen = fields.Integer(required=True)
    channel_trade_no = fields.String(allow_none=True)
    late = fields.Boolean()


class OrderItemSchema(Schema):
    id = fields.Integer()
    code = fields.String()
    name = fields.String()
    price_fen = fields.Integer()


class OrderSlotSchema(Schema):
    id = fields.Integer()
    starts_at = fields.AwareDateTime()
    ends_at = fields.AwareDateTime()


class OrderPatientSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    phone = fields.String(metadata={"description": "masked"})


class OrderSchema(Schema):
    order_no = fields.String(required=True)
    type = fields.String(required=True)
    status = fields.String(required=True)
    amount_fen = fields.Integer(required=True)
    refunded_fen = fields.Integer(required=True)
    channel = fields.String(required=True)
    created_at = fields.AwareDateTime(required=True)
    expires_at = fields.AwareDateTime(required=True)
    paid_at = fields.AwareDateTime(allow_none=True)
    appointment_at = fields.AwareDateTime(allow_none=True)
    card_no = fields.String(allow_none=True)
    bill_ids = fields.List(fields.String(), allow_none=True)
    item = fields.Nested(OrderItemSchema)
    slot = fields.Nested(OrderSlotSchema)
    patient = fields.Nested(OrderPatientSchema)
    payments = fields.List(fields.Nested(OrderPaymentSchema), required=True)


class PayParamsSchema(Schema):
    timeStamp = fields.String()
    nonceStr = fields.String()
    package = fields.String()
    signType = fields.String()
    paySign = fields.String()


class PayResultSchema(Schema):
    channel = fields.String(required=True)
    out_trade_no = fields.String(required=True)
    pay_params = fields.Nested(PayParamsSchema, metadata={"description": "WeChat: wx.requestPayment arguments"})
    trade_no = fields.String(metadata={"description": "Alipay: the tradeNO for my.tradePay"})


class InquirySchema(Schema):
    outcome = fields.String(required=True, metadata={
        "description": "`paid_now` (the channel had the money: recorded now), `already_paid`, `not_paid` (the "
                       "order is unchanged), `no_payment` (never sent to a channel)"})
    asked = fields.Integer(required=True, metadata={"description": "payment attempts the channel was asked about"})
    hint = fields.String(required=True, metadata={"description": "what to tell the patient"})


class InquiredOrderSchema(OrderSchema):
    inquiry = fields.Nested(InquirySchema, required=True)
