"""Staff user management under /api/admin/v1/users (admins, for the users of their clinics)."""
from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields

from admin_api.schemas import AdminErrorSchema
from admin_api.security import ADMIN, ADMIN_PREFIX, current_staff, staff_required
from app.extensions import runtime
from app.services.people import staff_auth

blp = Blueprint("admin_users", __name__, url_prefix=f"{ADMIN_PREFIX}/users", description="Staff users")


class UnlockResultSchema(Schema):
    id = fields.Integer(required=True)
    username = fields.String(required=True)
    was_locked = fields.Boolean(required=True, metadata={"description": "whether a lockout was in force"})


@blp.route("/<int:user_id>/unlock", methods=["POST"])
@staff_required(ADMIN)
@blp.response(200, UnlockResultSchema)
@blp.alt_response(401, schema=AdminErrorSchema, description="Not signed in")
@blp.alt_response(403, schema=AdminErrorSchema, description="Admins only")
@blp.alt_response(404, schema=AdminErrorSchema, description="`user_not_found`: no such user in your clinics")
def unlock(user_id: int):
    """Clear a user's failed sign-ins from every address, ending a lockout at once (audited)."""
    return staff_auth.unlock(runtime(), current_staff(), user_id)
