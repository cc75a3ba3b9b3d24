"""Faults from the sandbox and the platform's own processes: no payment lost, none counted twice.

Real PostgreSQL, Redis, gunicorn, rq workers and cron; the sandbox's faults are global, so every
test clears them, and every stopped process is started again, whatever the outcome.
"""
from __future__ import annotations

import signal

import pytest
from rq import Worker
from rq.exceptions import NoSuchJobError

from app.db.models import HisOutbox
from tests.e2e.fault_helpers import (
    assert_applied_once,
    card_balance,
    client_with_card,
    ensure_running,
    inbox_rows,
    new_bill_order,
    new_topup,
    own_card,
    paid_events,
    patient_pays,
    sandbox_faults,
    set_faults,
    start_payment,
    stopped,
    wait_for_status,
)
from tests.e2e.helpers import order_row, outbox_rows, wait_until


@pytest.mark.parametrize("channel", ["wechat", "alipay"])
def test_dropped_notification_is_found_by_querying(platform, sandbox, rt, channel):
    card_no = own_card(sandbox)
    client = client_with_card(platform, sandbox, channel, "fault-drop", card_no)
    order = new_topup(client, card_no, 1500)
    before = card_balance(sandbox, card_no)
    with sandbox_faults(sandbox, notify_drop_rate=1):
        pay = start_payment(client, order["order_no"])
        patient_pays(client, pay)
        wait_for_status(rt, order["order_no"], "completed")
    dropped = [e for e in client.sandbox_call("GET", "/sandbox/log", params={"limit": 2000})
               if e["kind"] == "notify_dropped" and e["ref"] in (pay["out_trade_no"], pay.get("trade_no"))]
    assert len(dropped) == 1, "the sandbox should have dropped the payment notification"
    assert inbox_rows(rt, pay["out_trade_no"]) == []
    [event] = paid_events(rt, order["order_no"])
    assert event.reason == "paid via query"
    assert_applied_once(rt, client, order)
    assert card_balance(sandbox, card_no) == before + 1500


def test_his_failing_half_its_writes_still_writes_each_once(platform, sandbox, rt):
    card_no = own_card(sandbox)
    wechat = client_with_card(platform, sandbox, "wechat", "fault-his-wx", card_no)
    alipay = client_with_card(platform, sandbox, "alipay", "fault-his-ali", card_no)
    # Orders are placed first: placing a bill order reads the HIS, which the fault would refuse.
    orders = [(wechat, new_topup(wechat, card_no, 1100)), (alipay, new_topup(alipay, card_no, 2200)),
              (wechat, new_topup(wechat, card_no, 3300)), (wechat, new_bill_order(wechat, sandbox, card_no, 1234)),
              (alipay, new_bill_order(alipay, sandbox, card_no, 4321))]
    before = card_balance(sandbox, card_no)

    def every_write_failed_once() -> bool:
        rows = [outbox_rows(rt, o["order_no"]) for _, o in orders]
        return all(len(r) == 1 and r[0].attempts >= 1 and r[0].last_error for r in rows)

    with sandbox_faults(sandbox, his_error_rate=1):
        for client, order in orders:
            patient_pays(client, start_payment(client, order["order_no"]))
        # Every write fails at least once, so each of them goes through the retry path...
        wait_until(every_write_failed_once, timeout=60, what="a failed try of every write")
        # ...then the HIS fails half of them, and the retries get through.
        set_faults(sandbox, his_error_rate=0.5)
        for _, order in orders:
            wait_for_status(rt, order["order_no"], "completed")
    for client, order in orders:
        assert_applied_once(rt, client, order)
    assert all(r.attempts >= 2 for _, o in orders for r in outbox_rows(rt, o["order_no"]))
    assert card_balance(sandbox, card_no) == before + 1100 + 2200 + 3300


def _busy_his_worker(platform, rt) -> tuple[int, int] | None:
    """(index of the platform worker, outbox id) of a worker sending a HIS write right now."""
    pids = {w.proc.pid: i for i, w in enumerate(platform.workers) if w.proc and w.proc.poll() is None}
    for worker in Worker.all(connection=rt.redis):
        if worker.pid not in pids:
            continue
        try:
            job = worker.get_current_job()
        except NoSuchJobError:  # the job finished while we looked
            continue
        if job is not None and job.func_name == "workers.jobs.send_his_write":
            return pids[worker.pid], job.args[0]
    return None


def test_worker_killed_mid_job_loses_no_write(platform, sandbox, rt):
    card_no = own_card(sandbox)
    client = client_with_card(platform, sandbox, "wechat", "fault-kill", card_no)
    amounts = [1000, 2000, 3000, 4000]
    orders = [new_topup(client, card_no, amount) for amount in amounts]
    before = card_balance(sandbox, card_no)
    killed = None
    try:
        with sandbox_faults(sandbox, his_latency_ms=3000):
            for order in orders:
                patient_pays(client, start_payment(client, order["order_no"]))
            index, outbox_id = wait_until(lambda: _busy_his_worker(platform, rt), timeout=60, interval=0.1,
                                          what="a worker in the middle of a HIS write")
            killed = platform.workers[index]
            killed.kill(signal.SIGKILL)
            killed.proc.wait(10)
            with rt.db.session() as session:
                assert session.get(HisOutbox, outbox_id).status == "pending", "the job ended before the kill"
            killed.start()
            for order in orders:
                wait_for_status(rt, order["order_no"], "completed")
    finally:
        if killed is not None:
            ensure_running(killed)
    with rt.db.session() as session:
        assert session.get(HisOutbox, outbox_id).status == "sent"
    for order in orders:
        assert_applied_once(rt, client, order)
    assert card_balance(sandbox, card_no) == before + sum(amounts)


def test_redis_restart_between_notification_and_processing(platform, sandbox, rt, redis_server):
    card_no = own_card(sandbox)
    client = client_with_card(platform, sandbox, "wechat", "fault-redis", card_no)
    order = new_topup(client, card_no, 2500)
    before = card_balance(sandbox, card_no)
    pay = start_payment(client, order["order_no"])
    with stopped(platform.cron, *platform.workers):
        # Redis goes down before the notification arrives and comes back empty (nothing is persisted):
        # ingestion needs no Redis, so the notification is stored and acknowledged all the same.
        redis_server.stop_process()
        try:
            patient_pays(client, pay)
            [row] = wait_until(lambda: inbox_rows(rt, pay["out_trade_no"]), timeout=60,
                               what="the stored notification")
            assert row.status == "received"
            wait_until(lambda: any(e["kind"] == "notify_attempt" and e["ref"] == pay["out_trade_no"] and e["acked"]
                                   for e in client.sandbox_call("GET", "/sandbox/log", params={"limit": 2000})),
                       timeout=60, what="the sandbox to get SUCCESS")
            assert order_row(rt, order["order_no"]).status == "created"
        finally:
            redis_server.start()
        assert rt.redis.dbsize() == 0, "the restarted Redis should hold no queued job"
    wait_for_status(rt, order["order_no"], "completed")
    [row] = inbox_rows(rt, pay["out_trade_no"])
    assert row.status == "processed"
    assert_applied_once(rt, client, order)
    assert card_balance(sandbox, card_no) == before + 2500
