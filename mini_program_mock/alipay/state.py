"""The sandbox Alipay's parts as one object on the Flask app, and the context a gateway method runs in."""
from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from ..merchants import Merchants
from ..notifier import Notifier
from ..world import World
from .accounts import AlipayAccounts
from .ledger import AlipayLedger

EXTENSION_KEY = "sandbox_alipay"


@dataclass
class AlipaySandbox:
    world: World
    merchants: Merchants
    notifier: Notifier
    ledger: AlipayLedger
    accounts: AlipayAccounts

    def merchant(self, app_id: str | None) -> dict | None:
        return self.merchants.get("alipay", app_id) if app_id else None


@dataclass
class GatewayCall:
    """One authenticated gateway request: the app's merchant record, top-level params and parsed biz_content."""
    sandbox: AlipaySandbox
    merchant: dict
    params: dict[str, str]
    biz: dict

    @property
    def app_id(self) -> str:
        return self.merchant["app_id"]


def current_alipay() -> AlipaySandbox:
    return current_app.extensions[EXTENSION_KEY]
