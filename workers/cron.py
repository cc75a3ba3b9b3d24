"""`python -m workers.cron`: rq's cron scheduler, running the periodic jobs."""
from __future__ import annotations

import os

from rq.cron import CronScheduler

from workers import jobs
from workers.context import runtime

DISPATCH_INTERVAL_S = int(os.environ.get("HPAY_DISPATCH_INTERVAL_S", "1"))


def build_scheduler() -> CronScheduler:
    rt = runtime()
    scheduler = CronScheduler(connection=rt.redis, name=f"{rt.settings.QUEUE_PREFIX}-cron-{os.getpid()}")
    scheduler.register(jobs.dispatch_due_work, rt.queue_name("default"), interval=DISPATCH_INTERVAL_S,
                       job_timeout=120, result_ttl=60, ttl=max(10, 5 * DISPATCH_INTERVAL_S))
    return scheduler


def main() -> None:
    build_scheduler().start()


if __name__ == "__main__":
    main()
