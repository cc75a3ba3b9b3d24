"""`/sandbox/…` routes standing in for the mini-program side of messages, and the delivered messages.

- POST /sandbox/wechat/subscriptions {appid, openid, template_ids[1-3], result: accept|reject|ban}
  -> 201 {appid, openid, subscriptions[]}: what wx.requestSubscribeMessage records
- GET  /sandbox/wechat/subscriptions?appid=&openid= -> {appid, openid, subscriptions[]}
- POST /sandbox/alipay/subscriptions {app_id, user_id, template_ids[1-3], result}
  -> 201 {app_id, user_id, open_id, subscriptions[]}: what my.requestSubscribeMessage records
- GET  /sandbox/alipay/subscriptions?app_id=&user_id= -> {app_id, user_id, open_id, subscriptions[]}
  (a subscription: {template_id, purpose, allowance, banned, last_result, updated_at})
- POST /sandbox/wechat/pages {appid, pages[]} and POST /sandbox/alipay/pages {app_id, pages[]} -> the app
  (the pages a message may open)
- GET  /sandbox/messages?channel=&app_id=&user=&limit= -> the delivered messages, newest last
"""
from __future__ import annotations

from flask import Blueprint, Flask, current_app, jsonify, request

from ..alipay.accounts import is_user_id
from ..alipay.state import current_alipay
from ..wechat.login import ensure_user, valid_openid
from ..world import World, current_world
from . import store
from .templates import template_of, valid_pages

MAX_TEMPLATES_PER_REQUEST = 3  # wx.requestSubscribeMessage and my.requestSubscribeMessage take at most 3

bp = Blueprint("sandbox_messages", __name__, url_prefix="/sandbox")

# channel -> (the app's id field in requests, the user's id field)
_FIELDS = {"wechat": ("appid", "openid"), "alipay": ("app_id", "user_id")}


def _bad(message: str, status: int = 422):
    return jsonify(message=message), status


def _app(channel: str, app_id: object) -> dict | None:
    if not isinstance(app_id, str) or not app_id:
        return None
    return current_app.extensions["sandbox_merchants"].get(channel, app_id)


def _standing(world: World, channel: str, app: dict, user_id: str) -> list[dict]:
    listed = store.subscriptions(world, channel, app[_FIELDS[channel][0]], user_id)
    return [{**s, "purpose": (template_of(app, s["template_id"]) or {}).get("purpose")} for s in listed]


def _user_problem(channel: str, user_id: object) -> str | None:
    if channel == "wechat":
        return None if valid_openid(user_id) else "openid must be a non-empty string of at most 128 characters"
    return None if is_user_id(user_id) else "user_id must be 16 digits starting with 2088"


def _view(world: World, channel: str, app: dict, user_id: str) -> dict:
    app_field, user_field = _FIELDS[channel]
    view = {app_field: app[app_field], user_field: user_id}
    if channel == "alipay":
        view["open_id"] = current_alipay().accounts.ensure_user(app["app_id"], user_id)["open_id"]
    return {**view, "subscriptions": _standing(world, channel, app, user_id)}


def _grant(channel: str):
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _bad("a JSON object is required")
    app_field, user_field = _FIELDS[channel]
    app = _app(channel, body.get(app_field))
    if app is None:
        return _bad(f"{app_field} must name a sandbox {channel} app", 404 if body.get(app_field) else 422)
    user_id, template_ids, result = body.get(user_field), body.get("template_ids"), body.get("result")
    problem = _user_problem(channel, user_id)
    if problem:
        return _bad(problem)
    if (not isinstance(template_ids, list) or not 0 < len(template_ids) <= MAX_TEMPLATES_PER_REQUEST
            or len(set(map(str, template_ids))) != len(template_ids)):
        return _bad(f"template_ids must list 1 to {MAX_TEMPLATES_PER_REQUEST} distinct template ids")
    unknown = [t for t in template_ids if template_of(app, t) is None]
    if unknown:
        return _bad(f"not templates of this app: {', '.join(map(str, unknown))}")
    if result not in store.RESULTS:
        return _bad(f"result must be one of {', '.join(store.RESULTS)}")
    world = current_world()
    if channel == "wechat":
        ensure_user(world, app["appid"], user_id)
    store.record_grant(world, channel, app[app_field], user_id, template_ids, result)
    world.log(f"{channel}_subscription", app_id=app[app_field], user=user_id, template_ids=template_ids,
              result=result)
    return jsonify(_view(world, channel, app, user_id)), 201


def _standing_of(channel: str):
    app_field, user_field = _FIELDS[channel]
    app = _app(channel, request.args.get(app_field))
    if app is None:
        return _bad(f"{app_field} must name a sandbox {channel} app", 404 if request.args.get(app_field) else 422)
    user_id = request.args.get(user_field)
    problem = _user_problem(channel, user_id)
    if problem:
        return _bad(problem)
    return jsonify(_view(current_world(), channel, app, user_id))


def _set_pages(channel: str):
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _bad("a JSON object is required")
    app_field = _FIELDS[channel][0]
    app = _app(channel, body.get(app_field))
    if app is None:
        return _bad(f"{app_field} must name a sandbox {channel} app", 404 if body.get(app_field) else 422)
    pages = valid_pages(body.get("pages"))
    if pages is None:
        return _bad("pages must list 1 to 50 distinct page paths such as pages/bills/index (no query)")
    updated = current_app.extensions["sandbox_merchants"].update(channel, app[app_field], {"pages": pages})
    return jsonify(updated)


@bp.post("/wechat/subscriptions")
def wechat_grant():
    return _grant("wechat")


@bp.get("/wechat/subscriptions")
def wechat_standing():
    return _standing_of("wechat")


@bp.post("/alipay/subscriptions")
def alipay_grant():
    return _grant("alipay")


@bp.get("/alipay/subscriptions")
def alipay_standing():
    return _standing_of("alipay")


@bp.post("/wechat/pages")
def wechat_pages():
    return _set_pages("wechat")


@bp.post("/alipay/pages")
def alipay_pages():
    return _set_pages("alipay")


@bp.get("/messages")
def messages():
    channel = request.args.get("channel") or None
    if channel is not None and channel not in _FIELDS:
        return _bad("channel must be wechat or alipay")
    limit = request.args.get("limit", default=200, type=int)
    return jsonify(store.delivered(current_world(), channel, request.args.get("app_id") or None,
                                   request.args.get("user") or None, max(1, min(limit, 2000))))


def register(app: Flask) -> None:
    app.extensions["sandbox_world"].execute_script(store.SCHEMA)
    app.register_blueprint(bp)
