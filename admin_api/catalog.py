"""A clinic's catalog (items and packages), their schedules and slots (admins of the clinic)."""
from __future__ import annotations

from flask_smorest import Blueprint

from admin_api.onboarding_schemas import (
    AdminItemSchema,
    AdminSlotSchema,
    ItemCreateSchema,
    ItemFieldsSchema,
    ItemListQuerySchema,
    ScheduleResultSchema,
    ScheduleSchema,
    SlotPatchSchema,
    SlotRangeQuerySchema,
)
from admin_api.schemas import documented_errors
from admin_api.security import ADMIN, ADMIN_PREFIX, clinic_scope, current_staff, staff_required
from app.extensions import runtime
from app.idempotent import PARAMETER, answer_once
from app.services.clinics import items, schedules

blp = Blueprint("admin_catalog", __name__, url_prefix=ADMIN_PREFIX, description="Items, schedules and slots")


@blp.route("/items", methods=["GET"])
@staff_required(ADMIN)
@blp.arguments(ItemListQuerySchema, location="query")
@blp.response(200, AdminItemSchema(many=True))
@documented_errors(blp, 404, 422)
def list_items(query):
    """Every item and package of your clinics (or the one named), inactive ones too."""
    return items.list_items(runtime(), clinic_scope(), query.get("clinic_code"))


ITEM_CREATE_EXAMPLE = {
    "clinic_code": "demo",
    "code": "CLEAN-01",
    "name": "洁牙",
    "description": "超声波洁牙，约 40 分钟",
    "price_fen": 19900,
    "channels": ["wechat", "alipay"],
    "collected_by": "clinic",
    "purchase_price_fen": {"wechat": 15000, "alipay": 15000},
    "active": True,
}


@blp.route("/items", methods=["POST"])
@staff_required(ADMIN)
@blp.doc(parameters=[PARAMETER])
@blp.arguments(ItemCreateSchema, example=ITEM_CREATE_EXAMPLE)
@blp.response(201, AdminItemSchema)
@documented_errors(blp, 404, 409, 422)
def create_item(body):
    """A new item or package. Set its stock per channel with PUT /items/{id}/inventory, its slots with
    POST /items/{id}/schedules."""
    fields = {k: v for k, v in body.items() if k != "clinic_code"}
    return answer_once(f"admin:{current_staff().user_id}:POST /items", body, lambda: (201, AdminItemSchema().dump(
        items.create_item(runtime(), current_staff(), body.get("clinic_code"), fields))))


ITEM_FIELDS_EXAMPLE = {"price_fen": 17900, "active": True}


@blp.route("/items/<int:item_id>", methods=["PATCH"])
@staff_required(ADMIN)
@blp.arguments(ItemFieldsSchema, example=ITEM_FIELDS_EXAMPLE)
@blp.response(200, AdminItemSchema)
@documented_errors(blp, 404, 422)
def update_item(body, item_id):
    """Change an item (not its code); orders already placed keep their price."""
    return items.update_item(runtime(), current_staff(), item_id, body)


SCHEDULE_EXAMPLE = {
    "from": "2026-12-07",
    "to": "2026-12-31",
    "weekdays": [1, 2, 3, 4, 5],
    "start": "09:00",
    "end": "17:00",
    "slot_minutes": 30,
    "capacity": 2,
    "closed_dates": ["2026-12-25"],
}


@blp.route("/items/<int:item_id>/schedules", methods=["POST"])
@staff_required(ADMIN)
@blp.arguments(ScheduleSchema, example=SCHEDULE_EXAMPLE)
@blp.response(200, ScheduleResultSchema)
@documented_errors(blp, 404, 409, 422)
def post_schedule(body, item_id):
    """Slots from a weekly pattern (at most 92 days and 2,000 slots a posting). Posting the same schedule again
    creates none twice: the answer counts the slots made and those already there."""
    schedule = {**{k: v for k, v in body.items() if k != "from_"}, "from": body["from_"]}
    return schedules.post_schedule(runtime(), current_staff(), item_id, schedule)


@blp.route("/items/<int:item_id>/slots", methods=["GET"])
@staff_required(ADMIN)
@blp.arguments(SlotRangeQuerySchema, location="query")
@blp.response(200, AdminSlotSchema(many=True))
@documented_errors(blp, 404, 422)
def list_slots(query, item_id):
    """The item's slots starting on those Asia/Shanghai days, with places taken, closed and unreleased ones."""
    return schedules.list_slots(runtime(), clinic_scope(), item_id, query["from_"], query["to"])


SLOT_PATCH_EXAMPLE = {"capacity": 3, "closed": False}


@blp.route("/slots/<int:slot_id>", methods=["PATCH"])
@staff_required(ADMIN)
@blp.arguments(SlotPatchSchema, example=SLOT_PATCH_EXAMPLE)
@blp.response(200, AdminSlotSchema)
@documented_errors(blp, 404, 409, 422)
def update_slot(body, slot_id):
    """Change a slot's capacity (never below the places taken: 409 `capacity_below_taken`), close or reopen it,
    or move its release."""
    return schedules.update_slot(runtime(), current_staff(), slot_id, body)
