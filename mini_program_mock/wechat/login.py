"""The WeChat mini-program login service (code2session) and the control route standing in for wx.login.

A code is issued for one appid, works once and expires after 5 minutes on the sandbox
clock. Errors never use 40001/40014/42001: wechatpy would take those as an expired
access token and retry against WeChat's real host.
"""
from __future__ import annotations

import base64
import secrets

from flask import Blueprint, Flask, current_app, jsonify, request

from ..world import World, current_world
from . import wire

CODE_TTL_S = 300
MAX_OPENID_LEN = 128

SCHEMA = """
CREATE TABLE IF NOT EXISTS wx_users (
    appid TEXT NOT NULL,
    openid TEXT NOT NULL,
    unionid TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (appid, openid)
);
CREATE TABLE IF NOT EXISTS wx_login_codes (
    code TEXT PRIMARY KEY,
    appid TEXT NOT NULL,
    openid TEXT NOT NULL,
    issued_at REAL NOT NULL,
    used_at REAL
);
"""

login_bp = Blueprint("sandbox_wxlogin", __name__, url_prefix="/wxlogin")
codes_bp = Blueprint("sandbox_wechat_codes", __name__, url_prefix="/sandbox/wechat")


def _error(errcode: int, errmsg: str):
    return jsonify(errcode=errcode, errmsg=errmsg)


def valid_openid(openid: object) -> bool:
    return isinstance(openid, str) and 0 < len(openid) <= MAX_OPENID_LEN


def is_user(world: World, appid: str, openid: str) -> bool:
    return world.query_one("SELECT 1 FROM wx_users WHERE appid = ? AND openid = ?", (appid, openid)) is not None


def _new_openid() -> str:
    return "o" + wire.nonce(27)


def ensure_user(world: World, appid: str, openid: str) -> None:
    """The user exists for this app from the first time the mini-program sees them."""
    with world.tx() as conn:
        conn.execute("INSERT OR IGNORE INTO wx_users(appid, openid, unionid, created_at) VALUES (?, ?, ?, ?)",
                      (appid, openid, "o" + wire.nonce(27), world.now().timestamp()))


@codes_bp.post("/codes")
def issue_code():
    """`{"appid", "openid"?}` -> `{"code", "openid"}`: what wx.login() gives the mini-program."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return jsonify(message="a JSON object with appid is required"), 422
    appid, openid = body.get("appid"), body.get("openid")
    if not isinstance(appid, str) or not appid:
        return jsonify(message="appid is required"), 422
    if openid is not None and not valid_openid(openid):
        return jsonify(message=f"openid must be a non-empty string of at most {MAX_OPENID_LEN} characters"), 422
    if current_app.extensions["sandbox_merchants"].get("wechat", appid) is None:
        return jsonify(message=f"no sandbox WeChat app has appid {appid}"), 404
    world = current_world()
    openid = openid or _new_openid()
    ensure_user(world, appid, openid)
    code = wire.nonce(32)
    with world.tx() as conn:
        conn.execute("INSERT INTO wx_login_codes(code, appid, openid, issued_at) VALUES (?, ?, ?, ?)",
                     (code, appid, openid, world.now().timestamp()))
    world.log("wechat_login_code_issued", appid=appid, openid=openid)
    return jsonify(code=code, openid=openid), 201


@login_bp.get("/sns/jscode2session")
def code_to_session():
    args = request.args
    appid, secret, js_code = args.get("appid", ""), args.get("secret", ""), args.get("js_code", "")
    world = current_world()
    reply = _check_session_request(world, appid, secret, js_code, args.get("grant_type", ""))
    payload = reply.get_json()
    world.log("wechat_login", appid=appid, errcode=payload.get("errcode", 0), openid=payload.get("openid"))
    return reply


def _check_session_request(world: World, appid: str, secret: str, js_code: str, grant_type: str):
    if not appid:
        return _error(41002, "appid missing")
    if not secret:
        return _error(41004, "appsecret missing")
    if not js_code:
        return _error(41008, "missing code")
    if grant_type != "authorization_code":
        return _error(40002, "invalid grant_type")
    app = current_app.extensions["sandbox_merchants"].get("wechat", appid)
    if app is None:
        return _error(40013, "invalid appid")
    if not secrets.compare_digest(secret.encode("utf-8"), app["app_secret"].encode("utf-8")):
        return _error(40125, "invalid appsecret")
    now = world.now().timestamp()
    with world.tx() as conn:
        claimed = conn.execute(
            "UPDATE wx_login_codes SET used_at = ? WHERE code = ? AND appid = ? AND used_at IS NULL"
            " AND issued_at > ?", (now, js_code, appid, now - CODE_TTL_S),
        ).rowcount
        row = conn.execute("SELECT openid FROM wx_login_codes WHERE code = ?", (js_code,)).fetchone()
    if not claimed:
        return _error(40029, "invalid code")
    user = world.query_one("SELECT unionid FROM wx_users WHERE appid = ? AND openid = ?", (appid, row["openid"]))
    session_key = base64.b64encode(secrets.token_bytes(16)).decode("ascii")
    return jsonify(openid=row["openid"], session_key=session_key, unionid=user["unionid"])


def register(app: Flask, world: World) -> None:
    world.execute_script(SCHEMA)
    app.register_blueprint(login_bp)
    app.register_blueprint(codes_bp)
