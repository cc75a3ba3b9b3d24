"""The HIS announcing bills to the platform: `POST <events_url>` `{type, card_no, bill_id}`, HMAC-signed.

`type` is `bill_created` (a doctor opened an unpaid visit bill) or `bill_cancelled`. The request is
signed as the HIS signs every call to the platform (auth.signed_headers): headers
X-HIS-Key-Id, X-HIS-Timestamp, X-HIS-Nonce, X-HIS-Signature = hex HMAC-SHA256(secret, timestamp + "\\n"
+ nonce + "\\n" + "POST" + "\\n" + path + "\\n" + raw_body), path being the events URL's path (decoded)
plus "?query" when it has one. Each attempt is signed afresh (new timestamp and nonce).

Announcements are stored in the transaction that opens or cancels the bill, and sent by the world's
notifier thread, never holding up the answer: a 2xx answer is delivery; anything else (or no answer)
is retried after 5 s, 15 s, 1 min, 5 min and 15 min (times the world's time scale), then abandoned.
Every attempt is logged as `notify_attempt` with channel `his`. The notification faults
(`POST /sandbox/faults`: drop, duplicate, delay) apply to them as to the channels' notifications.

The events URL and the HIS key that signs (`key_id`, default: the first HIS account of
`GET /sandbox/merchants`) are kept in the world's settings: `POST /sandbox/his/events {url, key_id?}`,
`GET`, `DELETE`; or at start-up from SANDBOX_HIS_EVENTS_URL (and SANDBOX_HIS_EVENTS_KEY_ID). With no
URL configured nothing is announced (logged as `his_event_not_announced`).
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from urllib.parse import urlsplit

from ..merchants import Merchants
from ..notifier import Notifier
from ..world import World
from .auth import signed_headers
from .validation import HisRefusal

SETTING_KEY = "his_events"
EVENT_TYPES = ("bill_created", "bill_cancelled")
RETRY_SCHEDULE = [5, 15, 60, 300, 900]
MAX_URL_LEN = 2000
URL_ENV, KEY_ID_ENV = "SANDBOX_HIS_EVENTS_URL", "SANDBOX_HIS_EVENTS_KEY_ID"


def _valid_url(url: object) -> bool:
    if not isinstance(url, str) or len(url) > MAX_URL_LEN:
        return False
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname) and not parts.fragment


class HisEvents:
    def __init__(self, world: World, merchants: Merchants, notifier: Notifier):
        self.world, self.merchants, self.notifier = world, merchants, notifier
        notifier.register_signer("his", self._sign)

    def _account(self, key_id: str) -> dict | None:
        return self.merchants.get("his", key_id)

    def _sign(self, row: Mapping) -> dict:
        account = self._account(row["sign_with"])
        if account is None:
            raise LookupError(f"no HIS key {row['sign_with']}")
        return signed_headers(account["key_id"], account["secret"], "POST", row["url"], row["body"].encode("utf-8"))

    # --- configuration ---------------------------------------------------------------------------
    def config(self) -> dict:
        return self.world.get_setting(SETTING_KEY) or {"url": None, "key_id": None}

    def configure(self, url: object, key_id: object = None) -> dict:
        if not _valid_url(url):
            raise HisRefusal(422, "invalid_request", "url must be an http(s) URL such as "
                                                     "http://127.0.0.1:8000/api/his/v1/events")
        if key_id is None:
            accounts = self.merchants.all("his")
            key_id = accounts[0]["key_id"] if accounts else None
        if not isinstance(key_id, str) or self._account(key_id) is None:
            raise HisRefusal(422, "invalid_request", "key_id must be one of the HIS keys of GET /sandbox/merchants")
        config = {"url": url, "key_id": key_id}
        self.world.set_setting(SETTING_KEY, config)
        self.world.log("his_events_configured", **config)
        return config

    def clear(self) -> dict:
        self.world.set_setting(SETTING_KEY, None)
        return self.config()

    def configure_from_env(self) -> None:
        url = os.environ.get(URL_ENV)
        if url:
            try:
                self.configure(url, os.environ.get(KEY_ID_ENV) or None)
            except HisRefusal as refused:
                raise SystemExit(f"{URL_ENV} / {KEY_ID_ENV}: {refused.message}") from None

    # --- announcing ------------------------------------------------------------------------------
    def announce(self, event_type: str, card_no: str, bill_id: str) -> bool:
        """Queue the announcement (joining the caller's transaction, if any); False when no events URL is set."""
        config = self.config()
        if not config.get("url"):
            self.world.log("his_event_not_announced", type=event_type, card_no=card_no, bill_id=bill_id)
            return False
        body = json.dumps({"type": event_type, "card_no": card_no, "bill_id": bill_id}, separators=(",", ":"))
        self.notifier.enqueue(channel="his", kind=event_type, ref=bill_id, url=config["url"], body=body,
                              content_type="application/json", schedule=RETRY_SCHEDULE, sign_with=config["key_id"])
        return True
