"""POST /api/admin/v1/auth/login and GET /api/admin/v1/auth/me."""
from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from admin_api.schemas import AdminErrorSchema, text
from admin_api.security import ADMIN_PREFIX, current_staff, public_endpoint, staff_required
from app.extensions import runtime
from app.services import staff_auth

blp = Blueprint("admin_auth", __name__, url_prefix=f"{ADMIN_PREFIX}/auth", description="Staff sign-in")


class StaffLoginSchema(Schema):
    username = text(1, 64, required=True)
    password = text(1, 256, required=True, load_only=True)


class StaffUserSchema(Schema):
    id = fields.Integer(required=True)
    username = fields.String(required=True)
    role = fields.String(required=True, validate=validate.OneOf(staff_auth.ROLES))
    clinic_codes = fields.List(fields.String(), required=True)


class StaffLoginResultSchema(Schema):
    token = fields.String(required=True)
    expires_in = fields.Integer(required=True, metadata={"description": "seconds"})
    user = fields.Nested(StaffUserSchema, required=True)


@blp.route("/login", methods=["POST"])
@public_endpoint
@blp.arguments(StaffLoginSchema)
@blp.response(200, StaffLoginResultSchema)
@blp.alt_response(401, schema=AdminErrorSchema, description="Wrong username or password")
@blp.alt_response(429, schema=AdminErrorSchema, description="Locked after repeated failures; try later")
def login(body):
    """Sign in; the token is sent as `Authorization: Bearer <token>` until it expires."""
    session = staff_auth.login(runtime(), body["username"], body["password"])
    return {"token": session.token, "expires_in": session.expires_in,
            "user": {"id": session.user_id, "username": session.username, "role": session.role,
                     "clinic_codes": list(session.clinic_codes)}}


@blp.route("/me", methods=["GET"])
@staff_required()
@blp.response(200, StaffUserSchema)
@blp.alt_response(401, schema=AdminErrorSchema, description="Not signed in, or the session expired")
def me():
    """The signed-in user, their role and clinics."""
    return staff_auth.describe_principal(runtime(), current_staff())
