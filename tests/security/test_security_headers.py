"""Attacks through the browser: framing the console (clickjacking), sniffing a JSON answer as a page,
a token left in a shared cache or leaked in a Referer, a downgrade to plain HTTP.

Before this no response carried any of the headers that stop them.
"""
from __future__ import annotations

import dataclasses

import pytest

from tests.api.admin_helpers import ADMIN, make_user
from tests.api.mp_helpers import login_code

EVERY_RESPONSE = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def assert_hardened(resp) -> None:
    for name, value in EVERY_RESPONSE.items():
        assert resp.headers.get(name) == value, (resp.request.path, name, resp.headers.get(name))
    assert "frame-ancestors 'none'" in resp.headers.get("Content-Security-Policy", "")


@pytest.mark.parametrize("method, path", [
    ("GET", "/healthz"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/docs/static/swagger-ui-bundle.js"),
    ("GET", "/api/mp/v1/patients"),          # a 401
    ("GET", "/api/admin/v1/no-such-thing"),  # a 404
    ("POST", "/notify/alipay/demo"),         # a channel's form post, refused
])
def test_every_response_forbids_sniffing_framing_and_referrers(client, demo_clinic, method, path):
    assert_hardened(client.open(path, method=method))


def test_both_logins_answer_tokens_that_no_cache_keeps(client, rt, sandbox, demo_clinic):
    username, password = make_user(rt, "staff")
    staff = client.post(f"{ADMIN}/auth/login", json={"username": username, "password": password})
    patient = client.post("/api/mp/v1/auth/login",
                          json={"clinic_code": "demo", "channel": "wechat", "code": login_code(sandbox, "wechat")})

    for resp in (staff, patient):
        assert resp.status_code == 200 and resp.get_json()["token"]
        assert resp.headers["Cache-Control"] == "no-store"
        assert_hardened(resp)


def test_api_json_is_never_stored_by_a_cache(client, demo_clinic):
    for path in ("/api/mp/v1/items?clinic_code=demo", "/api/mp/v1/patients", "/openapi.json"):
        assert client.get(path).headers.get("Cache-Control") == "no-store", path


def test_json_answers_may_load_nothing_even_if_opened_as_a_page(client, demo_clinic):
    csp = client.get("/api/mp/v1/patients").headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp


def test_the_docs_page_still_works(client, demo_clinic):
    page = client.get("/docs")
    html = page.get_data(as_text=True)

    assert page.status_code == 200 and page.mimetype == "text/html"
    # Swagger UI starts from an inline script and our own static files: nothing in the policy may block them.
    assert page.headers["Content-Security-Policy"] == "frame-ancestors 'none'"
    for asset in ("/docs/static/swagger-ui-bundle.js", "/docs/static/swagger-ui.css",
                  "/docs/static/swagger-ui-standalone-preset.js"):
        assert asset in html
        assert client.get(asset).status_code == 200, asset
    assert client.get("/openapi.json").get_json()["paths"]


def test_hsts_only_in_production(settings, client, demo_clinic):
    from cryptography.fernet import Fernet

    from app.factory import create_app
    from config.settings import ProductionSettings

    assert "Strict-Transport-Security" not in client.get("/healthz").headers
    production = ProductionSettings(**{**dataclasses.asdict(settings), "ENV": "production",
                                       "PUBLIC_BASE_URL": "https://pay.example-hospital.cn",
                                       "SANDBOX_URL": "", "DEMO_PASSWORD": "",
                                       "DATA_KEYS": Fernet.generate_key().decode()})
    production.validate()
    app = create_app(production)
    try:
        hsts = app.test_client().get("/healthz").headers.get("Strict-Transport-Security", "")
    finally:
        app.extensions["hpay_runtime"].close()
    assert hsts.startswith("max-age=") and int(hsts.split("=")[1].split(";")[0]) >= 180 * 86400
