"""The WeChat access token (`GET /wxlogin/cgi-bin/token`) and its control routes.

`GET cgi-bin/token?grant_type=client_credential&appid=&secret=` -> `{access_token, expires_in: 7200}` or
`{errcode, errmsg}`: 41002 appid missing, 41004 secret missing, 40002 invalid grant_type, 40013 invalid
appid, 40125 invalid appsecret. As on WeChat, fetching a token supersedes the app's previous one, which
stays valid 5 minutes more; a token expires 7200 s after issue (both on the sandbox clock).

A call presenting a token gets 41001 without one, 40001 for a token that is unknown, superseded past
its grace or expired through the control route, and 42001 for one past its 7200 s. wechatpy answers
40001/42001 by fetching a new token and retrying once.

Control: `POST /sandbox/wechat/tokens/expire {appid}` -> `{appid, expired}`: every live token of the app
answers 40001 from its next use; `GET /sandbox/wechat/tokens?appid=` -> `{appid, issued, live}` (tokens
issued so far, and those still accepted), so tests can prove the platform caches its token.
Tokens are never written to the request log.
"""
from __future__ import annotations

import secrets

from flask import Blueprint, Flask, current_app, jsonify, request

from ..world import World, current_world

TOKEN_TTL_S = 7200
SUPERSEDED_GRACE_S = 300

SCHEMA = """
CREATE TABLE IF NOT EXISTS wx_access_tokens (
    token TEXT PRIMARY KEY,
    appid TEXT NOT NULL,
    issued_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    superseded_at REAL,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS ix_wx_access_tokens_appid ON wx_access_tokens(appid);
"""

api_bp = Blueprint("sandbox_wx_token", __name__, url_prefix="/wxlogin")
control_bp = Blueprint("sandbox_wx_token_control", __name__, url_prefix="/sandbox/wechat")

# A token still accepted at :now (named parameters :now and :grace).
_LIVE = "revoked = 0 AND expires_at > :now AND (superseded_at IS NULL OR superseded_at + :grace > :now)"


class TokenRefused(Exception):
    def __init__(self, errcode: int, errmsg: str):
        super().__init__(errmsg)
        self.errcode, self.errmsg = errcode, errmsg


def _merchant(appid: str) -> dict | None:
    return current_app.extensions["sandbox_merchants"].get("wechat", appid) if appid else None


def _check_fetch(appid: str, secret: str, grant_type: str) -> None:
    if not appid:
        raise TokenRefused(41002, "appid missing")
    if grant_type != "client_credential":
        raise TokenRefused(40002, "invalid grant_type")
    if not secret:
        raise TokenRefused(41004, "appsecret missing")
    app = _merchant(appid)
    if app is None:
        raise TokenRefused(40013, "invalid appid")
    if not secrets.compare_digest(secret.encode("utf-8"), app["app_secret"].encode("utf-8")):
        raise TokenRefused(40125, "invalid appsecret")


def _issue(world: World, appid: str) -> str:
    # Real tokens are 136+ characters of [A-Za-z0-9_-]; callers must not assume a length.
    token = secrets.token_urlsafe(102)
    now = world.now().timestamp()
    with world.tx() as conn:
        conn.execute("UPDATE wx_access_tokens SET superseded_at = ? WHERE appid = ? AND superseded_at IS NULL",
                     (now, appid))
        conn.execute("INSERT INTO wx_access_tokens(token, appid, issued_at, expires_at) VALUES (?, ?, ?, ?)",
                     (token, appid, now, now + TOKEN_TTL_S))
    return token


def app_of_token(world: World, token: str | None) -> str:
    """The appid a token was issued to, or TokenRefused with WeChat's errcode."""
    if not token:
        raise TokenRefused(41001, "access_token missing")
    row = world.query_one("SELECT * FROM wx_access_tokens WHERE token = ?", (token,))
    now = world.now().timestamp()
    if row is None or row["revoked"] or (row["superseded_at"] is not None
                                         and row["superseded_at"] + SUPERSEDED_GRACE_S <= now):
        raise TokenRefused(40001, "invalid credential, access_token is invalid or not latest")
    if row["expires_at"] <= now:
        raise TokenRefused(42001, "access_token expired")
    return row["appid"]


@api_bp.get("/cgi-bin/token")
def fetch_token():
    args = request.args
    appid = args.get("appid", "")
    world = current_world()
    try:
        _check_fetch(appid, args.get("secret", ""), args.get("grant_type", ""))
    except TokenRefused as refused:
        world.log("wechat_token", appid=appid, errcode=refused.errcode)
        return jsonify(errcode=refused.errcode, errmsg=refused.errmsg)
    token = _issue(world, appid)
    world.log("wechat_token", appid=appid, errcode=0)
    return jsonify(access_token=token, expires_in=TOKEN_TTL_S)


def _control_app(appid: object):
    if not isinstance(appid, str) or not appid:
        return None, (jsonify(message="appid is required"), 422)
    if _merchant(appid) is None:
        return None, (jsonify(message=f"no sandbox WeChat app has appid {appid}"), 404)
    return appid, None


@control_bp.post("/tokens/expire")
def expire_tokens():
    body = request.get_json(silent=True)
    appid, refusal = _control_app(body.get("appid") if isinstance(body, dict) else None)
    if refusal:
        return refusal
    world = current_world()
    with world.tx() as conn:
        expired = conn.execute(f"UPDATE wx_access_tokens SET revoked = 1 WHERE appid = :appid AND {_LIVE}",
                               {"appid": appid, "now": world.now().timestamp(), "grace": SUPERSEDED_GRACE_S}).rowcount
    world.log("wechat_tokens_expired", appid=appid, expired=expired)
    return jsonify(appid=appid, expired=expired)


@control_bp.get("/tokens")
def token_counts():
    appid, refusal = _control_app(request.args.get("appid"))
    if refusal:
        return refusal
    world = current_world()
    params = {"appid": appid, "now": world.now().timestamp(), "grace": SUPERSEDED_GRACE_S}
    issued = world.query_one("SELECT COUNT(*) FROM wx_access_tokens WHERE appid = :appid", params)[0]
    live = world.query_one(f"SELECT COUNT(*) FROM wx_access_tokens WHERE appid = :appid AND {_LIVE}",
                           params)[0]
    return jsonify(appid=appid, issued=issued, live=live)


def register(app: Flask, world: World) -> None:
    world.execute_script(SCHEMA)
    app.register_blueprint(api_bp)
    app.register_blueprint(control_bp)
