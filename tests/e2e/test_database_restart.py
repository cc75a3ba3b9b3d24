"""Chaos: PostgreSQL restarted in the middle of 90 payments through the real platform (gunicorn, rq workers, cron,
the sandbox's channels and HIS). Every answer in that window is a 503 with Retry-After (never a 500), the
connections recover by themselves, and every payment the sandbox made ends applied exactly once: the order
completed once, one HIS write, one record at the HIS.

The platform here has a PostgreSQL server of its own (the shared one is never restarted) and its own Redis
database (its queues and rate limits stay apart from the shared platform's).
"""
from __future__ import annotations

import secrets
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest
import requests

from app.cli.demo import seed_demo
from app.db.migrate import upgrade
from app.runtime import Runtime
from config.settings import TestSettings
from tests.conftest import PlatformStack, _create_database
from tests.e2e.fault_helpers import assert_applied_once, client_with_card, own_card, patient_pays, wait_for_status
from tests.servers import PostgresServer

CLIENTS = 6
PAYMENTS_EACH = 15
OUTAGE_S = 2.0
RESTART_AFTER = 30  # payments started before the server goes down


@dataclass
class Answers:
    """Every answer the platform gave the patients' calls: (method, path, status, Retry-After)."""

    seen: list[tuple[str, str, int, str | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, method: str, path: str, resp: requests.Response) -> None:
        with self.lock:
            self.seen.append((method, path, resp.status_code, resp.headers.get("Retry-After")))


@pytest.fixture(scope="module")
def chaos(redis_url, sandbox, secret_key):
    server = PostgresServer()
    url = _create_database(server.start(), "hpay_chaos")
    upgrade(url)
    own_redis = redis_url.rsplit("/", 1)[0] + "/1"
    rt = Runtime(TestSettings(DATABASE_URL=url, REDIS_URL=own_redis, SANDBOX_URL=sandbox.url,
                              PUBLIC_BASE_URL="http://127.0.0.1:1", SECRET_KEY=secret_key))
    rt.redis.flushdb()
    seed_demo(rt, sandbox.url)
    stack = PlatformStack(url, own_redis, sandbox.url, secret_key).start()
    yield server, stack, rt
    stack.stop()
    rt.close()
    server.stop()


def _call(answers: Answers, client, method: str, path: str, deadline: float, **kwargs) -> dict:
    """The mini-program's call, asked again after a 503 (as a client honouring Retry-After would, sooner)."""
    while True:
        resp = requests.request(method, f"{client.platform}/api/mp/v1{path}", timeout=30,
                                headers={"Authorization": f"Bearer {client.token}", **kwargs.pop("headers", {})},
                                **kwargs)
        answers.add(method, path, resp)
        if resp.status_code != 503:
            assert resp.status_code in (200, 201), (method, path, resp.status_code, resp.text[:300])
            return resp.json()
        assert time.monotonic() < deadline, f"{method} {path} still 503 after the deadline"
        time.sleep(0.5)


def _pay_one(answers: Answers, client, card_no: str, started: threading.Semaphore) -> dict:
    deadline = time.monotonic() + 120
    key = uuid.uuid4().hex
    body = {"type": "topup", "card_no": card_no, "amount_fen": 100 + secrets.randbelow(900), "channel": "wechat"}
    order = _call(answers, client, "POST", "/orders", deadline, json=body, headers={"Idempotency-Key": key})
    started.release()
    paying = _call(answers, client, "POST", f"/orders/{order['order_no']}/pay", deadline)
    patient_pays(client, paying)
    _call(answers, client, "GET", f"/orders/{order['order_no']}", deadline)
    return order


def test_a_database_restart_under_load_answers_503_and_loses_no_payment(chaos, sandbox):
    server, stack, rt = chaos
    clients = []
    for n in range(CLIENTS):
        card_no = own_card(sandbox)
        clients.append((client_with_card(stack, sandbox, "wechat", f"chaos-{n}", card_no), card_no))
    answers, started = Answers(), threading.Semaphore(0)

    def restart_midway():
        for _ in range(RESTART_AFTER):
            started.acquire(timeout=120)
        server.pause()
        time.sleep(OUTAGE_S)
        server.resume()

    def payments_of(client, card_no) -> list[dict]:
        return [_pay_one(answers, client, card_no, started) for _ in range(PAYMENTS_EACH)]

    with ThreadPoolExecutor(max_workers=CLIENTS + 1) as pool:
        restarter = pool.submit(restart_midway)
        batches = [pool.submit(payments_of, client, card_no) for client, card_no in clients]
        orders = [(client, order) for (client, _), batch in zip(clients, batches, strict=True)
                  for order in batch.result()]
        restarter.result()

    statuses = [status for _, _, status, _ in answers.seen]
    assert 500 not in statuses and all(status < 500 or status == 503 for status in statuses)
    unavailable = [(method, path, retry_after) for method, path, status, retry_after in answers.seen if status == 503]
    assert unavailable, "no call met the outage: the restart came too late or too early"
    assert all(retry_after and int(retry_after) >= 1 for _, _, retry_after in unavailable), unavailable
    assert len(orders) == CLIENTS * PAYMENTS_EACH
    for _, order in orders:
        wait_for_status(rt, order["order_no"], "completed", timeout=120)
    for client, order in orders:
        assert_applied_once(rt, client, order)
