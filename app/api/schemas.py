"""Schemas shared by every API: the error body of API.md."""
from __future__ import annotations

from marshmallow import Schema, fields

from app.errors import ApiErrorSchema  # noqa: F401  (the error body of API.md, named here for the views)


class RefundPartSchema(Schema):
    order_no = fields.String(required=True)
    refund_no = fields.String(required=True)
    amount_fen = fields.Integer(required=True)
    status = fields.String(required=True, metadata={"description": "waiting, pending, processing, succeeded, failed"})
    failure_code = fields.String(allow_none=True)
    failure_reason = fields.String(allow_none=True)


class RefundRequestSchema(Schema):
    refund_request_no = fields.String(required=True)
    origin = fields.String(required=True)
    card_no = fields.String(allow_none=True)
    request_no = fields.String(allow_none=True, metadata={"description": "the HIS's request_no (window refunds)"})
    amount_fen = fields.Integer(required=True)
    status = fields.String(required=True, metadata={"description": "processing, succeeded, partially_failed, failed"})
    created_at = fields.AwareDateTime(required=True)
    parts = fields.List(fields.Nested(RefundPartSchema), required=True)
