"""The operator's routes: clinics, their HIS connection and its check, channel apps (a clinic's and the
platform's) and their checks. Operators only: admins run their clinics, not the platform."""
from __future__ import annotations

from flask_smorest import Blueprint

from admin_api.onboarding_schemas import (
    ChannelAppCreateSchema,
    ChannelAppPatchSchema,
    ChannelAppSchema,
    CheckResultSchema,
    ClinicCreateSchema,
    ClinicPatchSchema,
    ClinicSchema,
    HisConnectionSchema,
)
from admin_api.schemas import documented_errors
from admin_api.security import ADMIN_PREFIX, OPERATOR, current_staff, staff_required
from app.extensions import runtime
from app.idempotent import PARAMETER, answer_once
from app.services.clinics import app_checks, channel_apps, onboarding

blp = Blueprint("admin_onboarding", __name__, url_prefix=ADMIN_PREFIX,
                description="Clinics, their HIS and channel apps (operators)")


def _created_once(path: str, body: dict, schema, work):
    return answer_once(f"admin:{current_staff().user_id}:POST {path}", body, lambda: (201, schema.dump(work())))


@blp.route("/clinics", methods=["GET"])
@staff_required(OPERATOR)
@blp.response(200, ClinicSchema(many=True))
@documented_errors(blp)
def list_clinics():
    """Every clinic on the platform, with its HIS connection and how many channel apps it runs."""
    return onboarding.list_clinics(runtime())


CLINIC_CREATE_EXAMPLE = {"code": "east-branch", "name": "示例口腔东区门诊"}


@blp.route("/clinics", methods=["POST"])
@staff_required(OPERATOR)
@blp.doc(parameters=[PARAMETER])
@blp.arguments(ClinicCreateSchema, example=CLINIC_CREATE_EXAMPLE)
@blp.response(201, ClinicSchema)
@documented_errors(blp, 409, 422)
def create_clinic(body):
    """A new clinic (active, with no HIS or channel apps yet: it takes no money until they are set)."""
    return _created_once("/clinics", body, ClinicSchema(),
                         lambda: onboarding.create_clinic(runtime(), current_staff(), body["code"], body["name"]))


@blp.route("/clinics/<string:code>", methods=["GET"])
@staff_required(OPERATOR)
@blp.response(200, ClinicSchema)
@documented_errors(blp, 404)
def get_clinic(code):
    """One clinic."""
    return onboarding.get_clinic_view(runtime(), code)


CLINIC_PATCH_EXAMPLE = {"name": "示例口腔东区门诊", "active": False}


@blp.route("/clinics/<string:code>", methods=["PATCH"])
@staff_required(OPERATOR)
@blp.arguments(ClinicPatchSchema, example=CLINIC_PATCH_EXAMPLE)
@blp.response(200, ClinicSchema)
@documented_errors(blp, 404, 422)
def update_clinic(body, code):
    """Rename, deactivate (no new logins, orders or schedules; money in flight settles) or reactivate."""
    return onboarding.update_clinic(runtime(), current_staff(), code, name=body.get("name"),
                                    active=body.get("active"))


HIS_CONNECTION_EXAMPLE = {
    "base_url": "https://his.example-hospital.cn/api",
    "key_id": "his-east",
    "secret": "a-secret-of-at-least-16-characters",
}


@blp.route("/clinics/<string:code>/his", methods=["PUT"])
@staff_required(OPERATOR)
@blp.arguments(HisConnectionSchema, example=HIS_CONNECTION_EXAMPLE)
@blp.response(200, ClinicSchema)
@documented_errors(blp, 404, 409, 422)
def set_his(body, code):
    """Connect the clinic's HIS: its API root and the key pair both directions sign with (the secret is
    write-only). Check it afterwards."""
    return onboarding.set_his(runtime(), current_staff(), code, body["base_url"], body["key_id"], body["secret"])


@blp.route("/clinics/<string:code>/his/check", methods=["POST"])
@staff_required(OPERATOR)
@blp.response(200, CheckResultSchema)
@documented_errors(blp, 404)
def check_his(code):
    """A real signed call to the clinic's HIS: `ok`, or what is wrong (unreachable, refused key, not a HIS)."""
    return onboarding.check_his(runtime(), current_staff(), code)


@blp.route("/clinics/<string:code>/channel-apps", methods=["GET"])
@staff_required(OPERATOR)
@blp.response(200, ChannelAppSchema(many=True))
@documented_errors(blp, 404)
def list_clinic_apps(code):
    """The clinic's channel apps (several per channel when it runs several mini-programs)."""
    return channel_apps.list_apps(runtime(), code)


CHANNEL_APP_EXAMPLES = {
    "wechat": {"summary": "a WeChat mini-program with WeChat Pay", "value": {
        "channel": "wechat", "name": "东区微信小程序", "app_id": "wx1234567890abcdef", "mch_id": "1900000109",
        "api_key": "192006250b4c09247ec02edce69f6a2d", "app_secret": "0123456789abcdef0123456789abcdef",
        "sign_type": "HMAC-SHA256"}},
    "alipay": {"summary": "an Alipay mini-program", "value": {
        "channel": "alipay", "name": "东区支付宝小程序", "app_id": "2021000000000001",
        "app_private_key": "-----BEGIN RSA PRIVATE KEY-----\n...\n-----END RSA PRIVATE KEY-----",
        "alipay_public_key": "-----BEGIN PUBLIC KEY-----\n...\n-----END PUBLIC KEY-----"}},
}


@blp.route("/clinics/<string:code>/channel-apps", methods=["POST"])
@staff_required(OPERATOR)
@blp.doc(parameters=[PARAMETER])
@blp.arguments(ChannelAppCreateSchema, examples=CHANNEL_APP_EXAMPLES)
@blp.response(201, ChannelAppSchema)
@documented_errors(blp, 404, 409, 422)
def create_clinic_app(body, code):
    """A new channel app of the clinic; secrets are encrypted at rest and never shown again."""
    return _created_once(f"/clinics/{code}/channel-apps", body, ChannelAppSchema(),
                         lambda: channel_apps.create_app(runtime(), current_staff(), code, body))


@blp.route("/platform/channel-apps", methods=["GET"])
@staff_required(OPERATOR)
@blp.response(200, ChannelAppSchema(many=True))
@documented_errors(blp)
def list_platform_apps():
    """The platform's own channel apps, which collect platform-collected items of every clinic."""
    return channel_apps.list_apps(runtime(), None)


@blp.route("/platform/channel-apps", methods=["POST"])
@staff_required(OPERATOR)
@blp.doc(parameters=[PARAMETER])
@blp.arguments(ChannelAppCreateSchema, examples=CHANNEL_APP_EXAMPLES)
@blp.response(201, ChannelAppSchema)
@documented_errors(blp, 409, 422)
def create_platform_app(body):
    """A new channel app of the platform (its notifications arrive under /notify/…/platform)."""
    return _created_once("/platform/channel-apps", body, ChannelAppSchema(),
                         lambda: channel_apps.create_app(runtime(), current_staff(), None, body))


@blp.route("/channel-apps/<int:app_id>", methods=["GET"])
@staff_required(OPERATOR)
@blp.response(200, ChannelAppSchema)
@documented_errors(blp, 404)
def get_app(app_id):
    """One channel app."""
    return channel_apps.get_app(runtime(), app_id)


CHANNEL_APP_PATCH_EXAMPLES = {
    "rotate_key": {
        "summary": "a new API key (the old one still verifies notifications for a grace period)",
        "value": {"api_key": "192006250b4c09247ec02edce69f6a2d"},
    },
    "deactivate": {"summary": "stop using the app", "value": {"active": False}},
}


@blp.route("/channel-apps/<int:app_id>", methods=["PATCH"])
@staff_required(OPERATOR)
@blp.arguments(ChannelAppPatchSchema, examples=CHANNEL_APP_PATCH_EXAMPLES)
@blp.response(200, ChannelAppSchema)
@documented_errors(blp, 404, 422)
def update_app(body, app_id):
    """Change an app (not its channel or app_id). A new API key or Alipay public key is used at once; the old
    one still verifies notifications for HPAY_KEY_ROTATION_GRACE_S."""
    return channel_apps.update_app(runtime(), current_staff(), app_id, body)


@blp.route("/channel-apps/<int:app_id>/check", methods=["POST"])
@staff_required(OPERATOR)
@blp.response(200, CheckResultSchema)
@documented_errors(blp, 404)
def check_app(app_id):
    """A signed call to the channel (the query of an order that cannot exist): `ok`, or which key is wrong."""
    return app_checks.check_app(runtime(), current_staff(), app_id)
