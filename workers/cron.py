"""`python -m workers.cron`: rq's cron scheduler, running the periodic jobs. Its log lines carry its name."""
from __future__ import annotations

import logging
import os

from rq.cron import CronScheduler

from app.services.reconciliation import daily_cron
from config import metrics_files
from config.logging import log_context
from workers import jobs
from workers.context import runtime

log = logging.getLogger(__name__)


def build_scheduler() -> CronScheduler:
    rt = runtime()
    interval = rt.settings.DISPATCH_INTERVAL_S
    scheduler = CronScheduler(connection=rt.redis, name=f"{rt.settings.QUEUE_PREFIX}-cron-{os.getpid()}")
    scheduler.register(jobs.dispatch_due_work, rt.queue_name("default"), interval=interval,
                       job_timeout=120, result_ttl=60, ttl=max(10, 5 * interval))
    poll_every = rt.settings.BILL_POLL_INTERVAL_S
    scheduler.register(jobs.poll_bills, rt.queue_name("default"), interval=poll_every, job_timeout=max(60, poll_every),
                       result_ttl=60, ttl=max(10, 5 * poll_every))
    scheduler.register(jobs.reconcile_daily, rt.queue_name("default"), cron=daily_cron(rt.settings.RECONCILE_AT),
                       job_timeout=3600, result_ttl=7 * 86400)
    return scheduler


def main() -> None:
    metrics_files.prepare()
    scheduler = build_scheduler()
    with log_context(scheduler=scheduler.name):
        log.info("cron scheduler %s started: the dispatcher every %s s, reconciliation daily at %s", scheduler.name,
                 runtime().settings.DISPATCH_INTERVAL_S, runtime().settings.RECONCILE_AT)
        scheduler.start()


if __name__ == "__main__":
    main()
