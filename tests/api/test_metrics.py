"""/metrics: who may read it, and counters that move with what happens (in-process app: one process's counts;
tests/e2e/test_operations.py reads the platform's, added up over its gunicorn and rq processes)."""
from __future__ import annotations

import secrets
from datetime import date, timedelta

from prometheus_client.parser import text_string_to_metric_families

from app.channels.wechat_sign import sign
from app.factory import create_app
from app.services.reconciliation import reconcile
from config.settings import TestSettings
from tests.api.admin_helpers import ADMIN, clinic_id
from tests.api.metrics_helpers import sample, scrape
from tests.api.order_helpers import add_patient, paying_booking, user, wechat_merchant
from workers.dispatcher import LEASES

TOKEN = "metrics-" + "t" * 40


def xml(fields: dict) -> bytes:
    return ("<xml>" + "".join(f"<{k}><![CDATA[{v}]]></{k}>" for k, v in fields.items()) + "</xml>").encode()


def wechat_notification(merchant: dict, out_trade_no: str, total_fee: int, api_key: str | None = None) -> bytes:
    fields = {"appid": merchant["appid"], "mch_id": merchant["mch_id"], "nonce_str": secrets.token_hex(8),
              "result_code": "SUCCESS", "return_code": "SUCCESS", "openid": "o-test", "trade_type": "JSAPI",
              "bank_type": "CMC", "total_fee": str(total_fee), "cash_fee": str(total_fee), "fee_type": "CNY",
              "transaction_id": f"42000{secrets.randbelow(10**20):020d}", "out_trade_no": out_trade_no,
              "time_end": "20261122101010"}
    fields["sign"] = sign(fields, api_key or merchant["api_key"], "MD5")
    return xml(fields)


def test_without_a_token_only_loopback_clients_read_metrics(client):
    assert "hpay_http_requests_total" in scrape(client)
    assert "hpay_http_requests_total" in scrape(client, environ_base={"REMOTE_ADDR": "::1"})
    for address in ("10.0.0.7", "192.168.1.20", "2001:db8::1", "::ffff:10.0.0.7"):
        refused = client.get("/metrics", environ_base={"REMOTE_ADDR": address})
        assert (refused.status_code, refused.get_json()["error"]) == (403, "metrics_forbidden"), address
        assert "hpay_" not in refused.get_data(as_text=True)


def test_with_a_token_every_client_must_send_it(settings):
    app = create_app(TestSettings(**{**vars(settings), "METRICS_TOKEN": TOKEN}))
    client = app.test_client()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
                    {"Authorization": f"Bearer {TOKEN}x"}):
        refused = client.get("/metrics", headers=headers)
        assert (refused.status_code, refused.get_json()["error"]) == (401, "metrics_token_required"), headers
    far = scrape(client, headers={"Authorization": f"Bearer {TOKEN}"}, environ_base={"REMOTE_ADDR": "10.0.0.7"})
    assert "hpay_work_backlog" in far
    app.extensions["hpay_runtime"].close()


def test_with_loopback_off_and_no_token_nobody_reads_metrics(settings):
    app = create_app(TestSettings(**{**vars(settings), "METRICS_LOOPBACK_ONLY": False}))
    assert app.test_client().get("/metrics").status_code == 403
    app.extensions["hpay_runtime"].close()


def test_requests_are_counted_by_endpoint_name_and_status_never_by_path(client):
    before = scrape(client)
    for order_no in ("B20250101000000000001", "B20250101000000000002", "B20250101000000000003"):
        client.get(f"/api/mp/v1/orders/{order_no}")
    client.get("/no/such/path/here")
    for made_up in ("FROB", "X-" + secrets.token_hex(4).upper()):
        client.open("/no/such/path/here", method=made_up)
    after = scrape(client)
    methods = {s.labels["method"] for f in text_string_to_metric_families(after) for s in f.samples
               if s.name == "hpay_http_requests_total"}
    assert methods <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}
    labels = {"endpoint": "mp_orders.get_order", "method": "GET", "status": "401"}
    assert sample(after, "hpay_http_requests_total", **labels) - sample(before, "hpay_http_requests_total",
                                                                        **labels) == 3
    unmatched = {"endpoint": "unmatched", "method": "GET", "status": "404"}
    assert sample(after, "hpay_http_requests_total", **unmatched) > sample(before, "hpay_http_requests_total",
                                                                           **unmatched)
    assert sample(after, "hpay_http_request_duration_seconds_count", endpoint="mp_orders.get_order",
                  method="GET") >= 3
    assert "B20250101000000000001" not in after


def test_a_notification_increments_its_verdict_counter(client, sandbox, rt, demo_clinic):
    headers = user(client, sandbox, f"metrics-{secrets.token_hex(4)}")
    patient = add_patient(client, headers)
    _, _, order, out_trade_no = paying_booking(client, rt, headers, patient)
    merchant = wechat_merchant(sandbox)
    accepted = {"channel": "wechat", "kind": "payment", "verdict": "accepted", "reason": "stored"}
    forged = {"channel": "wechat", "kind": "payment", "verdict": "rejected", "reason": "verification_failed"}
    tampered = {"channel": "wechat", "kind": "payment", "verdict": "rejected", "reason": "amount_mismatch"}
    before = scrape(client)

    def post(body: bytes):
        return client.post("/notify/wechat/demo/pay", data=body, content_type="text/xml")

    assert "SUCCESS" in post(wechat_notification(merchant, out_trade_no, order["amount_fen"])).get_data(as_text=True)
    assert "FAIL" in post(wechat_notification(merchant, out_trade_no, order["amount_fen"],
                                              api_key=secrets.token_hex(16))).get_data(as_text=True)
    assert "FAIL" in post(wechat_notification(merchant, out_trade_no, 1)).get_data(as_text=True)
    after = scrape(client)
    for labels in (accepted, forged, tampered):
        assert sample(after, "hpay_notifications_total", **labels) - sample(before, "hpay_notifications_total",
                                                                            **labels) == 1, labels
    # The stored notification waits in the inbox until a worker processes it (none runs in this process).
    assert sample(after, "hpay_work_backlog", work="inbox", queue="notifications") >= 1


def test_backlogs_of_every_lease_spec_and_the_queues_are_measured_when_scraped(client):
    text = scrape(client)
    for spec in LEASES:
        for name in ("hpay_work_backlog", "hpay_work_due", "hpay_work_oldest_due_age_seconds"):
            assert any(s.name == name and s.labels == {"work": spec.name, "queue": spec.queue}
                       for f in text_string_to_metric_families(text) for s in f.samples), (name, spec.name)
    for queue in ("notifications", "his", "channel", "default"):
        assert any(s.name == "hpay_queue_jobs" and s.labels == {"queue": queue, "state": "failed"}
                   for f in text_string_to_metric_families(text) for s in f.samples), queue
    assert sample(text, "hpay_scrape_source_up", source="database") == 1
    assert sample(text, "hpay_scrape_source_up", source="redis") == 1


def test_refused_sign_ins_and_rate_limits_are_counted(settings, client, demo_clinic):
    wrong = {"who": "staff", "reason": "invalid_credentials"}
    before = scrape(client)
    client.post(f"{ADMIN}/auth/login", json={"username": f"nobody-{secrets.token_hex(4)}", "password": "wrong-one"})
    assert sample(scrape(client), "hpay_login_failures_total", **wrong) - sample(before, "hpay_login_failures_total",
                                                                                 **wrong) == 1

    limited = create_app(TestSettings(**{**vars(settings), "RATE_LIMIT_SCALE": 1.0,
                                         "RATE_ADMIN_LOGIN_PER_USERNAME_ADDRESS": "1/minute",
                                         "RATE_LIMIT_PREFIX": f"metrics-{secrets.token_hex(4)}"}))
    limited_client = limited.test_client()
    name = {"limit": "admin_login_per_username_address"}
    before = scrape(limited_client)
    body = {"username": f"limited-{secrets.token_hex(4)}", "password": "wrong-one"}
    answers = [limited_client.post(f"{ADMIN}/auth/login", json=body).status_code for _ in range(2)]
    assert answers == [401, 429]
    assert sample(scrape(limited_client), "hpay_rate_limited_total", **name) - sample(
        before, "hpay_rate_limited_total", **name) == 1
    limited.extensions["hpay_runtime"].close()


def test_a_reconciliation_run_is_counted_by_source_and_outcome(client, rt, demo_clinic):
    done = {"source": "his", "outcome": "done"}
    before = scrape(client)
    reconcile(rt, date.today() - timedelta(days=400), "his", clinic_id(rt))
    after = scrape(client)
    assert sample(after, "hpay_reconciliation_runs_total", **done) - sample(
        before, "hpay_reconciliation_runs_total", **done) == 1
