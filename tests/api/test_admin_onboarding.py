"""The operator's routes: clinics, their HIS connection and its check, channel apps and their checks, against the
sandbox (new HIS keys and merchants from POST /sandbox/merchants).

A check is a real signed call: it must say `ok` for the right keys and name what is wrong otherwise (a wrong key,
an address that is unreachable or is not a HIS or channel). Secrets are write-only: no response and no audit
event holds one, only its fingerprint.
"""
from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from app.db.models import AuditEvent
from tests.api.admin_helpers import ADMIN
from tests.api.onboarding_helpers import (
    alipay_app_body,
    created,
    new_code,
    onboard_clinic,
    operator_headers,
    sandbox_merchant,
    wechat_app_body,
)


@pytest.fixture()
def operator(client, rt, demo_clinic):
    return operator_headers(client, rt)


def fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:12]


def new_clinic(client, headers: dict) -> str:
    code = new_code()
    created(client.post(f"{ADMIN}/clinics", json={"code": code, "name": f"诊所 {code}"}, headers=headers))
    return code


def audit_of(rt, action: str, target_id) -> list[AuditEvent]:
    with rt.db.session() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action,
                                                             AuditEvent.target_id == str(target_id))
                                    .order_by(AuditEvent.id)))


# --- clinics -------------------------------------------------------------------------------------------

def test_an_operator_creates_renames_and_deactivates_a_clinic(client, rt, operator):
    headers, username = operator
    code = new_code()

    made = client.post(f"{ADMIN}/clinics", json={"code": code, "name": "新诊所"}, headers=headers)
    again = client.post(f"{ADMIN}/clinics", json={"code": code.upper(), "name": "重复"}, headers=headers)
    reserved = client.post(f"{ADMIN}/clinics", json={"code": "platform", "name": "平台"}, headers=headers)
    renamed = client.patch(f"{ADMIN}/clinics/{code}", json={"name": "新名字"}, headers=headers)
    off = client.patch(f"{ADMIN}/clinics/{code}", json={"active": False}, headers=headers)
    listed = client.get(f"{ADMIN}/clinics", headers=headers).get_json()

    assert made.status_code == 201, made.get_json()
    assert made.get_json() | {"created_at": None} == {
        "code": code, "name": "新诊所", "active": True, "created_at": None, "active_channel_apps": 0,
        "his": {"base_url": None, "key_id": None, "secret": {"configured": False, "fingerprint": None},
                "last_check": None}}
    assert (again.status_code, again.get_json()["error"]) == (409, "clinic_code_taken")
    assert reserved.status_code == 422
    assert renamed.get_json()["name"] == "新名字" and off.get_json()["active"] is False
    assert {"code": code, "active": False} .items() <= next(c for c in listed if c["code"] == code).items()
    actions = [e.action for e in audit_of(rt, "clinic_created", code) + audit_of(rt, "clinic_updated", code)
               + audit_of(rt, "clinic_deactivated", code)]
    assert actions == ["clinic_created", "clinic_updated", "clinic_deactivated"]
    assert all(e.actor_name == username for e in audit_of(rt, "clinic_deactivated", code))
    assert audit_of(rt, "clinic_deactivated", code)[0].before["active"] is True


def test_his_secret_is_write_only_and_the_check_says_ok_for_a_real_his(client, rt, sandbox, operator):
    headers, _ = operator
    code = new_clinic(client, headers)
    his = sandbox_merchant(sandbox.url, "his")

    put = client.put(f"{ADMIN}/clinics/{code}/his", headers=headers,
                     json={"base_url": f"{sandbox.url}/his/", "key_id": his["key_id"], "secret": his["secret"]})
    checked = client.post(f"{ADMIN}/clinics/{code}/his/check", headers=headers)
    shown = client.get(f"{ADMIN}/clinics/{code}", headers=headers)

    assert put.status_code == 200, put.get_json()
    assert his["secret"] not in put.get_data(as_text=True) + shown.get_data(as_text=True)
    assert shown.get_json()["his"]["secret"] == {"configured": True, "fingerprint": fingerprint(his["secret"])}
    assert checked.status_code == 200
    assert checked.get_json()["ok"] is True, checked.get_json()
    assert "card_not_found" in checked.get_json()["detail"]
    assert shown.get_json()["his"]["last_check"]["ok"] is True
    [event] = audit_of(rt, "clinic_his_set", code)
    assert event.after["his_secret"] == {"configured": True, "fingerprint": fingerprint(his["secret"])}
    assert his["secret"] not in json.dumps(event.after) + json.dumps(event.before)
    assert [e.after["last_check"]["ok"] for e in audit_of(rt, "clinic_his_checked", code)] == [True]


@pytest.mark.parametrize("case, expected", [
    ("wrong secret", "the HIS refused our key"),
    ("unreachable", "unreachable"),
    ("not a HIS", "does not answer like a HIS"),
])
def test_the_his_check_says_what_is_wrong(client, rt, sandbox, operator, case, expected):
    headers, _ = operator
    code = new_clinic(client, headers)
    his = sandbox_merchant(sandbox.url, "his")
    base_url, secret = {"wrong secret": (f"{sandbox.url}/his/", "another-secret-of-enough-length"),
                        "unreachable": ("http://127.0.0.1:1/his/", his["secret"]),
                        "not a HIS": (f"{sandbox.url}/wxlogin/", his["secret"])}[case]
    created(client.put(f"{ADMIN}/clinics/{code}/his", headers=headers,
                       json={"base_url": base_url, "key_id": his["key_id"], "secret": secret}))

    checked = client.post(f"{ADMIN}/clinics/{code}/his/check", headers=headers).get_json()

    assert checked["ok"] is False and expected in checked["detail"], checked
    assert client.get(f"{ADMIN}/clinics/{code}", headers=headers).get_json()["his"]["last_check"]["ok"] is False


def test_a_short_his_secret_a_taken_key_id_or_a_bad_url_is_refused(client, rt, sandbox, operator, demo_clinic):
    headers, _ = operator
    code = new_clinic(client, headers)
    demo_key = sandbox.merchants()["his"][0]["key_id"]
    body = {"base_url": f"{sandbox.url}/his/", "key_id": "k-" + new_code(), "secret": "x" * 16}

    short = client.put(f"{ADMIN}/clinics/{code}/his", json={**body, "secret": "x" * 15}, headers=headers)
    taken = client.put(f"{ADMIN}/clinics/{code}/his", json={**body, "key_id": demo_key}, headers=headers)
    bad_url = client.put(f"{ADMIN}/clinics/{code}/his", json={**body, "base_url": "ftp://his"}, headers=headers)
    nowhere = client.put(f"{ADMIN}/clinics/no-such-clinic/his", json=body, headers=headers)

    assert (short.status_code, short.get_json()["error"]) == (422, "weak_secret")
    assert (taken.status_code, taken.get_json()["error"]) == (409, "his_key_id_taken")
    assert (bad_url.status_code, bad_url.get_json()["error"]) == (422, "invalid_url")
    assert (nowhere.status_code, nowhere.get_json()["error"]) == (404, "clinic_not_found")


# --- channel apps --------------------------------------------------------------------------------------

def test_channel_apps_are_made_from_the_merchants_keys_and_show_only_fingerprints(client, rt, sandbox, operator):
    headers, username = operator
    code = new_clinic(client, headers)
    wechat = sandbox_merchant(sandbox.url, "wechat", code)
    alipay = sandbox_merchant(sandbox.url, "alipay", code)

    made_wechat = client.post(f"{ADMIN}/clinics/{code}/channel-apps", json=wechat_app_body(sandbox.url, wechat),
                              headers=headers)
    made_alipay = client.post(f"{ADMIN}/clinics/{code}/channel-apps", json=alipay_app_body(sandbox.url, alipay),
                              headers=headers)
    listed = client.get(f"{ADMIN}/clinics/{code}/channel-apps", headers=headers)

    assert made_wechat.status_code == 201, made_wechat.get_json()
    assert made_alipay.status_code == 201, made_alipay.get_json()
    shown = made_wechat.get_json()
    assert {k: shown[k] for k in ("owner", "clinic_code", "channel", "app_id", "mch_id", "sign_type", "active")} == {
        "owner": "clinic", "clinic_code": code, "channel": "wechat", "app_id": wechat["appid"],
        "mch_id": wechat["mch_id"], "sign_type": wechat["sign_type"], "active": True}
    assert shown["api_key"] == {"configured": True, "fingerprint": fingerprint(wechat["api_key"])}
    assert shown["app_private_key"] == {"configured": False, "fingerprint": None}
    assert made_alipay.get_json()["app_private_key"]["fingerprint"] == fingerprint(alipay["app_private_key"])
    everything = made_wechat.get_data(as_text=True) + made_alipay.get_data(as_text=True) + listed.get_data(as_text=True)
    for secret in (wechat["api_key"], wechat["app_secret"], alipay["app_private_key"].splitlines()[1]):
        assert secret not in everything
    assert [a["channel"] for a in listed.get_json()] == ["alipay", "wechat"]
    events = audit_of(rt, "channel_app_created", shown["id"])
    assert [e.actor_name for e in events] == [username]
    assert wechat["api_key"] not in json.dumps(events[0].after)
    assert events[0].after["api_key"]["fingerprint"] == fingerprint(wechat["api_key"])
    assert client.get(f"{ADMIN}/clinics/{code}", headers=headers).get_json()["active_channel_apps"] == 2


@pytest.mark.parametrize("change, error", [
    ({"api_key": "k" * 31}, "weak_secret"),
    ({"api_key": ""}, "weak_secret"),
    ({"app_secret": "s" * 15}, "weak_secret"),
    ({"app_private_key": "-----BEGIN RSA PRIVATE KEY-----"}, "validation_failed"),
    ({"mch_id": "not-digits"}, "validation_failed"),
    ({"api_base_url": "javascript:alert(1)"}, "invalid_url"),
])
def test_a_wechat_app_with_an_empty_short_or_foreign_field_is_refused(client, sandbox, operator, change, error):
    headers, _ = operator
    code = new_clinic(client, headers)
    body = {**wechat_app_body(sandbox.url, sandbox_merchant(sandbox.url, "wechat", code)), **change}

    refused = client.post(f"{ADMIN}/clinics/{code}/channel-apps", json=body, headers=headers)

    assert refused.status_code == 422 and refused.get_json()["error"] in (error, "field_not_for_channel"), \
        refused.get_json()
    assert client.get(f"{ADMIN}/clinics/{code}/channel-apps", headers=headers).get_json() == []


def test_unreadable_or_swapped_alipay_keys_and_a_taken_app_id_are_refused(client, sandbox, operator):
    headers, _ = operator
    code = new_clinic(client, headers)
    alipay = sandbox_merchant(sandbox.url, "alipay", code)
    body = alipay_app_body(sandbox.url, alipay)

    garbage = client.post(f"{ADMIN}/clinics/{code}/channel-apps",
                          json={**body, "alipay_public_key": "x" * 400}, headers=headers)
    swapped = client.post(f"{ADMIN}/clinics/{code}/channel-apps",
                          json={**body, "alipay_public_key": alipay["app_private_key"]}, headers=headers)
    first = client.post(f"{ADMIN}/clinics/{code}/channel-apps", json=body, headers=headers)
    twice = client.post(f"{ADMIN}/clinics/{code}/channel-apps", json=body, headers=headers)
    renamed = client.patch(f"{ADMIN}/channel-apps/{first.get_json()['id']}", json={"app_id": "2021999"},
                           headers=headers)

    assert (garbage.status_code, garbage.get_json()["error"]) == (422, "invalid_key")
    assert (swapped.status_code, swapped.get_json()["error"]) == (422, "invalid_key")
    assert first.status_code == 201 and (twice.status_code, twice.get_json()["error"]) == (409, "app_id_taken")
    assert (renamed.status_code, renamed.get_json()["error"]) == (422, "immutable_field")


def _certificate_pair(common_name: str = "1900000109") -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + timedelta(days=365)).sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem


def test_the_refund_certificate_and_its_key_go_together(client, sandbox, operator):
    headers, _ = operator
    code = new_clinic(client, headers)
    app = created(client.post(f"{ADMIN}/clinics/{code}/channel-apps", headers=headers,
                              json=wechat_app_body(sandbox.url, sandbox_merchant(sandbox.url, "wechat", code))))
    cert_pem, key_pem = _certificate_pair()
    _, other_key = _certificate_pair()

    alone = client.patch(f"{ADMIN}/channel-apps/{app['id']}", json={"cert_pem": cert_pem}, headers=headers)
    mismatched = client.patch(f"{ADMIN}/channel-apps/{app['id']}", json={"cert_pem": cert_pem, "key_pem": other_key},
                              headers=headers)
    paired = client.patch(f"{ADMIN}/channel-apps/{app['id']}", json={"cert_pem": cert_pem, "key_pem": key_pem},
                          headers=headers)

    assert (alone.status_code, alone.get_json()["errors"]) == (422, {"key_pem": ["goes together with the other "
                                                                                 "(both or neither)"]})
    assert (mismatched.status_code, mismatched.get_json()["error"]) == (422, "invalid_key")
    assert paired.status_code == 200, paired.get_json()
    assert paired.get_json()["cert_pem"] == {"configured": True, "fingerprint": fingerprint(cert_pem)}
    assert key_pem.splitlines()[1] not in paired.get_data(as_text=True)
    assert client.post(f"{ADMIN}/channel-apps/{app['id']}/check", headers=headers).get_json()["ok"] is True


def test_the_checks_say_ok_for_the_right_keys(client, rt, sandbox, operator):
    headers, _ = operator
    clinic = onboard_clinic(client, headers, sandbox.url)

    results = {channel: client.post(f"{ADMIN}/channel-apps/{clinic['apps'][channel]['id']}/check", headers=headers)
               for channel in ("wechat", "alipay")}

    assert results["wechat"].get_json()["ok"] is True, results["wechat"].get_json()
    assert "ORDERNOTEXIST" in results["wechat"].get_json()["detail"]
    assert results["alipay"].get_json()["ok"] is True, results["alipay"].get_json()
    assert "ACQ.TRADE_NOT_EXIST" in results["alipay"].get_json()["detail"]
    shown = client.get(f"{ADMIN}/channel-apps/{clinic['apps']['alipay']['id']}", headers=headers).get_json()
    assert shown["last_check"]["ok"] is True
    assert [e.after["last_check"]["ok"] for e in audit_of(rt, "channel_app_checked", shown["id"])] == [True]


@pytest.mark.parametrize("channel, change, expected", [
    ("wechat", lambda m, other: {"api_key": other["api_key"]}, "the API key is wrong"),
    ("wechat", lambda m, other: {"app_secret": other["app_secret"]}, "the app_secret is wrong"),
    ("wechat", lambda m, other: {"api_base_url": "http://127.0.0.1:1/wxpay/"}, "unreachable"),
    ("alipay", lambda m, other: {"alipay_public_key": other["alipay_public_key"]}, "the Alipay public key is wrong"),
    ("alipay", lambda m, other: {"app_private_key": other["app_private_key"]}, "the app private key is wrong"),
])
def test_a_check_with_a_wrong_key_says_which(client, sandbox, operator, channel, change, expected):
    headers, _ = operator
    code = new_clinic(client, headers)
    merchant, other = sandbox_merchant(sandbox.url, channel, code), sandbox_merchant(sandbox.url, channel, code)
    body = (wechat_app_body if channel == "wechat" else alipay_app_body)(sandbox.url, merchant)
    app = created(client.post(f"{ADMIN}/clinics/{code}/channel-apps", json={**body, **change(merchant, other)},
                              headers=headers))

    checked = client.post(f"{ADMIN}/channel-apps/{app['id']}/check", headers=headers).get_json()

    assert checked["ok"] is False and expected in checked["detail"], checked


def test_the_platform_has_apps_of_its_own(client, rt, sandbox, operator):
    headers, _ = operator
    merchant = sandbox_merchant(sandbox.url, "wechat", "platform")

    made = client.post(f"{ADMIN}/platform/channel-apps", json=wechat_app_body(sandbox.url, merchant),
                       headers=headers)
    listed = client.get(f"{ADMIN}/platform/channel-apps", headers=headers).get_json()

    assert made.status_code == 201, made.get_json()
    assert (made.get_json()["owner"], made.get_json()["clinic_code"]) == ("platform", None)
    assert merchant["appid"] in [a["app_id"] for a in listed]
    assert all(a["owner"] == "platform" for a in listed)
    assert client.post(f"{ADMIN}/channel-apps/{made.get_json()['id']}/check", headers=headers).get_json()["ok"]
