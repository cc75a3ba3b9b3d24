"""Queue visibility in the browser, against the running platform: a HIS write the HIS kept failing is flagged, shows
up for the clinic's admin with its history, and a retry sends it once the HIS is back; a job that failed shows its
error and, requeued once its cause is gone, runs to the end."""
from __future__ import annotations

import secrets
from datetime import timedelta

import requests
from rq.job import Job, JobStatus
from sqlalchemy import select, update

from app.db.models import AuditEvent, HisOutbox
from app.db.types import utcnow
from tests.api.admin_helpers import clinic_id
from tests.api.ops_helpers import UNKNOWN_KIND
from tests.browser.helpers import AdminApi, answer_box, open_menu, row, screenshot, success_toast
from tests.e2e.fault_helpers import (
    assert_applied_once,
    client_with_card,
    new_topup,
    own_card,
    patient_pays,
    start_payment,
    wait_for_status,
)
from tests.e2e.helpers import outbox_rows, wait_until


def _write_of(rt, order_no: str) -> HisOutbox | None:
    rows = outbox_rows(rt, order_no)
    return rows[0] if rows else None


def test_a_flagged_his_write_is_retried_from_the_console_once_the_his_recovers(console, platform, sandbox, rt,
                                                                              make_user):
    card_no = own_card(sandbox)
    client = client_with_card(platform, sandbox, "wechat", "ops-ui", card_no)
    order = new_topup(client, card_no, 1300)
    fail_next = f"{sandbox.url}/sandbox/his/fail-next"
    requests.post(fail_next, json={"path": "/his/recharges", "count": 100}, timeout=10).raise_for_status()
    try:
        patient_pays(client, start_payment(client, order["order_no"]))
        write = wait_until(lambda: (lambda w: w if w is not None and w.attempts >= 1 else None)(
            _write_of(rt, order["order_no"])), timeout=60, what="a failed try of the recharge")
        # A compressed retry horizon: as if the HIS had been failing this write for two days.
        with rt.db.session() as session:
            session.execute(update(HisOutbox).where(HisOutbox.id == write.id)
                            .values(created_at=utcnow() - timedelta(days=2)))
        wait_until(lambda: _write_of(rt, order["order_no"]).status == "flagged", timeout=60,
                   what="the recharge flagged for a person")
    finally:
        requests.delete(fail_next, timeout=10).raise_for_status()  # the HIS is back

    username, password = make_user("admin")
    page = console.sign_in(username, password)
    open_menu(page, "待处理 HIS 写入")
    flagged = row(page, "flagged-table", order["order_no"])
    flagged.wait_for()
    assert "充值入账" in flagged.inner_text() and "HisUnavailable" in flagged.inner_text()
    flagged.locator(".el-table__expand-icon").click()
    page.get_by_test_id("flagged-history").filter(has_text="需人工处理").first.wait_for()
    screenshot(page, "ops-flagged")
    flagged.get_by_test_id("retry-flagged").click()
    dialog = page.get_by_test_id("retry-dialog")
    dialog.wait_for()
    assert order["order_no"] in dialog.inner_text()
    page.get_by_test_id("retry-note").fill("HIS 已恢复")
    page.get_by_test_id("retry-confirm").click()
    success_toast(page, "已重新排队发送")
    row(page, "flagged-table", order["order_no"]).wait_for(state="detached")

    wait_for_status(rt, order["order_no"], "completed")
    assert_applied_once(rt, client, order)
    with rt.db.session() as session:
        [audit] = session.scalars(select(AuditEvent).where(AuditEvent.action == "his_write_retried",
                                                           AuditEvent.target_id == str(write.id)))
        assert audit.actor_name == username and audit.note == "HIS 已恢复"


def _failed_jobs_of(rt, row_id: int) -> list[str]:
    registry = rt.queue("his").failed_job_registry
    return [job.id for job in Job.fetch_many(registry.get_job_ids(), connection=rt.redis)
            if job is not None and job.args and job.args[0] == row_id]


def test_a_failed_job_shows_its_error_and_is_requeued_from_the_console(console, platform, rt, make_user):
    with rt.db.session() as session:
        stuck = HisOutbox(clinic_id=clinic_id(rt), kind=UNKNOWN_KIND, idempotency_key=f"ops-ui:{secrets.token_hex(8)}",
                          payload={}, status="pending", attempts=0, next_attempt_at=utcnow())
        session.add(stuck)
        session.flush()
        row_id = stuck.id
    # The platform's dispatcher hands it to a worker, whose job fails: no package knows this kind of write.
    job_id = wait_until(lambda: _failed_jobs_of(rt, row_id), timeout=60, what="the job to fail")[0]
    with rt.db.session() as session:  # its cause is dealt with: the write is settled, nothing is left to do
        session.execute(update(HisOutbox).where(HisOutbox.id == row_id).values(status="rejected"))

    username, password = make_user("admin")
    page = console.sign_in(username, password)
    open_menu(page, "任务队列")
    page.get_by_test_id("dispatcher-status").filter(has_text="正常").wait_for()
    failed = row(page, "failed-jobs-table", job_id)
    failed.wait_for()
    assert "UnknownWriteKind" in failed.get_by_test_id("failed-job-error").inner_text()
    assert f"workers.jobs.send_his_write({row_id})" in failed.inner_text()
    screenshot(page, "ops-queues")
    failed.get_by_test_id("requeue-job").click()
    assert "重新执行" in answer_box(page, "重新排队")
    success_toast(page, "已重新排队")

    wait_until(lambda: Job.fetch(job_id, connection=rt.redis).get_status() == JobStatus.FINISHED, timeout=60,
               what="the requeued job to run to the end")
    api = AdminApi(platform.url, username, password)
    assert job_id not in [j["id"] for j in api.get("/ops/failed-jobs", queue="his", limit=200)["items"]]
    page.get_by_test_id("ops-refresh").click()
    row(page, "failed-jobs-table", job_id).wait_for(state="detached")
