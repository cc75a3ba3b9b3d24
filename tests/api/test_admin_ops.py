"""Queue visibility for administrators (/api/admin/v1/ops): queue depths and backlogs, failed jobs with their error
and a requeue, HIS writes flagged for a person with their history and a retry; each clinic's administrator sees
only their clinics' rows, and every requeue and retry is audited."""
from __future__ import annotations

import secrets
from datetime import datetime, timedelta, timezone
from functools import cache

import requests
from rq.job import Job, JobStatus
from sqlalchemy import select

from app.db.models import AuditEvent, HisOutbox, StatusEvent
from app.services.his import delivery
from tests.api.admin_helpers import ADMIN, clinic_id, order_status, other_clinic, paid_booking, staff_headers
from tests.api.ops_helpers import UNKNOWN_KIND, failed_job, flag_order_write, flag_unreachable_write
from tests.api.test_admin_role_matrix import Call, Case
from workers.dispatcher import LEASES

OPS = f"{ADMIN}/ops"


@cache
def _failed_job_of(rt, clinic_code: str) -> tuple[str, int]:
    return failed_job(rt, clinic_id(rt, clinic_code))


@cache
def _flagged_of_other(rt, order_no: str) -> int:
    return flag_unreachable_write(rt, order_no)


def _flagged_of_demo(w) -> int:
    return flag_order_write(w.rt, w.sandbox, w.paid().order_no)


ROLE_MATRIX_CASES = {
    "admin_ops.queues": Case(lambda w: Call("GET", "/ops/queues"), None),
    "admin_ops.failed_jobs": Case(
        lambda w: Call("GET", "/ops/failed-jobs", {"query_string": {"queue": "his"}}),
        lambda w: Call("GET", "/ops/failed-jobs", {"query_string": {"clinic_code": w.other.code}})),
    "admin_ops.requeue_job": Case(
        lambda w: Call("POST", f"/ops/failed-jobs/{failed_job(w.rt, clinic_id(w.rt, 'demo'))[0]}/requeue"),
        lambda w: Call("POST", f"/ops/failed-jobs/{_failed_job_of(w.rt, w.other.code)[0]}/requeue")),
    "admin_ops.flagged": Case(
        lambda w: Call("GET", "/ops/flagged"),
        lambda w: Call("GET", "/ops/flagged", {"query_string": {"clinic_code": w.other.code}})),
    "admin_ops.retry_flagged": Case(
        lambda w: Call("POST", f"/ops/flagged/{_flagged_of_demo(w)}/retry", {"json": {"note": "矩阵测试"}}),
        lambda w: Call("POST", f"/ops/flagged/{_flagged_of_other(w.rt, w.other.order_no)}/retry", {"json": {}})),
}


def test_queues_show_depths_every_table_of_work_and_the_dispatcher(client, rt, demo_clinic):
    headers, _ = staff_headers(client, rt, "admin")
    resp = client.get(f"{OPS}/queues", headers=headers)
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert [q["name"] for q in body["queues"]] == ["notifications", "his", "channel", "default"]
    assert all(q[state] >= 0 for q in body["queues"] for state in ("queued", "started", "failed", "scheduled"))
    assert [w["name"] for w in body["work"]] == [spec.name for spec in LEASES]
    assert body["dispatcher"]["status"] in ("ok", "unknown") or body["dispatcher"]["status"].startswith("stale")


def test_a_failed_job_shows_its_error_and_is_requeued_once_by_its_clinics_admin(client, rt, demo_clinic):
    job_id, row_id = failed_job(rt, clinic_id(rt))
    admin, admin_name = staff_headers(client, rt, "admin")
    listed = client.get(f"{OPS}/failed-jobs", query_string={"queue": "his", "limit": 200}, headers=admin).get_json()
    [job] = [j for j in listed["items"] if j["id"] == job_id]
    assert job["function"] == "workers.jobs.send_his_write" and job["args"] == str(row_id)
    assert job["row_id"] == row_id and job["clinic_code"] == "demo" and job["queue"] == "his"
    assert "UnknownWriteKind" in job["error"] and UNKNOWN_KIND in job["error"] and job["failed_at"]

    # An administrator of another clinic neither sees nor requeues it.
    stranger, _ = staff_headers(client, rt, "admin", clinics=(other_clinic(rt).code,))
    theirs = client.get(f"{OPS}/failed-jobs", query_string={"limit": 200}, headers=stranger).get_json()
    assert job_id not in [j["id"] for j in theirs["items"]]
    refused = client.post(f"{OPS}/failed-jobs/{job_id}/requeue", headers=stranger)
    assert (refused.status_code, refused.get_json()["error"]) == (404, "job_not_found")

    requeued = client.post(f"{OPS}/failed-jobs/{job_id}/requeue", headers=admin)
    assert requeued.status_code == 200, requeued.get_json()
    # Back to be run: queued, or already taken by a worker of a platform running in this session (its row is
    # settled, so it finishes with nothing to do). A worker that popped it from the queue may not have marked it
    # started yet, so the status, not the queue's list, is what tells.
    status = Job.fetch(job_id, connection=rt.redis).get_status()
    assert status in (JobStatus.QUEUED, JobStatus.STARTED, JobStatus.FINISHED), status
    assert job_id not in rt.queue("his").failed_job_registry.get_job_ids()
    again = client.post(f"{OPS}/failed-jobs/{job_id}/requeue", headers=admin)
    assert (again.status_code, again.get_json()["error"]) == (404, "job_not_found")
    with rt.db.session() as session:
        [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "job_requeued",
                                                           AuditEvent.target_id == job_id))
        assert event.actor_name == admin_name and event.before["function"] == "workers.jobs.send_his_write"


def test_a_job_id_that_is_not_one_is_not_found(client, rt, demo_clinic):
    admin, _ = staff_headers(client, rt, "admin")
    for job_id in ("no-such-job", "x" * 65, "../../etc"):
        resp = client.post(f"{OPS}/failed-jobs/{job_id}/requeue", headers=admin)
        assert resp.status_code == 404, job_id


def test_a_flagged_write_shows_its_history_and_a_retry_sends_it_once_the_his_recovers(client, sandbox, rt,
                                                                                     demo_clinic):
    paid = paid_booking(client, sandbox, rt)
    row_id = flag_order_write(rt, sandbox, paid.order_no)
    admin, admin_name = staff_headers(client, rt, "admin")
    listed = client.get(f"{OPS}/flagged", query_string={"limit": 200}, headers=admin).get_json()
    [write] = [w for w in listed["items"] if w["id"] == row_id]
    assert (write["kind"], write["status"], write["order_no"], write["clinic_code"]) == (
        "registration", "flagged", paid.order_no, "demo")
    assert write["attempts"] == 1 and "HisUnavailable" in write["last_error"] and write["flagged_at"]
    assert [(e["from_status"], e["to_status"]) for e in write["history"]] == [("pending", "flagged")]

    stranger, _ = staff_headers(client, rt, "admin", clinics=(other_clinic(rt).code,))
    assert row_id not in [w["id"] for w in client.get(f"{OPS}/flagged", headers=stranger).get_json()["items"]]
    assert client.post(f"{OPS}/flagged/{row_id}/retry", json={}, headers=stranger).status_code == 404
    staff, _ = staff_headers(client, rt, "staff")
    assert client.post(f"{OPS}/flagged/{row_id}/retry", json={}, headers=staff).status_code == 403

    retried = client.post(f"{OPS}/flagged/{row_id}/retry", json={"note": "HIS 已恢复"}, headers=admin)
    assert retried.status_code == 200, retried.get_json()
    assert retried.get_json()["status"] == "pending"
    assert [e["to_status"] for e in retried.get_json()["history"]] == ["flagged", "pending"]
    twice = client.post(f"{OPS}/flagged/{row_id}/retry", json={}, headers=admin)
    assert (twice.status_code, twice.get_json()["error"]) == (409, "his_write_not_flagged")

    # What a worker does next: the HIS answers now, and records the registration once.
    assert delivery.send(rt, row_id) == "sent"
    assert order_status(rt, paid.order_no) == "paid"
    records = requests.get(f"{sandbox.url}/sandbox/his/records", timeout=10,
                           params={"date": _today()}).json()
    assert [r["kind"] for r in records if r["order_no"] == paid.order_no] == ["registration"]
    with rt.db.session() as session:
        events = list(session.scalars(select(StatusEvent).where(StatusEvent.record_type == "HIS write",
                                                                StatusEvent.record_id == row_id)
                                      .order_by(StatusEvent.id)))
        assert [(e.to_status, e.actor) for e in events] == [("flagged", "system"), ("pending", f"staff:{admin_name}"),
                                                            ("sent", "system")]
        [audit] = session.scalars(select(AuditEvent).where(AuditEvent.action == "his_write_retried",
                                                           AuditEvent.target_id == str(row_id)))
        assert audit.actor_name == admin_name and audit.note == "HIS 已恢复" and audit.before["status"] == "flagged"
        assert session.get(HisOutbox, row_id).status == "sent"


def test_retrying_what_does_not_exist_is_404(client, rt, demo_clinic):
    admin, _ = staff_headers(client, rt, "admin")
    for outbox_id in (2**31 - 1, 987654321):
        resp = client.post(f"{OPS}/flagged/{outbox_id}/retry", json={"note": secrets.token_hex(2)}, headers=admin)
        assert (resp.status_code, resp.get_json()["error"]) == (404, "his_write_not_found")


def _today() -> str:
    return datetime.now(timezone(timedelta(hours=8))).date().isoformat()
