"""The plumbing of operations: the metrics files of dead processes are cleaned, a job's log lines carry the job
(and a caller's own `extra` still wins), and production refuses to leave /metrics unconfigured."""
from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

from config import metrics_files
from config.logging import JsonFormatter, PlainFormatter, _record_with_request_id, log_context
from config.settings import ConfigurationError, ProductionSettings

SAFE_PRODUCTION = {
    "HPAY_SECRET_KEY": "x" * 48,
    "HPAY_DATABASE_URL": "postgresql+psycopg://pay@db/pay",
    "HPAY_PUBLIC_BASE_URL": "https://pay.example-hospital.cn",
    "HPAY_DATA_KEYS": "bm90LWEtcmVhbC1rZXktanVzdC0zMi1ieXRlcyEhISE=",
}


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_prepare_removes_only_the_files_of_this_hosts_dead_processes(tmp_path):
    dead, alive = _dead_pid(), metrics_files.identifier()
    dead_id = metrics_files.identifier(dead)
    names = [f"counter_{dead_id}.db", f"histogram_{dead_id}.db", f"gauge_livesum_{dead_id}.db",
             f"counter_{alive}.db", "counter_otherhost-1.db", "counter_other-host.example-7.db", "notes.txt"]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    removed = metrics_files.prepare(tmp_path)
    assert sorted(removed) == sorted(names[:3])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[3:])


def test_a_dead_process_loses_its_live_gauges_and_keeps_its_counters(tmp_path):
    pid = _dead_pid()
    kept, gone = f"counter_{metrics_files.identifier(pid)}.db", f"gauge_liveall_{metrics_files.identifier(pid)}.db"
    (tmp_path / kept).write_bytes(b"")
    (tmp_path / gone).write_bytes(b"")
    metrics_files.mark_dead(pid, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [kept]


def _record(message: str, **extra) -> logging.LogRecord:
    record = _record_with_request_id("hpay.test", logging.WARNING, __file__, 1, message, (), None)
    record.__dict__.update(extra)
    return record


def test_a_jobs_lines_carry_the_job_and_its_order_and_nothing_after_it():
    with log_context(job="workers.jobs.send_his_write", job_id="abc123", row="his_outbox:7", order_no="T2026"):
        inside = _record("HIS write failed for 13812345678")
        rq_line = _record("job failed", job_id="abc123", queue="hpay-his")  # rq's own `extra`
    after = _record("idle")
    line = json.loads(JsonFormatter().format(inside))
    assert (line["job"], line["job_id"], line["row"], line["order_no"]) == (
        "workers.jobs.send_his_write", "abc123", "his_outbox:7", "T2026")
    assert line["message"] == "HIS write failed for 138****5678"
    assert json.loads(JsonFormatter().format(rq_line))["queue"] == "hpay-his"
    assert "job" not in json.loads(JsonFormatter().format(after))
    plain = PlainFormatter("[%(request_id)s%(log_context)s] %(message)s").format(inside)
    assert plain == "[- job=workers.jobs.send_his_write job_id=abc123 row=his_outbox:7 order_no=T2026] " \
                    "HIS write failed for 138****5678"


def test_a_logger_call_with_extra_fields_of_the_same_names_still_logs():
    logger = logging.getLogger("hpay.test.extra")
    previous = logging.getLogRecordFactory()
    logging.setLogRecordFactory(_record_with_request_id)
    try:
        with log_context(job_id="abc123"):
            record = logger.makeRecord(logger.name, logging.ERROR, __file__, 1, "x", (), None,
                                       extra={"job_id": "abc123"})
    finally:
        logging.setLogRecordFactory(previous)
    assert record.job_id == "abc123"


def test_production_says_who_reads_metrics():
    with pytest.raises(ConfigurationError, match="HPAY_METRICS_TOKEN"):
        ProductionSettings.from_env(SAFE_PRODUCTION)
    assert ProductionSettings.from_env({**SAFE_PRODUCTION, "HPAY_METRICS_LOOPBACK_ONLY": "true"}).METRICS_LOOPBACK_ONLY
    assert ProductionSettings.from_env({**SAFE_PRODUCTION, "HPAY_METRICS_TOKEN": "m" * 40}).METRICS_TOKEN
    with pytest.raises(ConfigurationError, match="HPAY_METRICS_TOKEN must be at least"):
        ProductionSettings.from_env({**SAFE_PRODUCTION, "HPAY_METRICS_TOKEN": "short"})
