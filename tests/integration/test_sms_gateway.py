"""The SMS gateway (app/channels/sms.py) against the sandbox provider over HTTP, and how Runtime builds it."""
from __future__ import annotations

import dataclasses
import secrets

import pytest
import requests

from app.channels.sms import HttpSmsGateway, SmsNotConfigured, SmsRejected, SmsThrottled, SmsUnavailable
from app.runtime import Runtime
from config.settings import ConfigurationError, ProductionSettings
from tests.servers import free_port


def _phone() -> str:
    return f"17{secrets.randbelow(10**9):09d}"


def _inbox(sandbox, phone: str) -> list[dict]:
    return requests.get(f"{sandbox.url}/sandbox/sms", params={"phone": phone}, timeout=5).json()


def _gateway(sandbox, **changes) -> HttpSmsGateway:
    account = sandbox.merchants()["sms"][0]
    fields = {"base_url": f"{sandbox.url}/sms", "app_key": account["app_key"], "secret": account["secret"],
              "template_code": account["template_code"], "sign_name": account["sign_name"], **changes}
    return HttpSmsGateway(**fields, timeout=5)


def test_the_runtime_gateway_texts_through_the_sandbox_by_default(rt, sandbox):
    phone = _phone()
    request_id = rt.sms_gateway().send_code(phone, "483920", reference="it-1")
    [text] = _inbox(sandbox, phone)
    assert text["request_id"] == request_id and "483920" in text["text"] and text["out_id"] == "it-1"


def test_the_providers_refusals_are_our_exception_types(sandbox):
    phone = _phone()
    with pytest.raises(SmsRejected) as wrong_key:
        _gateway(sandbox, secret="not-the-secret").send_code(phone, "123456")
    assert wrong_key.value.code == "SIGNATURE_INVALID" and not isinstance(wrong_key.value, SmsThrottled)
    with pytest.raises(SmsRejected) as template:
        _gateway(sandbox, template_code="SMS_UNKNOWN").send_code(phone, "123456")
    assert template.value.code == "TEMPLATE_UNKNOWN"

    requests.post(f"{sandbox.url}/sandbox/sms/throttle", json={"phone": phone, "seconds": 20},
                  timeout=5).raise_for_status()
    try:
        with pytest.raises(SmsThrottled) as throttled:
            _gateway(sandbox).send_code(phone, "123456")
    finally:
        requests.delete(f"{sandbox.url}/sandbox/sms/throttle", timeout=5).raise_for_status()
    assert 15 <= throttled.value.retry_after_s <= 20
    assert _inbox(sandbox, phone) == []


def test_no_answer_or_a_foreign_answer_is_unavailable(sandbox):
    with pytest.raises(SmsUnavailable):
        _gateway(sandbox, base_url=f"http://127.0.0.1:{free_port()}/sms").send_code(_phone(), "123456")
    with pytest.raises(SmsUnavailable):  # the HIS's path: a 404 without the provider's result code
        _gateway(sandbox, base_url=f"{sandbox.url}/his").send_code(_phone(), "123456")


def test_a_gateway_without_its_settings_fails_closed(settings):
    with pytest.raises(SmsNotConfigured):
        HttpSmsGateway("", "key", "secret", "T", "S")
    bare = Runtime(dataclasses.replace(settings, SANDBOX_URL="", SMS_BASE_URL=""))
    try:
        with pytest.raises(SmsNotConfigured):
            bare.sms_gateway()
    finally:
        bare.close()


def test_production_refuses_a_sandbox_sms_provider(settings):
    safe = {"HPAY_SECRET_KEY": "x" * 48, "HPAY_DATABASE_URL": settings.DATABASE_URL,
            "HPAY_PUBLIC_BASE_URL": "https://pay.example-hospital.cn",
            "HPAY_DATA_KEYS": "bm90LWEtcmVhbC1rZXktanVzdC0zMi1ieXRlcyEhISE=", "HPAY_METRICS_LOOPBACK_ONLY": "true"}
    for url in ("http://127.0.0.1:8100/sms", "http://localhost/sms"):
        with pytest.raises(ConfigurationError, match="HPAY_SMS_BASE_URL"):
            ProductionSettings.from_env({**safe, "HPAY_SMS_BASE_URL": url})
    for secret in ("sandbox-sms-demo-secret-not-for-production", "short"):
        with pytest.raises(ConfigurationError, match="HPAY_SMS_SECRET"):
            ProductionSettings.from_env({**safe, "HPAY_SMS_SECRET": secret})
    # Even if the check at start-up were bypassed, the factory refuses to build it.
    bypassed = Runtime(dataclasses.replace(ProductionSettings.from_env(safe), SMS_BASE_URL="http://127.0.0.1:8100/sms",
                                           SMS_APP_KEY="k", SMS_SECRET="s" * 32))
    try:
        with pytest.raises(SmsNotConfigured, match="sandbox"):
            bypassed.sms_gateway()
    finally:
        bypassed.close()
    configured = ProductionSettings.from_env({**safe, "HPAY_SMS_BASE_URL": "https://sms.example-provider.cn",
                                              "HPAY_SMS_APP_KEY": "hospital-app", "HPAY_SMS_SECRET": "s" * 32})
    assert configured.sms_provider() == ("https://sms.example-provider.cn", "hospital-app", "s" * 32)
