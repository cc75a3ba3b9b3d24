"""Attacks on the HIS API's HMAC check and on the order of authentication and validation.

In process (the Flask test client over the session's PostgreSQL), so that what the platform logged
while refusing can be read: a refused request never logs a traceback.
"""
from __future__ import annotations

import json
import logging
import re
import secrets
import time
from datetime import timedelta

import pytest
import requests
from sqlalchemy import func, select, text

from app.db.models import HisApiNonce
from app.db.types import utcnow
from tests.his_auth import his_headers

RECONCILIATION = "/api/his/v1/reconciliation/2024-03-01"
REFUNDS = "/api/his/v1/refunds"


@pytest.fixture(scope="module")
def his_key(sandbox, demo_clinic):
    return sandbox.merchants()["his"][0]


def _signed(key: dict, method: str, path: str, body: bytes = b"", **options) -> dict:
    return {"Content-Type": "application/json", **his_headers(key["key_id"], key["secret"], method, path, body,
                                                              **options)}


def _no_traceback(caplog) -> None:
    assert [r.getMessage() for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR] == []


@pytest.mark.parametrize("timestamp", ["\u00b2", "1" * 5000, "\u00b9\u2077\u2070\u2070", "\u0661\u0667\u0660\u0660",
                                       "1.7e9", "-1", "0x6553f100", " 1700000000", "17000000000000"],
                         ids=["superscript two", "5000 digits", "superscript number", "arabic-indic digits",
                              "float", "negative", "hex", "leading space", "13 digits"])
def test_a_malformed_timestamp_is_401_and_logs_no_traceback(client, his_key, caplog, timestamp):
    caplog.set_level(logging.DEBUG)
    headers = {**_signed(his_key, "GET", RECONCILIATION), "X-HIS-Timestamp": timestamp}

    resp = client.get(RECONCILIATION, headers=headers)

    assert resp.status_code == 401, resp.get_data(as_text=True)[:300]
    assert resp.get_json()["error"] == "invalid_signature"
    _no_traceback(caplog)


def test_a_timestamp_signed_into_the_timestamp_header_itself_is_still_checked_for_shape(client, his_key, caplog):
    """Signed with the superscript as its timestamp: the signature is right, the timestamp is not a number."""
    caplog.set_level(logging.DEBUG)
    resp = client.get(RECONCILIATION, headers=_signed(his_key, "GET", RECONCILIATION, timestamp="\u00b2"))
    assert resp.status_code == 401
    _no_traceback(caplog)


@pytest.mark.parametrize("offset_s, status", [(60, 401), (31 + 5, 401), (-301, 401), (20, 200), (-290, 200)],
                         ids=["60 s ahead", "36 s ahead", "301 s old", "20 s ahead", "290 s old"])
def test_the_timestamp_window_is_300_s_back_and_30_s_ahead(client, his_key, offset_s, status):
    headers = _signed(his_key, "GET", RECONCILIATION, timestamp=int(time.time()) + offset_s)
    resp = client.get(RECONCILIATION, headers=headers)
    assert resp.status_code == status, resp.get_json()


def test_a_replayed_request_is_refused(client, rt, his_key):
    headers = _signed(his_key, "GET", RECONCILIATION)
    first = client.get(RECONCILIATION, headers=headers)
    assert first.status_code == 200, first.get_json()

    replay = client.get(RECONCILIATION, headers=headers)

    assert replay.status_code == 401
    assert replay.get_json()["error"] == "replayed_request"
    with rt.db.session() as session:
        assert session.scalar(select(func.count(HisApiNonce.id)).where(
            HisApiNonce.nonce == headers["X-HIS-Nonce"])) == 1


def test_a_replayed_window_refund_is_refused_before_the_refund_rules_run(client, sandbox, his_key):
    card = requests.post(f"{sandbox.url}/sandbox/his/cards", json={"name": "重放", "phone": "13900001111",
                                                                  "balance_fen": 500}, timeout=5).json()
    body = json.dumps({"card_no": card["card_no"], "amount_fen": 100, "request_no": f"RP-{secrets.token_hex(4)}"})
    headers = _signed(his_key, "POST", REFUNDS, body.encode())
    first = client.post(REFUNDS, data=body, headers=headers)
    assert first.status_code == 409, first.get_json()  # judged by the rules: no online top-ups on this card
    replay = client.post(REFUNDS, data=body, headers=headers)
    assert replay.status_code == 401 and replay.get_json()["error"] == "replayed_request"


def test_a_nonce_is_forgotten_once_its_window_has_passed(client, rt, his_key):
    old = f"old-{secrets.token_hex(12)}"
    with rt.db.session() as session:
        session.add(HisApiNonce(key_id=his_key["key_id"], nonce=old, signed_at=utcnow() - timedelta(seconds=1000),
                                seen_at=utcnow() - timedelta(seconds=1000)))
    assert client.get(RECONCILIATION, headers=_signed(his_key, "GET", RECONCILIATION)).status_code == 200
    with rt.db.session() as session:
        assert session.scalar(select(func.count(HisApiNonce.id)).where(HisApiNonce.nonce == old)) == 0


@pytest.mark.parametrize("nonce", ["short", "x" * 65, "has space in it 1234", "\u00e9" * 20],
                         ids=["too short", "too long", "space", "non-ascii"])
def test_a_malformed_nonce_is_refused(client, his_key, nonce):
    headers = _signed(his_key, "GET", RECONCILIATION, nonce=nonce)
    assert client.get(RECONCILIATION, headers=headers).status_code == 401


def test_a_bad_body_is_401_unsigned_and_422_only_once_the_signature_passes(client, his_key):
    bad = json.dumps({"card_no": "", "amount_fen": "lots", "request_no": 7, "extra": True}).encode()

    unsigned = client.post(REFUNDS, data=bad, headers={"Content-Type": "application/json"})
    wrong_key = client.post(REFUNDS, data=bad, headers=_signed({**his_key, "secret": "x" * 64}, "POST", REFUNDS, bad))
    signed = client.post(REFUNDS, data=bad, headers=_signed(his_key, "POST", REFUNDS, bad))

    assert unsigned.status_code == 401 and "errors" not in unsigned.get_json()
    assert wrong_key.status_code == 401 and "errors" not in wrong_key.get_json()
    assert signed.status_code == 422, signed.get_json()
    assert set(signed.get_json()["errors"]["json"]) >= {"card_no", "amount_fen", "request_no"}


@pytest.mark.parametrize("field, value", [("request_no", "R-1\r\nX-Injected: 1"), ("request_no", "退款1"),
                                          ("card_no", "D0000001 "), ("card_no", "D" * 65)])
def test_a_signed_window_refund_with_an_unprintable_number_is_422(client, his_key, field, value):
    body = {"card_no": "D0000001", "amount_fen": 1, "request_no": f"R-{secrets.token_hex(4)}", field: value}
    raw = json.dumps(body).encode()
    resp = client.post(REFUNDS, data=raw, headers=_signed(his_key, "POST", REFUNDS, raw))
    assert resp.status_code == 422 and field in resp.get_json()["errors"]["json"]


def test_a_clinic_whose_his_secret_is_short_cannot_call_at_all(client, rt, caplog):
    """A short secret left over from before the length rule (written around the model's check) fails closed."""
    caplog.set_level(logging.WARNING)
    code, key_id, short = f"short{secrets.token_hex(3)}", f"his-short-{secrets.token_hex(4)}", "tooshort"
    with rt.db.session() as session:
        session.execute(text("INSERT INTO clinics (code, name, his_base_url, his_key_id, his_secret, created_at) "
                             "VALUES (:code, 'Short', 'http://127.0.0.1:1/his/', :key_id, :secret, :now)"),
                        {"code": code, "key_id": key_id, "secret": rt.keyring.encrypt(short), "now": utcnow()})
    try:
        resp = client.get(RECONCILIATION, headers=_signed({"key_id": key_id, "secret": short}, "GET", RECONCILIATION))
        assert resp.status_code == 401 and resp.get_json()["error"] == "invalid_signature"
        assert any(code in r.getMessage() and "short" in r.getMessage() for r in caplog.records)
        assert not any(short in r.getMessage() for r in caplog.records if r.name.startswith("app"))
    finally:
        with rt.db.session() as session:
            session.execute(text("DELETE FROM clinics WHERE code = :code"), {"code": code})


def test_the_openapi_document_says_how_to_sign(client):
    scheme = client.get("/openapi.json").get_json()["components"]["securitySchemes"]["his_hmac"]
    assert "X-HIS-Nonce" in scheme["description"]
    assert 'timestamp + "\\n" + nonce + "\\n" + METHOD' in scheme["description"]


# --- authentication before validation, on every protected operation ------------------------------

PATH_SAMPLES = {"order_no": "B20250101000000000000", "refund_request_no": "R20250101000000000000",
                "card_no": "D0000001", "day": "2024-03-01", "clinic_code": "demo"}
PROTECTED_PREFIXES = ("/api/mp/v1/", "/api/admin/v1/", "/api/his/v1/")
PUBLIC_OPERATIONS = {"POST /api/mp/v1/auth/login", "POST /api/admin/v1/auth/login"}


def _protected_operations(client):
    """Every operation of the three authenticated APIs but their logins, whatever its doc declares."""
    spec = client.get("/openapi.json").get_json()
    for path, item in spec["paths"].items():
        if not path.startswith(PROTECTED_PREFIXES):
            continue
        for method, operation in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            if f"{method.upper()} {path}" in PUBLIC_OPERATIONS:
                continue
            yield method.upper(), path, operation


def test_every_protected_operation_authenticates_before_it_validates(client):
    """An unauthenticated caller with a malformed body and query gets 401, never a field-by-field 422."""
    checked, wrong = 0, []
    for method, path, operation in _protected_operations(client):
        concrete = re.sub(r"\{(\w+)\}", lambda m: PATH_SAMPLES.get(m.group(1), "1"), path)
        kwargs = {"query_string": {"limit": "many", "offset": "-x", "date": "someday", "status": 7}}
        if "requestBody" in operation:
            kwargs["data"] = json.dumps({"amount_fen": "lots", "bill_ids": [{}], "type": 3, "unexpected": True})
            kwargs["headers"] = {"Content-Type": "application/json"}
        resp = client.open(concrete, method=method, **kwargs)
        checked += 1
        if resp.status_code != 401:
            wrong.append(f"{method} {path} -> {resp.status_code} {resp.get_data(as_text=True)[:120]}")
    assert checked >= 20, "suspiciously few protected operations"
    assert wrong == []
