"""WeChat mini-program subscribe messages: `POST /wxlogin/cgi-bin/message/subscribe/send?access_token=…`.

Body (JSON; wechatpy sends it without a Content-Type): `{touser, template_id, page?, data: {key: {value}},
miniprogram_state?: developer|trial|formal, lang?: zh_CN|en_US|zh_HK|zh_TW}` -> `{errcode: 0, errmsg: "ok",
msgid}`. Checked in this order, the first failure answering:
41001/40001/42001 the access token (tokens.py), 47001 a body that is not a JSON object, 40003 a touser
that is not a user of the app, 40037 a template_id not among the app's templates, 41030 a page not among
the app's pages, 47003 data breaking the template's keyword rules (messages/templates.py) or a bad
miniprogram_state/lang, 43101 no subscription left (each accept allows one message; messages/store.py).
A delivered message is listed by `GET /sandbox/messages`; every answer is logged as
`wechat_subscribe_send` with its errcode.
"""
from __future__ import annotations

import json
import secrets

from flask import Blueprint, Flask, current_app, jsonify, request

from ..messages import store
from ..messages.templates import page_allowed, template_of, wechat_data_problem
from ..world import World, current_world
from .login import is_user
from .tokens import TokenRefused, app_of_token

MINIPROGRAM_STATES = ("developer", "trial", "formal")
LANGS = ("zh_CN", "en_US", "zh_HK", "zh_TW")

bp = Blueprint("sandbox_wx_subscribe", __name__, url_prefix="/wxlogin")


class SendRefused(Exception):
    def __init__(self, errcode: int, errmsg: str):
        super().__init__(errmsg)
        self.errcode, self.errmsg = errcode, errmsg


def _body() -> dict:
    try:
        body = json.loads(request.get_data(cache=True) or b"")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise SendRefused(47001, "data format error")
    return body


def _check_options(body: dict) -> None:
    state, lang = body.get("miniprogram_state"), body.get("lang")
    if state is not None and state not in MINIPROGRAM_STATES:
        raise SendRefused(47003, "argument invalid! miniprogram_state must be developer, trial or formal")
    if lang is not None and lang not in LANGS:
        raise SendRefused(47003, "argument invalid! lang must be zh_CN, en_US, zh_HK or zh_TW")


def _send(world: World, body: dict, appid: str) -> dict:
    app = current_app.extensions["sandbox_merchants"].get("wechat", appid)
    touser = body.get("touser")
    if not isinstance(touser, str) or not touser or not is_user(world, appid, touser):
        raise SendRefused(40003, "invalid openid")
    template = template_of(app, body.get("template_id"))
    if template is None:
        raise SendRefused(40037, "invalid template_id")
    page = body.get("page")
    if page is not None and page != "" and not (isinstance(page, str) and page_allowed(app, page)):
        raise SendRefused(41030, "invalid page")
    problem = wechat_data_problem(template, body.get("data"))
    if problem:
        raise SendRefused(47003, problem)
    _check_options(body)
    msgid = 10**17 + secrets.randbelow(9 * 10**17)
    options = {k: body[k] for k in ("miniprogram_state", "lang") if body.get(k) is not None}
    try:
        store.deliver(world, channel="wechat", app_id=appid, user_id=touser, open_id=touser, template=template,
                      page=page or None, data=body["data"], msgid=str(msgid), extra=options)
    except store.NoAllowance:
        raise SendRefused(43101, "user refuse to accept the msg") from None
    return {"msgid": msgid}


@bp.post("/cgi-bin/message/subscribe/send")
def send_subscribe_message():
    world = current_world()
    appid = None
    try:
        appid = app_of_token(world, request.args.get("access_token"))
        answer = {"errcode": 0, "errmsg": "ok", **_send(world, _body(), appid)}
    except (TokenRefused, SendRefused) as refused:
        answer = {"errcode": refused.errcode, "errmsg": refused.errmsg}
    try:  # the log names the addressee even when the token was refused before the body was read
        body = _body()
    except SendRefused:
        body = {}
    world.log("wechat_subscribe_send", appid=appid, touser=body.get("touser"), template_id=body.get("template_id"),
              errcode=answer["errcode"], errmsg=answer["errmsg"], msgid=answer.get("msgid"))
    return jsonify(answer)


def register(app: Flask) -> None:
    app.register_blueprint(bp)
