"""Sandbox WeChat: the api.weixin.qq.com host under /wxlogin/ (code2session, access tokens, subscribe
messages), Pay v2 under /wxpay/, control under /sandbox/wechat/.

Speaks the wire protocols of PROTOCOLS.md so that wechatpy's real clients talk to it unchanged.
"""
from __future__ import annotations

from flask import Flask

from . import ledger, login, pay_api, sandbox_routes, subscribe, tokens
from .notifications import RefundSettler


def register(app: Flask) -> None:
    world = app.extensions["sandbox_world"]
    ledger.install(world)
    login.register(app, world)
    tokens.register(app, world)
    subscribe.register(app)
    app.register_blueprint(pay_api.bp)
    app.register_blueprint(sandbox_routes.bp)
    settler = RefundSettler(world, app.extensions["sandbox_merchants"], app.extensions["sandbox_notifier"])
    app.extensions["sandbox_wechat_settler"] = settler
    settler.start()
