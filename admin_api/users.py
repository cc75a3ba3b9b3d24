"""Staff user management under /api/admin/v1/users: admins manage the users of their clinics, operators the
clinics' admin users (app.services.people.staff_users says who manages whom)."""
from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields

from admin_api.onboarding_schemas import ManagedUserSchema, UserCreateSchema, UserPatchSchema
from admin_api.schemas import AdminErrorSchema, documented_errors
from admin_api.security import ADMIN, ADMIN_PREFIX, OPERATOR, current_staff, staff_required
from app.extensions import runtime
from app.idempotent import PARAMETER, answer_once
from app.services.people import staff_users

blp = Blueprint("admin_users", __name__, url_prefix=f"{ADMIN_PREFIX}/users", description="Staff users")


class UnlockResultSchema(Schema):
    id = fields.Integer(required=True)
    username = fields.String(required=True)
    was_locked = fields.Boolean(required=True, metadata={"description": "whether a lockout was in force"})


@blp.route("", methods=["GET"])
@staff_required(ADMIN, OPERATOR)
@blp.response(200, ManagedUserSchema(many=True))
@documented_errors(blp)
def list_users():
    """The users you manage: an admin, those of your clinics; an operator, the clinics' admins."""
    return staff_users.list_users(runtime(), current_staff())


USER_CREATE_EXAMPLE = {
    "username": "frontdesk2",
    "role": "staff",
    "clinic_codes": ["demo"],
    "password": "a-long-passphrase",
    "active": True,
}


@blp.route("", methods=["POST"])
@staff_required(ADMIN, OPERATOR)
@blp.doc(parameters=[PARAMETER])
@blp.arguments(UserCreateSchema, example=USER_CREATE_EXAMPLE)
@blp.response(201, ManagedUserSchema)
@documented_errors(blp, 409, 422)
def create_user(body):
    """A new user: an admin makes staff, finance and admin users of their clinics; an operator makes admins."""
    return answer_once(f"admin:{current_staff().user_id}:POST /users", body, lambda: (
        201, ManagedUserSchema().dump(staff_users.create(runtime(), current_staff(), body))))


USER_PATCH_EXAMPLE = {"role": "finance", "clinic_codes": ["demo"], "active": True}


@blp.route("/<int:user_id>", methods=["PATCH"])
@staff_required(ADMIN, OPERATOR)
@blp.arguments(UserPatchSchema, example=USER_PATCH_EXAMPLE)
@blp.response(200, ManagedUserSchema)
@documented_errors(blp, 404, 422)
def update_user(body, user_id):
    """Change a user's role or clinics, deactivate (ends their sessions) or reset the password (ends them too).
    Nobody changes their own role or deactivates themselves."""
    return staff_users.update(runtime(), current_staff(), user_id, body)


@blp.route("/<int:user_id>/unlock", methods=["POST"])
@staff_required(ADMIN, OPERATOR)
@blp.response(200, UnlockResultSchema)
@blp.alt_response(401, schema=AdminErrorSchema, description="Not signed in")
@blp.alt_response(403, schema=AdminErrorSchema, description="Admins and operators only")
@blp.alt_response(404, schema=AdminErrorSchema, description="`user_not_found`: no such user among yours")
def unlock(user_id: int):
    """Clear a user's failed sign-ins from every address, ending a lockout at once (audited)."""
    return staff_users.unlock(runtime(), current_staff(), user_id)
