"""Operations on the running platform (gunicorn, rq workers, cron): /readyz follows the dispatcher's heartbeat,
/metrics adds up what every process counted, and a worker's log lines name the job and the order it works on."""
from __future__ import annotations

import json
import secrets
from datetime import date, timedelta

import requests
from prometheus_client.parser import text_string_to_metric_families

from app.channels.wechat_sign import sign
from tests.api.admin_helpers import make_user
from tests.e2e.fault_helpers import (
    client_with_card,
    new_topup,
    own_card,
    patient_pays,
    start_payment,
    stopped,
    wait_for_status,
)
from tests.e2e.helpers import wait_until


def _ready(platform) -> requests.Response:
    return requests.get(f"{platform.url}/readyz", timeout=10)


def _ready_body(platform, status: int) -> dict | None:
    resp = _ready(platform)
    return resp.json() if resp.status_code == status else None


def _scrape(platform) -> str:
    resp = requests.get(f"{platform.url}/metrics", timeout=20)
    assert resp.status_code == 200, resp.text[:300]
    return resp.text


def _total(text: str, name: str, **labels) -> float:
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def test_readyz_is_red_while_the_cron_is_stopped_and_green_again_after(platform):
    wait_until(lambda: _ready(platform).status_code == 200, timeout=30, what="the platform ready")
    assert _ready(platform).json()["checks"]["dispatcher"] == "ok"
    with stopped(platform.cron):
        # HPAY_DISPATCHER_STALE_S is 10 s on the test platform (60 s by default).
        red = wait_until(lambda: _ready_body(platform, 503), timeout=40, interval=1, what="/readyz to turn red")
        assert red["checks"]["dispatcher"].startswith("stale (")
        assert red["checks"]["database"] == red["checks"]["redis"] == "ok"
    green = wait_until(lambda: _ready_body(platform, 200), timeout=40, interval=1, what="/readyz to turn green")
    assert green["checks"] == {"database": "ok", "redis": "ok", "migrations": "ok", "dispatcher": "ok"}


def _forged_notification(sandbox) -> bytes:
    merchant = next(m for m in sandbox.merchants()["wechat"] if m["clinic_code"] == "demo")
    fields = {"appid": merchant["appid"], "mch_id": merchant["mch_id"], "nonce_str": secrets.token_hex(8),
              "result_code": "SUCCESS", "return_code": "SUCCESS", "out_trade_no": "T20991231235959000000P01",
              "total_fee": "100", "transaction_id": "4200000000202611229999999999"}
    fields["sign"] = sign(fields, secrets.token_hex(16), "MD5")
    return ("<xml>" + "".join(f"<{k}><![CDATA[{v}]]></{k}>" for k, v in fields.items()) + "</xml>").encode()


def test_metrics_add_up_every_web_and_worker_process(platform, sandbox, rt):
    forged = {"channel": "wechat", "kind": "payment", "verdict": "rejected", "reason": "verification_failed"}
    his_done = {"source": "his", "outcome": "done"}
    before = _scrape(platform)
    # Twelve requests over three gunicorn workers: each counts in its own file, /metrics adds them up.
    for _ in range(12):
        reply = requests.post(f"{platform.url}/notify/wechat/demo/pay", data=_forged_notification(sandbox),
                              headers={"Content-Type": "text/xml"}, timeout=10)
        assert reply.status_code == 200 and "FAIL" in reply.text
    # A reconciliation run is done by an rq worker: its count is in the worker's file.
    username, password = make_user(rt, "finance")
    token = requests.post(f"{platform.url}/api/admin/v1/auth/login", timeout=10,
                          json={"username": username, "password": password}).json()["token"]
    started = requests.post(f"{platform.url}/api/admin/v1/reconciliation/runs", timeout=10,
                            headers={"Authorization": f"Bearer {token}"},
                            json={"date": (date.today() - timedelta(days=500)).isoformat(), "source": "his"})
    assert started.status_code in (200, 201, 202), started.text
    wait_until(lambda: _total(_scrape(platform), "hpay_reconciliation_runs_total", **his_done)
               > _total(before, "hpay_reconciliation_runs_total", **his_done), timeout=60,
               what="the worker's reconciliation count in /metrics")
    after = _scrape(platform)
    assert _total(after, "hpay_notifications_total", **forged) - _total(before, "hpay_notifications_total",
                                                                         **forged) == 12
    assert _total(after, "hpay_http_requests_total", endpoint="notify.wechat_pay", status="200") - _total(
        before, "hpay_http_requests_total", endpoint="notify.wechat_pay", status="200") == 12
    assert _total(after, "hpay_queue_jobs", state="failed") >= 0
    assert 0 <= _total(after, "hpay_dispatcher_heartbeat_age_seconds") < 10


def _json_lines(text: str) -> list[dict]:
    lines = []
    for line in text.splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            continue
    return lines


def test_worker_lines_name_the_job_and_the_order_and_cron_lines_the_scheduler(platform, sandbox, rt):
    card_no = own_card(sandbox)
    client = client_with_card(platform, sandbox, "wechat", "ops-logs", card_no)
    order = new_topup(client, card_no, 1200)
    # The HIS refuses the first recharge it is sent: the worker logs the failed try.
    requests.post(f"{sandbox.url}/sandbox/his/fail-next", json={"path": "/his/recharges", "count": 1},
                  timeout=10).raise_for_status()
    try:
        patient_pays(client, start_payment(client, order["order_no"]))
        wait_for_status(rt, order["order_no"], "completed")
    finally:
        requests.delete(f"{sandbox.url}/sandbox/his/fail-next", timeout=10)
    lines = [line for worker in platform.workers for line in _json_lines(worker.output())]
    [failed_try] = [line for line in lines if line.get("order_no") == order["order_no"]
                    and line.get("job") == "workers.jobs.send_his_write" and "failed (attempt 1)" in line["message"]]
    assert failed_try["row"].startswith("his_outbox:") and len(failed_try["job_id"]) >= 16
    assert failed_try["level"] == "WARNING"
    dispatched = [line for line in lines if line.get("job") == "workers.jobs.dispatch_due_work"]
    assert dispatched and all("order_no" not in line for line in dispatched)
    cron_lines = _json_lines(platform.cron.output())
    assert any(line.get("scheduler") and "cron scheduler" in line["message"] for line in cron_lines)
