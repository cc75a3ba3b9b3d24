"""The sandbox SMS provider over raw HTTP: signed requests only, its inboxes, throttling, out_id replays."""
from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time

import pytest
import requests


def _phone() -> str:
    return f"16{secrets.randbelow(10**9):09d}"


def _demo(sandbox) -> dict:
    return sandbox.merchants()["sms"][0]


def _send(sandbox, account: dict, body: dict, *, secret: str | None = None, timestamp: int | None = None,
          nonce: str | None = None) -> requests.Response:
    raw = json.dumps(body, ensure_ascii=False).encode()
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or secrets.token_hex(16)
    message = f"{account['app_key']}\n{ts}\n{nonce}\n".encode() + raw
    signature = hmac.new((secret or account["secret"]).encode(), message, hashlib.sha256).hexdigest()
    return requests.post(f"{sandbox.url}/sms/v1/send", data=raw, timeout=5, headers={
        "Content-Type": "application/json", "X-Sms-App-Key": account["app_key"], "X-Sms-Timestamp": ts,
        "X-Sms-Nonce": nonce, "X-Sms-Signature": signature})


def _body(account: dict, phone: str, code: str = "123456", **extra) -> dict:
    return {"phone": phone, "sign_name": account["sign_name"], "template_code": account["template_code"],
            "params": {"code": code}, **extra}


def _inbox(sandbox, phone: str) -> list[dict]:
    return requests.get(f"{sandbox.url}/sandbox/sms", params={"phone": phone}, timeout=5).json()


def test_the_demo_account_is_published_with_the_platforms_development_keys(sandbox):
    from config.settings import SANDBOX_SMS_APP_KEY, SANDBOX_SMS_SECRET, DevelopmentSettings

    account = _demo(sandbox)
    assert (account["app_key"], account["secret"]) == (SANDBOX_SMS_APP_KEY, SANDBOX_SMS_SECRET)
    defaults = DevelopmentSettings()
    assert (account["sign_name"], account["template_code"]) == (defaults.SMS_SIGN_NAME, defaults.SMS_TEMPLATE_CODE)


def test_a_signed_send_lands_in_the_phones_inbox_newest_last(sandbox):
    account, phone = _demo(sandbox), _phone()
    first = _send(sandbox, account, _body(account, phone, "111111"))
    second = _send(sandbox, account, _body(account, phone, "222222"))
    assert first.status_code == second.status_code == 200
    assert first.json()["code"] == "OK" and first.json()["request_id"] != second.json()["request_id"]
    inbox = _inbox(sandbox, phone)
    assert [m["request_id"] for m in inbox] == [first.json()["request_id"], second.json()["request_id"]]
    assert "222222" in inbox[-1]["text"] and account["sign_name"] in inbox[-1]["text"]
    assert inbox[-1]["params"] == {"code": "222222"}
    assert _inbox(sandbox, _phone()) == []


def test_the_senders_reference_is_kept_with_the_text(sandbox):
    account, phone = _demo(sandbox), _phone()
    sent = _send(sandbox, account, _body(account, phone, out_id="card-verification-7"))
    [text] = _inbox(sandbox, phone)
    assert (text["request_id"], text["out_id"]) == (sent.json()["request_id"], "card-verification-7")


@pytest.mark.parametrize("change, code", [
    ({"secret": "not-the-secret"}, "SIGNATURE_INVALID"),
    ({"timestamp": 1_000_000_000}, "TIMESTAMP_EXPIRED"),
    ({"nonce": "short"}, "NONCE_REUSED"),
])
def test_a_badly_signed_request_is_refused(sandbox, change, code):
    account, phone = _demo(sandbox), _phone()
    resp = _send(sandbox, account, _body(account, phone), **change)
    assert resp.status_code == 401 and resp.json()["code"] == code
    assert _inbox(sandbox, phone) == []


def test_an_unknown_key_and_a_reused_nonce_are_refused(sandbox):
    account, phone = _demo(sandbox), _phone()
    stranger = {**account, "app_key": "nobody"}
    assert _send(sandbox, stranger, _body(account, phone)).json()["code"] == "APP_KEY_UNKNOWN"
    nonce = secrets.token_hex(16)
    assert _send(sandbox, account, _body(account, phone), nonce=nonce).status_code == 200
    replay = _send(sandbox, account, _body(account, phone), nonce=nonce)
    assert replay.status_code == 401 and replay.json()["code"] == "NONCE_REUSED"
    assert len(_inbox(sandbox, phone)) == 1


def test_another_account_signs_with_its_own_keys(sandbox):
    made = requests.post(f"{sandbox.url}/sandbox/merchants", json={"channel": "sms"}, timeout=5)
    assert made.status_code == 201
    account, phone = made.json(), _phone()
    assert account in sandbox.merchants()["sms"]
    assert _send(sandbox, account, _body(account, phone)).status_code == 200
    assert _send(sandbox, account, _body(account, phone), secret=_demo(sandbox)["secret"]).status_code == 401


@pytest.mark.parametrize("change, code", [
    ({"phone": "12345"}, "PHONE_INVALID"),
    ({"template_code": "SMS_OTHER"}, "TEMPLATE_UNKNOWN"),
    ({"sign_name": "别的签名"}, "SIGN_NAME_UNKNOWN"),
    ({"params": {"code": "12"}}, "PARAMS_INVALID"),
    ({"params": {"code": "123456", "link": "http://x"}}, "PARAMS_INVALID"),
])
def test_an_invalid_text_is_refused(sandbox, change, code):
    account, phone = _demo(sandbox), _phone()
    resp = _send(sandbox, account, {**_body(account, phone), **change})
    assert resp.status_code == 400 and resp.json()["code"] == code
    assert _inbox(sandbox, phone) == []


def test_a_throttled_phone_gets_no_text_until_the_throttle_is_lifted(sandbox):
    account, phone = _demo(sandbox), _phone()
    set_ = requests.post(f"{sandbox.url}/sandbox/sms/throttle", json={"phone": phone, "seconds": 30}, timeout=5)
    assert set_.status_code == 200
    try:
        refused = _send(sandbox, account, _body(account, phone))
        assert refused.status_code == 429 and refused.json()["code"] == "PHONE_THROTTLED"
        assert 25 <= refused.json()["retry_after_s"] <= 30
        assert _send(sandbox, account, _body(account, _phone())).status_code == 200  # other phones are fine
    finally:
        requests.delete(f"{sandbox.url}/sandbox/sms/throttle", timeout=5).raise_for_status()
    assert _send(sandbox, account, _body(account, phone)).status_code == 200
    assert len(_inbox(sandbox, phone)) == 1
    for bad in ({"phone": "x", "seconds": 5}, {"phone": phone, "seconds": 0}, {"phone": phone, "seconds": True}):
        assert requests.post(f"{sandbox.url}/sandbox/sms/throttle", json=bad, timeout=5).status_code == 422
