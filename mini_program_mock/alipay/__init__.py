"""The sandbox Alipay open platform: gateway, async notifications, bill files and its /sandbox/ controls.

Speaks PROTOCOLS.md so that python-alipay-sdk talks to it unchanged with
`ali._gateway = "<sandbox>/alipay/gateway.do"`.
"""
from __future__ import annotations

from flask import Flask

from . import bills, control, gateway
from .accounts import AlipayAccounts
from .ledger import AlipayLedger
from .state import EXTENSION_KEY, AlipaySandbox


def register(app: Flask) -> None:
    world = app.extensions["sandbox_world"]
    app.extensions[EXTENSION_KEY] = AlipaySandbox(
        world=world,
        merchants=app.extensions["sandbox_merchants"],
        notifier=app.extensions["sandbox_notifier"],
        ledger=AlipayLedger(world),
        accounts=AlipayAccounts(world),
    )
    app.register_blueprint(gateway.bp)
    app.register_blueprint(bills.bp)
    app.register_blueprint(control.bp)
