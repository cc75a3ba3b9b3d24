"""Steps shared by the queue-visibility tests: a real failed rq job (a worker process runs a job that raises), and
HIS writes flagged the way the platform flags them (sent while the HIS fails, past the retry horizon)."""
from __future__ import annotations

import os
import secrets
import subprocess
import sys
from datetime import timedelta

from rq.job import Job, JobStatus
from sqlalchemy import select, update

from app.db.models import HisOutbox, Order
from app.db.types import utcnow
from app.domain.his_writes import HisWriteKind
from app.services.his import delivery, record_write
from tests.e2e.fault_helpers import sandbox_faults
from tests.processes import ROOT

# A kind no package registers: sending it raises UnknownWriteKind, which fails the job.
UNKNOWN_KIND = "ops_test_unknown_kind"


def run_worker_burst(settings) -> str:
    """`python -m workers --burst` on the session's database and Redis: it works the queues empty and exits."""
    env = {**os.environ, "HPAY_ENV": "test", "HPAY_DATABASE_URL": settings.DATABASE_URL,
           "HPAY_REDIS_URL": settings.REDIS_URL, "HPAY_SECRET_KEY": settings.SECRET_KEY,
           "HPAY_SANDBOX_URL": settings.SANDBOX_URL, "HPAY_QUEUE_PREFIX": settings.QUEUE_PREFIX,
           "HPAY_LOG_LEVEL": "WARNING"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    done = subprocess.run([sys.executable, "-m", "workers", "--burst", "--no-scheduler"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stderr


def failed_job(rt, clinic_id: int) -> tuple[str, int]:
    """A job of the clinic's that a worker ran and that failed: (job id, its HIS outbox row). The row is then
    settled (rejected), so no dispatcher hands it out again and a requeued job finds nothing left to do."""
    with rt.db.session() as session:
        row = HisOutbox(clinic_id=clinic_id, kind=UNKNOWN_KIND, idempotency_key=f"ops-test:{secrets.token_hex(8)}",
                        payload={}, status="pending", attempts=0, next_attempt_at=utcnow() + timedelta(days=1))
        session.add(row)
        session.flush()
        row_id = row.id
    job = rt.queue("his").enqueue("workers.jobs.send_his_write", row_id, failure_ttl=7 * 24 * 3600)
    output = run_worker_burst(rt.settings)
    assert Job.fetch(job.id, connection=rt.redis).get_status() == JobStatus.FAILED, output[-3000:]
    with rt.db.session() as session:
        session.execute(update(HisOutbox).where(HisOutbox.id == row_id).values(status="rejected"))
    return job.id, row_id


def _age(rt, row_id: int) -> None:
    """As if the write had been failing for two days (past the 24 h retry horizon)."""
    with rt.db.session() as session:
        session.execute(update(HisOutbox).where(HisOutbox.id == row_id)
                        .values(created_at=utcnow() - timedelta(days=2)))


def flag_order_write(rt, sandbox, order_no: str) -> int:
    """Flag the order's pending HIS write as the platform does: its retry horizon passed and the HIS fails it."""
    with rt.db.session() as session:
        row_id = session.scalar(select(HisOutbox.id).join(Order, Order.id == HisOutbox.order_id)
                                .where(Order.order_no == order_no, HisOutbox.status == "pending"))
    _age(rt, row_id)
    with sandbox_faults(sandbox, his_error_rate=1):
        assert delivery.send(rt, row_id) == "flagged"
    return row_id


def flag_unreachable_write(rt, order_no: str) -> int:
    """A registration revert of an order of a clinic whose HIS address answers nothing, flagged as above."""
    with rt.db.session() as session:
        order = session.scalar(select(Order).where(Order.order_no == order_no))
        row = record_write(session, clinic_id=order.clinic_id, order_id=order.id,
                           kind=HisWriteKind.REGISTRATION_REVERT, key=f"{order_no}:ops-test:{secrets.token_hex(4)}",
                           payload={})
        session.flush()
        row_id = row.id
    _age(rt, row_id)
    assert delivery.send(rt, row_id) == "flagged"
    return row_id
