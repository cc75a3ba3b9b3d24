"""POST /api/admin/v1/auth/login, /logout and /password; GET /api/admin/v1/auth/me."""
from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from admin_api.schemas import AdminErrorSchema, text
from admin_api.security import ADMIN_PREFIX, current_staff, public_endpoint, staff_required
from app.extensions import runtime
from app.ratelimit import client_address
from app.services.people import staff_auth

blp = Blueprint("admin_auth", __name__, url_prefix=f"{ADMIN_PREFIX}/auth", description="Staff sign-in")

REVOKED = "Not signed in, the session expired, or it was ended (`token_revoked`: logout or password change)"


class StaffLoginSchema(Schema):
    username = text(1, 64, required=True)
    password = text(1, staff_auth.PASSWORD_MAX_LEN, required=True, load_only=True)


class PasswordChangeSchema(Schema):
    current_password = text(1, staff_auth.PASSWORD_MAX_LEN, required=True, load_only=True)
    new_password = text(staff_auth.PASSWORD_MIN_LEN, staff_auth.PASSWORD_MAX_LEN, required=True, load_only=True)


class StaffUserSchema(Schema):
    id = fields.Integer(required=True)
    username = fields.String(required=True)
    role = fields.String(required=True, validate=validate.OneOf(staff_auth.ROLES))
    clinic_codes = fields.List(fields.String(), required=True)


class StaffLoginResultSchema(Schema):
    token = fields.String(required=True)
    expires_in = fields.Integer(required=True, metadata={"description": "seconds"})
    user = fields.Nested(StaffUserSchema, required=True)


def _session_document(session: staff_auth.StaffSession) -> dict:
    return {"token": session.token, "expires_in": session.expires_in,
            "user": {"id": session.user_id, "username": session.username, "role": session.role,
                     "clinic_codes": list(session.clinic_codes)}}


STAFF_LOGIN_EXAMPLE = {"username": "staff", "password": "demo-password"}


@blp.route("/login", methods=["POST"])
@public_endpoint
@blp.arguments(StaffLoginSchema, example=STAFF_LOGIN_EXAMPLE)
@blp.response(200, StaffLoginResultSchema)
@blp.alt_response(401, schema=AdminErrorSchema, description="Wrong username or password")
@blp.alt_response(429, schema=AdminErrorSchema,
                  description="`login_locked`: too many failures for this username from this address (or from "
                              "everywhere)")
def login(body):
    """Sign in; the token is sent as `Authorization: Bearer <token>` until it expires or the user logs out."""
    return _session_document(staff_auth.login(runtime(), body["username"], body["password"], client_address()))


@blp.route("/logout", methods=["POST"])
@staff_required()
@blp.response(204)
@blp.alt_response(401, schema=AdminErrorSchema, description=REVOKED)
def logout():
    """End the session: every token of this user stops working (sign in again, on every device)."""
    staff_auth.logout(runtime(), current_staff())


PASSWORD_CHANGE_EXAMPLE = {"current_password": "demo-password", "new_password": "a-new-long-passphrase"}


@blp.route("/password", methods=["POST"])
@staff_required()
@blp.arguments(PasswordChangeSchema, example=PASSWORD_CHANGE_EXAMPLE)
@blp.response(200, StaffLoginResultSchema, description="A fresh session; every earlier token is revoked")
@blp.alt_response(401, schema=AdminErrorSchema, description=REVOKED)
@blp.alt_response(403, schema=AdminErrorSchema, description="`wrong_current_password`")
@blp.alt_response(429, schema=AdminErrorSchema, description="`login_locked`: too many wrong passwords")
def change_password(body):
    """Change your password: the current one is checked (a wrong one counts as a failed sign-in)."""
    session = staff_auth.change_password(runtime(), current_staff(), body["current_password"], body["new_password"],
                                         client_address())
    return _session_document(session)


@blp.route("/me", methods=["GET"])
@staff_required()
@blp.response(200, StaffUserSchema)
@blp.alt_response(401, schema=AdminErrorSchema, description=REVOKED)
def me():
    """The signed-in user, their role and clinics."""
    return staff_auth.describe_principal(runtime(), current_staff())
