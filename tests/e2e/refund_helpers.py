"""Cards with known top-ups for refund tests: a fresh HIS card, bound by a WeChat and an Alipay user."""
from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time

import requests

from tests.e2e.helpers import new_client


def fresh_card(sandbox, balance_fen: int = 0) -> dict:
    """A new HIS patient and card; returns {card_no, name, phone}."""
    name = "退款测试" + secrets.token_hex(2)
    phone = f"139{secrets.randbelow(10**8):08d}"
    card = requests.post(f"{sandbox.url}/sandbox/his/cards",
                         json={"name": name, "phone": phone, "balance_fen": balance_fen}, timeout=10).json()
    return {"card_no": card["card_no"], "name": name, "phone": phone}


def bind(client, card: dict) -> None:
    patient = client.call("POST", "/patients", json={"name": card["name"], "phone": card["phone"],
                                                     "relation": "self"})
    client.call("POST", f"/patients/{patient['id']}/cards", json={"card_no": card["card_no"]})


def topups(client, card_no: str, amounts: list[int]) -> list[dict]:
    done = []
    for amount in amounts:
        order = client.call("POST", "/orders", json={"type": "topup", "card_no": card_no, "amount_fen": amount,
                                                     "channel": client.channel})
        client.pay(order["order_no"])
        done.append(client.wait_for(order["order_no"], {"completed"}))
    return done


def card_with_topups(platform, sandbox, wechat: list[int], alipay: list[int], balance_fen: int = 0):
    card = fresh_card(sandbox, balance_fen)
    clients = {}
    for channel, amounts in (("wechat", wechat), ("alipay", alipay)):
        client = new_client(platform, sandbox, channel, f"refund-{card['card_no']}-{channel}")
        bind(client, card)
        topups(client, card["card_no"], amounts)
        clients[channel] = client
    return card, clients


def his_balance(sandbox, card_no: str) -> int:
    return requests.get(f"{sandbox.url}/sandbox/cards/{card_no}", timeout=10).json()["balance_fen"]


def his_signed_post(platform, sandbox, path: str, body: dict, secret: str | None = None,
                    timestamp: int | None = None) -> requests.Response:
    his = sandbox.merchants()["his"][0]
    raw = json.dumps(body).encode()
    ts = str(timestamp if timestamp is not None else int(time.time()))
    message = f"{ts}\nPOST\n{path}\n".encode() + raw
    signature = hmac.new((secret or his["secret"]).encode(), message, hashlib.sha256).hexdigest()
    return requests.post(f"{platform.url}{path}", data=raw, timeout=30,
                         headers={"Content-Type": "application/json", "X-HIS-Key-Id": his["key_id"],
                                  "X-HIS-Timestamp": ts, "X-HIS-Signature": signature})


def wait_refund(client, refund_request_no: str, statuses: set[str], timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        refund = client.call("GET", f"/refunds/{refund_request_no}")
        if refund["status"] in statuses:
            return refund
        if time.monotonic() > deadline:
            raise AssertionError(f"refund {refund_request_no} still {refund['status']}: {refund}")
        time.sleep(0.3)
