"""Cross-origin calls (app/cors.py): the allowed origins (HPAY_CORS_ORIGINS; by default the sandbox's, whose H5 pages
call the mini-program API) get CORS headers on /api/mp/v1 only; any other origin and any other API get none."""
from __future__ import annotations

import dataclasses

import pytest

from config.settings import ConfigurationError, DevelopmentSettings, ProductionSettings, Settings, TestSettings
from tests.api.mp_helpers import bearer, login

EVIL = "https://evil.example"


@pytest.fixture()
def page_origin(sandbox):
    """The sandbox's origin: its H5 pages are served from there (the default allowed origin outside production)."""
    return sandbox.url


def preflight(client, path: str, origin: str, method: str = "POST",
              headers: str = "authorization,content-type,idempotency-key"):
    return client.options(path, headers={"Origin": origin, "Access-Control-Request-Method": method,
                                         "Access-Control-Request-Headers": headers})


def test_the_sandbox_pages_may_preflight_and_call_the_mini_program_api(client, sandbox, demo_clinic, page_origin):
    answer = preflight(client, "/api/mp/v1/orders", page_origin)
    assert answer.status_code == 204
    assert answer.headers["Access-Control-Allow-Origin"] == page_origin
    allowed = {h.strip().lower() for h in answer.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "idempotency-key"} <= allowed
    assert {"GET", "POST"} <= {m.strip() for m in answer.headers["Access-Control-Allow-Methods"].split(",")}
    assert "Access-Control-Allow-Credentials" not in answer.headers  # the token travels in a header, never a cookie
    assert "Origin" in answer.headers.get("Vary", "")

    session = login(client, sandbox, "wechat", openid="cors-page-user")
    items = client.get("/api/mp/v1/items", headers={"Origin": page_origin, **bearer(session["token"])})
    assert items.status_code == 200 and items.get_json()
    assert items.headers["Access-Control-Allow-Origin"] == page_origin
    assert "Retry-After" in items.headers["Access-Control-Expose-Headers"]
    # A refusal is readable too: the page shows the API's own message.
    refused = client.get("/api/mp/v1/items", headers={"Origin": page_origin})
    assert refused.status_code == 401 and refused.headers["Access-Control-Allow-Origin"] == page_origin


def test_a_preflight_is_answered_before_authentication_and_rate_limits(client, demo_clinic, page_origin):
    for _ in range(3):
        answer = preflight(client, "/api/mp/v1/cards/D0000001/refunds", page_origin)
        assert answer.status_code == 204 and answer.headers["Access-Control-Allow-Origin"] == page_origin


@pytest.mark.parametrize("origin", [EVIL, "null", "http://127.0.0.1:1", "http://localhost"])
def test_any_other_origin_gets_no_cors_headers(client, sandbox, demo_clinic, origin):
    answer = preflight(client, "/api/mp/v1/orders", origin)
    assert answer.status_code != 204
    assert not [h for h in answer.headers.keys() if h.lower().startswith("access-control-")]
    session = login(client, sandbox, "wechat", openid="cors-other-origin")
    items = client.get("/api/mp/v1/items", headers={"Origin": origin, **bearer(session["token"])})
    assert items.status_code == 200  # (a browser would not hand this answer to that origin's page)
    assert "Access-Control-Allow-Origin" not in items.headers


def test_an_origin_that_only_looks_like_the_sandbox_is_refused(client, demo_clinic, page_origin):
    for lookalike in (page_origin + ".evil.example", page_origin.replace("http://", "https://"), page_origin + "/",
                      page_origin.upper()):
        answer = preflight(client, "/api/mp/v1/orders", lookalike)
        assert "Access-Control-Allow-Origin" not in answer.headers, lookalike


@pytest.mark.parametrize("path,method", [
    ("/api/admin/v1/auth/login", "POST"), ("/api/admin/v1/bookings", "GET"), ("/api/his/v1/refunds", "POST"),
    ("/notify/alipay/demo", "POST"), ("/metrics", "GET"), ("/readyz", "GET"),
])
def test_the_admin_api_and_the_rest_never_answer_cross_origin(client, demo_clinic, page_origin, path, method):
    answer = preflight(client, path, page_origin, method=method)
    assert not [h for h in answer.headers.keys() if h.lower().startswith("access-control-")], path
    direct = client.open(path, method=method, headers={"Origin": page_origin}, json={} if method == "POST" else None)
    assert "Access-Control-Allow-Origin" not in direct.headers, path


def test_the_contract_is_readable_but_only_by_get(client, page_origin):
    spec = client.get("/openapi.json", headers={"Origin": page_origin})
    assert spec.status_code == 200 and "/api/mp/v1/orders" in spec.get_json()["paths"]
    assert spec.headers["Access-Control-Allow-Origin"] == page_origin
    assert "Access-Control-Allow-Origin" not in client.get("/openapi.json", headers={"Origin": EVIL}).headers
    assert preflight(client, "/openapi.json", page_origin, method="POST").status_code != 204


def test_configured_origins_replace_the_default(settings, sandbox):
    from app.factory import create_app

    configured = dataclasses.replace(settings, CORS_ORIGINS="https://h5.clinic.example, http://127.0.0.1:5173")
    assert configured.cors_origins() == {"https://h5.clinic.example", "http://127.0.0.1:5173"}
    app = create_app(configured)
    try:
        client = app.test_client()
        assert preflight(client, "/api/mp/v1/orders", "https://h5.clinic.example").status_code == 204
        assert preflight(client, "/api/mp/v1/orders", "http://127.0.0.1:5173").status_code == 204
        assert "Access-Control-Allow-Origin" not in preflight(client, "/api/mp/v1/orders", sandbox.url).headers
    finally:
        app.extensions["hpay_runtime"].close()


def test_default_origins_by_environment():
    assert DevelopmentSettings(SECRET_KEY="x" * 40).cors_origins() == {"http://127.0.0.1:8100"}
    assert TestSettings(SANDBOX_URL="http://127.0.0.1:9100/").cors_origins() == {"http://127.0.0.1:9100"}
    assert TestSettings(SANDBOX_URL="").cors_origins() == frozenset()
    # Production has no sandbox and no default: a page's origin must be listed.
    assert ProductionSettings(SECRET_KEY="x" * 40, SANDBOX_URL="http://127.0.0.1:8100").cors_origins() == frozenset()
    assert ProductionSettings(SECRET_KEY="x" * 40, CORS_ORIGINS="https://h5.clinic.example:443").cors_origins() == \
        {"https://h5.clinic.example"}


@pytest.mark.parametrize("value", ["*", "https://*.example.com", "h5.clinic.example", "https://h5.example/path",
                                   "ftp://h5.example", "https://user:pw@h5.example"])
def test_what_is_not_an_origin_is_refused_at_start(value):
    with pytest.raises(ConfigurationError, match="HPAY_CORS_ORIGINS"):
        Settings.from_env({"HPAY_CORS_ORIGINS": value})


def test_production_accepts_only_https_origins():
    production = {"HPAY_SECRET_KEY": "s" * 48, "HPAY_DATABASE_URL": "postgresql+psycopg://db/hpay",
                  "HPAY_PUBLIC_BASE_URL": "https://pay.clinic.example", "HPAY_DEMO_PASSWORD": "",
                  "HPAY_DATA_KEYS": "k" * 44, "HPAY_METRICS_LOOPBACK_ONLY": "true"}
    with pytest.raises(ConfigurationError, match="https:// origins only"):
        ProductionSettings.from_env({**production, "HPAY_CORS_ORIGINS": "http://h5.clinic.example"})
    ok = ProductionSettings.from_env({**production, "HPAY_CORS_ORIGINS": "https://h5.clinic.example"})
    assert ok.cors_origins() == {"https://h5.clinic.example"}
