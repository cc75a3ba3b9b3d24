"""The platform's own dependencies going away: a database or Redis that does not answer is a 503 with Retry-After
and a stable code, never a 500; the channels are answered FAIL (they send the notification again); the OpenAPI
document declares it on every operation. (tests/e2e/test_database_restart.py restarts a real PostgreSQL under load.)"""
from __future__ import annotations

import pytest

from app.factory import create_app
from config.settings import TestSettings
from tests.api.admin_helpers import ADMIN, make_user, sign_in
from tests.api.mp_helpers import bearer, login

DEAD_DATABASE = "postgresql+psycopg://postgres@127.0.0.1:1/nothing"
DEAD_REDIS = "redis://127.0.0.1:1/0"


@pytest.fixture()
def without_database(settings):
    app = create_app(TestSettings(**{**vars(settings), "DATABASE_URL": DEAD_DATABASE}))
    yield app.test_client()
    app.extensions["hpay_runtime"].close()


@pytest.fixture()
def without_redis(settings):
    app = create_app(TestSettings(**{**vars(settings), "REDIS_URL": DEAD_REDIS, "RATE_LIMIT_STORAGE_URL": DEAD_REDIS}))
    yield app.test_client()
    app.extensions["hpay_runtime"].close()


def unavailable(resp, code: str) -> None:
    assert resp.status_code == 503, (resp.status_code, resp.get_data(as_text=True)[:300])
    assert resp.get_json()["error"] == code and resp.get_json()["message"]
    assert int(resp.headers["Retry-After"]) >= 1


def test_without_the_database_the_patients_calls_are_503_database_unavailable(client, sandbox, demo_clinic,
                                                                            without_database):
    headers = bearer(login(client, sandbox)["token"])  # signed in while the database answered
    order_no = "B20250101000000000001"
    for method, path, body in (("POST", "/api/mp/v1/orders", {"type": "topup", "card_no": "D0000001",
                                                               "amount_fen": 1000, "channel": "wechat"}),
                               ("POST", f"/api/mp/v1/orders/{order_no}/pay", None),
                               ("GET", f"/api/mp/v1/orders/{order_no}", None),
                               ("GET", "/api/mp/v1/orders", None),
                               ("GET", "/api/mp/v1/items", None)):
        unavailable(without_database.open(path, method=method, json=body, headers=headers), "database_unavailable")
    unavailable(without_database.post(f"{ADMIN}/auth/login", json={"username": "admin", "password": "x" * 12}),
                "database_unavailable")


def test_without_the_database_a_notification_is_answered_fail_to_be_sent_again(without_database):
    wechat = without_database.post("/notify/wechat/demo/pay", data=b"<xml><return_code>SUCCESS</return_code></xml>",
                                   content_type="text/xml")
    assert wechat.status_code == 503 and int(wechat.headers["Retry-After"]) >= 1
    assert "<![CDATA[FAIL]]>" in wechat.get_data(as_text=True) and wechat.mimetype == "text/xml"
    alipay = without_database.post("/notify/alipay/demo", data={"notify_type": "trade_status_sync"})
    assert (alipay.status_code, alipay.get_data(as_text=True)) == (503, "fail")


def test_without_the_database_the_probes_and_metrics_still_answer(without_database):
    assert without_database.get("/healthz").status_code == 200
    ready = without_database.get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json()["checks"]["database"] == "unreachable"
    assert ready.get_json()["checks"]["migrations"] == "unknown"
    metrics = without_database.get("/metrics")
    assert metrics.status_code == 200
    assert 'hpay_scrape_source_up{source="database"} 0.0' in metrics.get_data(as_text=True)


def test_without_redis_queueing_work_is_503_redis_unavailable(client, rt, demo_clinic, without_redis):
    finance = sign_in(client, *make_user(rt, "finance"))
    admin = sign_in(client, *make_user(rt, "admin"))
    unavailable(without_redis.post(f"{ADMIN}/reconciliation/runs", json={"date": "2025-01-02", "source": "his"},
                                   headers=finance), "redis_unavailable")
    unavailable(without_redis.get(f"{ADMIN}/ops/queues", headers=admin), "redis_unavailable")
    # Signing in needs no Redis: the rate limits count in memory meanwhile.
    assert without_redis.post(f"{ADMIN}/auth/login", json={"username": "nobody", "password": "x" * 12}
                              ).status_code == 401


def test_every_operation_declares_the_503_of_an_unavailable_dependency(client):
    spec = client.get("/openapi.json").get_json()
    missing = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            answer = operation["responses"].get("503", {})
            if path in ("/healthz", "/readyz", "/metrics"):
                continue
            if path.startswith("/notify/"):
                ok = "database_unavailable" in answer.get("description", "") and "Retry-After" in answer["headers"]
            else:
                ok = ("database_unavailable" in answer.get("description", "")
                      and "Retry-After" in answer.get("headers", {})
                      and answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ApiError"})
            if not ok:
                missing.append(f"{method.upper()} {path}")
    assert not missing, missing
    cards = spec["paths"]["/api/mp/v1/patients/{patient_id}/cards"]["post"]["responses"]["503"]["description"]
    assert "sms_unavailable" in cards and "database_unavailable" in cards
