"""The general /sandbox/ control API: merchants and keys, faults, clock, log."""
from __future__ import annotations

from flask import Blueprint, Flask, current_app, jsonify, request

from .merchants import new_alipay_merchant, new_his_account, new_wechat_merchant
from .messages.templates import valid_pages
from .sms import new_sms_account
from .world import DEFAULT_FAULTS, current_world

bp = Blueprint("sandbox_control", __name__, url_prefix="/sandbox")


def _bad(message: str, status: int = 422):
    return jsonify(message=message), status


@bp.get("/health")
def health():
    return jsonify(status="ok")


@bp.get("/merchants")
def list_merchants():
    return jsonify(current_app.extensions["sandbox_merchants"].as_json())


@bp.post("/merchants")
def add_merchant():
    """Create another sandbox account (a second clinic or app), returning all its keys.

    A WeChat or Alipay app gets its message templates, and `pages` (the pages a message may open) when
    given, else the default list.
    """
    body = request.get_json(silent=True) or {}
    channel = body.get("channel")
    clinic_code = str(body.get("clinic_code") or "demo")
    pages = None
    if channel in ("wechat", "alipay") and "pages" in body:
        pages = valid_pages(body["pages"])
        if pages is None:
            return _bad("pages must list 1 to 50 distinct page paths such as pages/bills/index (no query)")
    if channel == "wechat":
        sign_type = body.get("sign_type", "MD5")
        if sign_type not in ("MD5", "HMAC-SHA256"):
            return _bad("sign_type must be MD5 or HMAC-SHA256")
        data = new_wechat_merchant(sign_type, clinic_code)
    elif channel == "alipay":
        data = new_alipay_merchant(clinic_code)
    elif channel == "his":
        data = new_his_account()
    elif channel == "sms":
        data = new_sms_account()
    else:
        return _bad("channel must be wechat, alipay, his or sms")
    if pages is not None:
        data["pages"] = pages
    return jsonify(current_app.extensions["sandbox_merchants"].add(channel, data)), 201


@bp.get("/faults")
def get_faults():
    return jsonify(current_world().faults())


@bp.post("/faults")
def set_faults():
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _bad("a JSON object is required")
    unknown = set(body) - set(DEFAULT_FAULTS)
    if unknown:
        return _bad(f"unknown fault fields: {', '.join(sorted(unknown))}")
    for key, value in body.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
            return _bad(f"{key} must be a non-negative number")
        if key.endswith("_rate") and value > 1:
            return _bad(f"{key} must be between 0 and 1")
    return jsonify(current_world().set_faults(body))


@bp.delete("/faults")
def clear_faults():
    return jsonify(current_world().clear_faults())


@bp.get("/clock")
def get_clock():
    world = current_world()
    return jsonify(offset_s=world.clock_offset_s(), now=world.now_shanghai().isoformat(),
                   time_scale=world.time_scale)


@bp.post("/clock")
def set_clock():
    body = request.get_json(silent=True) or {}
    world = current_world()
    if "offset_s" in body:
        if not isinstance(body["offset_s"], (int, float)) or isinstance(body["offset_s"], bool):
            return _bad("offset_s must be a number of seconds")
        world.set_setting("clock_offset_s", float(body["offset_s"]))
    if "time_scale" in body:
        scale = body["time_scale"]
        if not isinstance(scale, (int, float)) or isinstance(scale, bool) or scale <= 0:
            return _bad("time_scale must be a positive number")
        world.time_scale = float(scale)
    return get_clock()


@bp.get("/log")
def recent_log():
    limit = request.args.get("limit", default=200, type=int)
    return jsonify(current_world().recent_log(max(1, min(limit, 2000))))


def register(app: Flask) -> None:
    app.register_blueprint(bp)
