"""Sandbox merchant accounts and their keys, made on first start and kept in the ledger.

Demo keys only: they are generated per sandbox data directory, never committed,
and a production platform configuration never points at a sandbox.
"""
from __future__ import annotations

import json
import secrets

from Cryptodome.PublicKey import RSA

from .messages.templates import DEFAULT_PAGES, new_alipay_templates, new_wechat_templates
from .world import World

_SCHEMA = """
CREATE TABLE IF NOT EXISTS merchants (
    channel TEXT NOT NULL,
    account_id TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (channel, account_id)
);
"""


def _rsa_pair() -> tuple[str, str]:
    key = RSA.generate(2048)
    return key.export_key(pkcs=1).decode(), key.publickey().export_key().decode()


def new_wechat_merchant(sign_type: str = "MD5", clinic_code: str = "demo") -> dict:
    suffix = secrets.token_hex(4)
    return {
        "clinic_code": clinic_code,
        "appid": f"wx{secrets.token_hex(8)}",
        "app_secret": secrets.token_hex(16),
        "mch_id": str(1900000000 + int(suffix, 16) % 99999999),
        "api_key": secrets.token_hex(16),
        "sign_type": sign_type,
        "message_templates": new_wechat_templates(),
        "pages": list(DEFAULT_PAGES),
    }


def new_alipay_merchant(clinic_code: str = "demo") -> dict:
    app_private, app_public = _rsa_pair()
    alipay_private, alipay_public = _rsa_pair()
    return {
        "clinic_code": clinic_code,
        "app_id": f"2021{secrets.randbelow(10**12):012d}",
        "pid": f"2088{secrets.randbelow(10**12):012d}",
        "app_private_key": app_private,
        "app_public_key": app_public,
        "alipay_private_key": alipay_private,
        "alipay_public_key": alipay_public,
        "message_templates": new_alipay_templates(),
        "pages": list(DEFAULT_PAGES),
    }


def new_his_account() -> dict:
    return {"key_id": f"his-{secrets.token_hex(4)}", "secret": secrets.token_hex(32)}


class Merchants:
    """WeChat merchants keyed by appid, Alipay apps keyed by app_id, HIS API keys keyed by key_id, SMS provider
    accounts keyed by app_key (the demo one is added by the sms module)."""

    def __init__(self, world: World):
        self.world = world
        world.execute_script(_SCHEMA)
        if not world.query_one("SELECT 1 FROM merchants LIMIT 1"):
            self.add("wechat", new_wechat_merchant("MD5"))
            self.add("alipay", new_alipay_merchant())
            self.add("his", new_his_account())
        self._give_apps_message_templates()

    _TEMPLATE_MAKERS = {"wechat": new_wechat_templates, "alipay": new_alipay_templates}

    def _give_apps_message_templates(self) -> None:
        """Apps of a data directory made before message templates existed get theirs on start-up, once."""
        for channel, make in self._TEMPLATE_MAKERS.items():
            for app in self.all(channel):
                if "message_templates" not in app:
                    self.update(channel, self._account_id(channel, app),
                                {"message_templates": make(), "pages": app.get("pages", list(DEFAULT_PAGES))})

    _ID_FIELD = {"wechat": "appid", "alipay": "app_id", "his": "key_id", "sms": "app_key"}

    @classmethod
    def _account_id(cls, channel: str, data: dict) -> str:
        return data[cls._ID_FIELD[channel]]

    def add(self, channel: str, data: dict) -> dict:
        with self.world.tx() as conn:
            conn.execute("INSERT INTO merchants(channel, account_id, data) VALUES (?, ?, ?)",
                         (channel, self._account_id(channel, data), json.dumps(data)))
        return data

    def update(self, channel: str, account_id: str, changes: dict) -> dict | None:
        """Merge `changes` into the account's record; None when there is no such account."""
        with self.world.tx() as conn:
            row = conn.execute("SELECT data FROM merchants WHERE channel = ? AND account_id = ?",
                               (channel, account_id)).fetchone()
            if row is None:
                return None
            data = {**json.loads(row["data"]), **changes}
            conn.execute("UPDATE merchants SET data = ? WHERE channel = ? AND account_id = ?",
                         (json.dumps(data), channel, account_id))
        return data

    def all(self, channel: str) -> list[dict]:
        rows = self.world.query("SELECT data FROM merchants WHERE channel = ? ORDER BY rowid", (channel,))
        return [json.loads(r["data"]) for r in rows]

    def get(self, channel: str, account_id: str) -> dict | None:
        row = self.world.query_one("SELECT data FROM merchants WHERE channel = ? AND account_id = ?",
                                   (channel, account_id))
        return json.loads(row["data"]) if row else None

    def wechat_by_mch(self, mch_id: str) -> dict | None:
        return next((m for m in self.all("wechat") if m["mch_id"] == mch_id), None)

    def as_json(self) -> dict:
        return {"wechat": self.all("wechat"), "alipay": self.all("alipay"), "his": self.all("his"),
                "sms": self.all("sms")}
