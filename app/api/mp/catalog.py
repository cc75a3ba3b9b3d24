"""The clinic's items and their time slots."""
from __future__ import annotations

from datetime import date

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from app.api.mp.security import current_principal, login_required
from app.api.schemas import ApiErrorSchema
from app.extensions import runtime
from app.services.clinics import catalog

blp = Blueprint("mp_catalog", __name__, url_prefix="/api/mp/v1", description="Mini-program catalog")


class ItemSchema(Schema):
    id = fields.Integer(required=True)
    code = fields.String(required=True)
    kind = fields.String(required=True, metadata={"description": "item or package"})
    name = fields.String(required=True)
    description = fields.String(allow_none=True)
    price_fen = fields.Integer(required=True)
    channels = fields.List(fields.String(), required=True,
                           metadata={"description": "Channels it is offered on and has stock for"})


class SlotQuerySchema(Schema):
    # Bounded so that the day's start and end stay representable in UTC.
    date = fields.Date(required=True, validate=validate.Range(min=date(2000, 1, 1), max=date(2999, 12, 31)),
                       metadata={"description": "Asia/Shanghai date, YYYY-MM-DD"})


class SlotSchema(Schema):
    id = fields.Integer(required=True)
    starts_at = fields.DateTime(required=True, metadata={"description": "ISO 8601, +08:00"})
    ends_at = fields.DateTime(required=True, metadata={"description": "ISO 8601, +08:00"})
    remaining = fields.Integer(required=True)


@blp.route("/items", methods=["GET"])
@login_required
@blp.doc(security=[{"bearer": []}])
@blp.response(200, ItemSchema(many=True))
@blp.alt_response(401, schema=ApiErrorSchema, description="Missing or invalid bearer token")
def list_items():
    """The clinic's active items and packages sold through the app you signed in with."""
    return catalog.list_items(runtime(), current_principal())


@blp.route("/items/<int:item_id>/slots", methods=["GET"])
@login_required
@blp.doc(security=[{"bearer": []}])
@blp.arguments(SlotQuerySchema, location="query")
@blp.response(200, SlotSchema(many=True))
@blp.alt_response(401, schema=ApiErrorSchema, description="Missing or invalid bearer token")
@blp.alt_response(404, schema=ApiErrorSchema, description="`item_not_found`: not an item of your clinic")
@blp.alt_response(422, schema=ApiErrorSchema, description="`date` missing or not YYYY-MM-DD")
def list_slots(query, item_id: int):
    """The item's time slots on offer on an Asia/Shanghai date (released, not closed), with the places
    remaining."""
    return catalog.list_slots(runtime(), current_principal(), item_id, query["date"])
