"""Schemas shared by every API: the error body of API.md."""
from __future__ import annotations

from marshmallow import Schema, fields


class ApiErrorSchema(Schema):
    message = fields.String(required=True)
    error = fields.String()
    errors = fields.Dict()
