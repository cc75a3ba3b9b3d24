"""POST /api/mp/v1/auth/login and /logout."""
from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from app.api.mp.security import current_principal, login_required
from app.api.schemas import ApiErrorSchema
from app.extensions import runtime
from app.identifiers import WholeText
from app.services.people import mp_auth

blp = Blueprint("mp_auth", __name__, url_prefix="/api/mp/v1/auth", description="Mini-program login")


# No control characters: a NUL cannot even be looked up in PostgreSQL.
_PRINTABLE = WholeText(r"[^\x00-\x1f\x7f]*", error="must not contain control characters")


class LoginSchema(Schema):
    clinic_code = fields.String(required=True, validate=[validate.Length(min=1, max=32), _PRINTABLE])
    channel = fields.String(required=True, validate=validate.OneOf(["wechat", "alipay"]))
    code = fields.String(required=True, validate=validate.Length(min=1, max=256))
    app_id = fields.String(validate=[validate.Length(min=1, max=64), _PRINTABLE],
                           metadata={"description": "the mini-program's own appid / Alipay app_id; required when the "
                                                    "clinic runs several apps on the channel (409 `app_id_required`), "
                                                    "and to sign in through the platform's app"})


class MpUserSchema(Schema):
    id = fields.Integer(required=True)
    channel = fields.String(required=True)
    openid = fields.String(required=True)


class LoginResultSchema(Schema):
    token = fields.String(required=True)
    expires_in = fields.Integer(required=True)
    user = fields.Nested(MpUserSchema, required=True)


LOGIN_EXAMPLE = {"clinic_code": "demo", "channel": "wechat", "code": "061Xyz0w3kVbD83Ab1Bw3C3s9S2Xyz0p"}


@blp.route("/login", methods=["POST"])
@blp.arguments(LoginSchema, example=LOGIN_EXAMPLE)
@blp.response(200, LoginResultSchema)
@blp.alt_response(401, schema=ApiErrorSchema, description="The channel refused the login code")
@blp.alt_response(404, schema=ApiErrorSchema, description="Unknown clinic, or no such app of it")
@blp.alt_response(409, schema=ApiErrorSchema,
                  description="`clinic_inactive`, or `app_id_required` (the clinic runs several apps on the channel)")
@blp.alt_response(422, schema=ApiErrorSchema, description="Invalid body, or `channel_not_enabled`")
@blp.alt_response(503, schema=ApiErrorSchema, description="`channel_unavailable`: the channel did not answer")
def login(body):
    """Exchange a wx.login / my.getAuthCode code for our session token."""
    session = mp_auth.login(runtime(), body["clinic_code"], body["channel"], body["code"], body.get("app_id"))
    return {"token": session.token, "expires_in": session.expires_in,
            "user": {"id": session.user_id, "channel": session.channel, "openid": session.openid}}


@blp.route("/logout", methods=["POST"])
@login_required
@blp.doc(security=[{"bearer": []}])
@blp.response(204)
@blp.alt_response(401, schema=ApiErrorSchema,
                  description="Missing, invalid or expired token, or `token_revoked` (already logged out)")
def logout():
    """End the session: every token of this user stops working until the next login."""
    mp_auth.logout(runtime(), current_principal())
