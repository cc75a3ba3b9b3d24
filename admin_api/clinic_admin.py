"""Patients lookup (staff), inventory and settlement-type settings (admin), the audit trail (admin)."""
from __future__ import annotations

from flask_smorest import Blueprint

from admin_api.schemas import (
    AuditPageSchema,
    AuditQuerySchema,
    ClinicQuerySchema,
    InventoryEntrySchema,
    InventoryLevelSchema,
    PatientSearchQuerySchema,
    SettlementTypeEntrySchema,
    StaffPatientSchema,
    documented_errors,
)
from admin_api.security import ADMIN, ADMIN_PREFIX, STAFF, clinic_scope, current_staff, staff_required
from app.domain.errors import InvalidInput
from app.extensions import runtime
from app.services.booking import staff_patients
from app.services.clinics import inventory, settlement_types
from app.services.common import audit_query

blp = Blueprint("admin_clinic", __name__, url_prefix=ADMIN_PREFIX,
                description="Patients, inventory, settlement types and the audit trail")


def _one_per_channel(entries: list[dict]) -> list[dict]:
    channels = [entry["channel"] for entry in entries]
    if not channels or len(set(channels)) != len(channels):
        raise InvalidInput("send one entry per channel, at least one", "validation_failed",
                           {"channel": ["one entry per channel"]})
    return entries


@blp.route("/patients", methods=["GET"])
@staff_required(STAFF)
@blp.arguments(PatientSearchQuerySchema, location="query")
@blp.response(200, StaffPatientSchema(many=True))
@documented_errors(blp, 404, 422)
def search_patients(query):
    """Patients of your clinics with this phone number (family members may share one), to confirm a booking."""
    return staff_patients.search_patients(runtime(), clinic_scope(), query["phone"], query.get("clinic_code"))


@blp.route("/items/<int:item_id>/inventory", methods=["GET"])
@staff_required(ADMIN)
@blp.response(200, InventoryLevelSchema(many=True))
@documented_errors(blp, 404)
def get_inventory(item_id):
    """How many of the item each channel may sell, and how many are held or sold."""
    return inventory.get_inventory(runtime(), clinic_scope(), item_id)


INVENTORY_ENTRY_EXAMPLE = [{"channel": "wechat", "quantity": 20}, {"channel": "alipay", "quantity": 10}]


@blp.route("/items/<int:item_id>/inventory", methods=["PUT"])
@staff_required(ADMIN)
@blp.arguments(InventoryEntrySchema(many=True), example=INVENTORY_ENTRY_EXAMPLE)
@blp.response(200, InventoryLevelSchema(many=True))
@documented_errors(blp, 404, 409, 422)
def put_inventory(entries, item_id):
    """Set channels' quantities; never below what is already held or sold (409 `inventory_below_reserved`)."""
    return inventory.set_inventory(runtime(), current_staff(), item_id, _one_per_channel(entries))


@blp.route("/settings/settlement-types", methods=["GET"])
@staff_required(ADMIN)
@blp.arguments(ClinicQuerySchema, location="query")
@blp.response(200, SettlementTypeEntrySchema(many=True))
@documented_errors(blp, 404, 422)
def get_settlement_types(query):
    """How each channel's redeemed platform orders count: their HIS settlement type, cash flow, revenue."""
    return settlement_types.get_settlement_types(runtime(), clinic_scope(), query.get("clinic_code"))


SETTLEMENT_TYPE_ENTRY_EXAMPLE = [
    {"channel": "wechat", "count_in_cash_flow": True, "count_in_revenue": True},
    {"channel": "alipay", "count_in_cash_flow": True, "count_in_revenue": False},
]


@blp.route("/settings/settlement-types", methods=["PUT"])
@staff_required(ADMIN)
@blp.arguments(ClinicQuerySchema, location="query")
@blp.arguments(SettlementTypeEntrySchema(many=True), example=SETTLEMENT_TYPE_ENTRY_EXAMPLE)
@blp.response(200, SettlementTypeEntrySchema(many=True))
@documented_errors(blp, 404, 409, 422)
def put_settlement_types(query, entries):
    """Set channels' settlement-type settings (channels not sent keep theirs)."""
    return settlement_types.put_settlement_types(runtime(), current_staff(), query.get("clinic_code"),
                                               _one_per_channel(entries))


@blp.route("/audit-events", methods=["GET"])
@staff_required(ADMIN)
@blp.arguments(AuditQuerySchema, location="query")
@blp.response(200, AuditPageSchema)
@documented_errors(blp, 404, 422)
def list_audit_events(query):
    """The audit trail of your clinics, newest first: who did what, when, before and after."""
    return audit_query.list_events(runtime(), clinic_scope(), actor=query.get("actor"), action=query.get("action"),
                                   since=query.get("since"), clinic_code=query.get("clinic_code"),
                                   limit=query["limit"], offset=query["offset"])
