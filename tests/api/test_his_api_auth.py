"""The HIS API's HMAC authentication and the idempotency of window refunds (`request_no`).

Against the running platform over HTTP, with a card that holds refundable top-ups, so every refused
request is one that would otherwise have taken money off the card.
"""
from __future__ import annotations

import json
import secrets
import threading
import time

import pytest
import requests
from sqlalchemy import func, select

from app.db.models import RefundRequest
from tests.e2e.helpers import wait_until
from tests.e2e.refund_helpers import (
    card_orders_locked,
    card_with_topups,
    his_balance,
    his_records,
    his_signed_post,
    wait_settled,
)
from tests.his_auth import his_headers

PATH = "/api/his/v1/refunds"


@pytest.fixture(scope="module")
def topped_up_card(platform, sandbox):
    card, _clients = card_with_topups(platform, sandbox, wechat=[3000], alipay=[])
    return card["card_no"]


@pytest.fixture(scope="module")
def his_key(sandbox):
    return sandbox.merchants()["his"][0]


def _headers(key_id: str, secret: str, timestamp: int, method: str, path: str, raw: bytes) -> dict:
    return {"Content-Type": "application/json", **his_headers(key_id, secret, method, path, raw, timestamp=timestamp)}


def _requests_with(rt, request_no: str) -> int:
    with rt.db.session() as session:
        return session.scalar(select(func.count(RefundRequest.id)).where(
            RefundRequest.external_request_no == request_no))


def _forgeries(key: dict, raw: bytes):
    now = int(time.time())
    other = raw.replace(b'"amount_fen": 1000', b'"amount_fen": 2000')
    assert other != raw
    signed = _headers(key["key_id"], key["secret"], now, "POST", PATH, raw)
    return {
        "wrong secret": (raw, _headers(key["key_id"], "not-the-secret", now, "POST", PATH, raw)),
        "body changed after signing": (other, signed),
        "signed for another path": (raw, _headers(key["key_id"], key["secret"], now, "POST", PATH + "x", raw)),
        "stale timestamp": (raw, _headers(key["key_id"], key["secret"], now - 301, "POST", PATH, raw)),
        "timestamp from the future": (raw, _headers(key["key_id"], key["secret"], now + 60, "POST", PATH, raw)),
        "unknown key id": (raw, _headers("his-unknown", key["secret"], now, "POST", PATH, raw)),
        "no signature": (raw, {k: v for k, v in signed.items() if k != "X-HIS-Signature"}),
        "no nonce": (raw, {k: v for k, v in signed.items() if k != "X-HIS-Nonce"}),
        "nonce changed after signing": (raw, {**signed, "X-HIS-Nonce": "another-nonce-0123456789"}),
        "timestamp not a number": (raw, {**signed, "X-HIS-Timestamp": "yesterday"}),
    }


@pytest.mark.parametrize("forgery", ["wrong secret", "body changed after signing", "signed for another path",
                                     "stale timestamp", "timestamp from the future", "unknown key id",
                                     "no signature", "no nonce", "nonce changed after signing",
                                     "timestamp not a number"])
def test_a_request_failing_the_signature_check_is_401_and_does_nothing(platform, sandbox, rt, topped_up_card,
                                                                      his_key, forgery):
    request_no = f"AUTH-{secrets.token_hex(4)}"
    raw = json.dumps({"card_no": topped_up_card, "amount_fen": 1000, "request_no": request_no}).encode()
    body, headers = _forgeries(his_key, raw)[forgery]
    balance = his_balance(sandbox, topped_up_card)

    resp = requests.post(f"{platform.url}{PATH}", data=body, headers=headers, timeout=30)

    assert resp.status_code == 401, resp.text
    assert resp.json()["error"] == "invalid_signature"
    assert _requests_with(rt, request_no) == 0
    assert his_balance(sandbox, topped_up_card) == balance


def test_the_reconciliation_read_needs_a_signature_too(platform, his_key):
    path = "/api/his/v1/reconciliation/2024-03-01"
    now = int(time.time())
    forged = requests.get(f"{platform.url}{path}", timeout=30,
                          headers=_headers(his_key["key_id"], "not-the-secret", now, "GET", path, b""))
    assert forged.status_code == 401 and forged.json()["error"] == "invalid_signature"
    signed = requests.get(f"{platform.url}{path}", timeout=30,
                          headers=_headers(his_key["key_id"], his_key["secret"], now, "GET", path, b""))
    assert signed.status_code == 200 and signed.json()["date"] == "2024-03-01"


def test_a_request_no_names_one_refund_whatever_is_sent_again(platform, sandbox, rt, topped_up_card):
    request_no = f"IDEM-{secrets.token_hex(4)}"
    body = {"card_no": topped_up_card, "amount_fen": 500, "request_no": request_no}
    first = his_signed_post(platform, sandbox, PATH, body)
    assert first.status_code == 201, first.text
    refund_request_no = first.json()["refund_request_no"]
    assert first.json()["request_no"] == request_no

    again = his_signed_post(platform, sandbox, PATH, body)
    assert again.status_code == 201 and again.json()["refund_request_no"] == refund_request_no

    for changed in ({**body, "amount_fen": 501}, {**body, "card_no": "D0000001"}):
        reused = his_signed_post(platform, sandbox, PATH, changed)
        assert reused.status_code == 409, reused.text
        assert reused.json()["error"] == "idempotency_key_reused"
    assert _requests_with(rt, request_no) == 1
    assert wait_settled(rt, refund_request_no)["status"] == "succeeded"
    assert [(r["kind"], r["amount_fen"]) for r in his_records(sandbox, refund_request_no)] == [("refund_hold", 500)]


def test_the_same_request_sent_twice_at_once_makes_one_refund(platform, sandbox, rt, topped_up_card):
    """The HIS gave up waiting and sent the request again while the first was still being handled."""
    request_no = f"RETRY-{secrets.token_hex(4)}"
    body = {"card_no": topped_up_card, "amount_fen": 700, "request_no": request_no}
    answers: list[requests.Response] = []
    threads = [threading.Thread(target=lambda: answers.append(his_signed_post(platform, sandbox, PATH, body)))
               for _ in range(2)]
    with card_orders_locked(rt, topped_up_card) as waiting:
        for thread in threads:
            thread.start()
        wait_until(lambda: waiting() == 2, timeout=60, what="both requests at the card lock")
    for thread in threads:
        thread.join(60)

    assert [a.status_code for a in answers] == [201, 201], [a.text for a in answers]
    assert answers[0].json()["refund_request_no"] == answers[1].json()["refund_request_no"]
    assert _requests_with(rt, request_no) == 1
    refund_request_no = answers[0].json()["refund_request_no"]
    assert wait_settled(rt, refund_request_no)["status"] == "succeeded"
    assert [(r["kind"], r["amount_fen"]) for r in his_records(sandbox, refund_request_no)] == [("refund_hold", 700)]
