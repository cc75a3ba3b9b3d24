"""Health probes, the error format of API.md, request ids and the published OpenAPI document."""
from __future__ import annotations

import json
import logging

from app.db.migrate import upgrade
from app.factory import create_app
from app.services import ops
from config.settings import TestSettings
from tests.conftest import _create_database


def test_healthz_and_readyz_answer_when_dependencies_are_up(client, rt):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ops.beat(rt)  # the dispatcher ran just now (no cron runs in this process)
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["checks"] == {"database": "ok", "redis": "ok", "migrations": "ok", "dispatcher": "ok"}


def test_readyz_is_503_when_redis_is_unreachable(database_url):
    broken = create_app(TestSettings(DATABASE_URL=database_url, REDIS_URL="redis://127.0.0.1:1/0"))
    resp = broken.test_client().get("/readyz")
    assert resp.status_code == 503
    assert resp.get_json()["checks"] == {"database": "ok", "redis": "unreachable", "migrations": "ok",
                                         "dispatcher": "unknown"}


def test_readyz_is_503_while_the_database_lacks_this_releases_migrations(postgres_url, redis_url, rt):
    url = _create_database(postgres_url, "hpay_behind")
    upgrade(url, "0008")
    behind = create_app(TestSettings(DATABASE_URL=url, REDIS_URL=redis_url))
    ops.beat(rt)
    resp = behind.test_client().get("/readyz")
    assert resp.status_code == 503
    checks = resp.get_json()["checks"]
    assert checks["migrations"].startswith("behind (0008; this release's latest is ") and checks["database"] == "ok"
    assert checks["dispatcher"] == "ok"
    upgrade(url)
    assert behind.test_client().get("/readyz").get_json()["checks"]["migrations"] == "ok"
    behind.extensions["hpay_runtime"].close()


def test_wrong_method_is_405_with_allow_header_and_json_message(client):
    resp = client.delete("/api/mp/v1/auth/login")
    assert resp.status_code == 405
    assert "POST" in resp.headers["Allow"]
    assert resp.is_json and resp.get_json()["message"]


def test_unknown_path_is_json_404(client):
    resp = client.get("/api/mp/v1/nothing-here")
    assert resp.status_code == 404 and resp.get_json()["message"]


def test_validation_errors_are_422_with_field_messages(client):
    resp = client.post("/api/mp/v1/auth/login", json={"clinic_code": "demo", "channel": "paypal"})
    assert resp.status_code == 422
    body = resp.get_json()
    assert body["error"] == "validation_failed"
    assert "channel" in json.dumps(body["errors"]) and "code" in json.dumps(body["errors"])


def test_malformed_json_is_a_4xx_not_a_500(client):
    resp = client.post("/api/mp/v1/auth/login", data="{not json", content_type="application/json")
    assert 400 <= resp.status_code < 500 and resp.get_json()["message"]


def test_request_id_is_echoed_and_logged(client, caplog):
    with caplog.at_level(logging.INFO, logger="hpay.access"):
        resp = client.post("/api/mp/v1/auth/login", json={"clinic_code": "no-such", "channel": "wechat",
                                                          "code": "x"}, headers={"X-Request-Id": "req-12345678"})
    assert resp.headers["X-Request-Id"] == "req-12345678"
    access = [r for r in caplog.records if r.name == "hpay.access" and "/auth/login" in r.getMessage()]
    assert access and access[-1].request_id == "req-12345678" and access[-1].status == 404
    fresh = client.get("/healthz")
    assert len(fresh.headers["X-Request-Id"]) == 32


def test_openapi_document_and_docs_ui(client):
    spec = client.get("/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    assert "/api/mp/v1/auth/login" in spec["paths"] and "/readyz" in spec["paths"]
    docs = client.get("/docs")
    assert docs.status_code == 200 and b"swagger" in docs.data.lower()
    assert client.get("/docs/static/swagger-ui-bundle.js").status_code == 200
