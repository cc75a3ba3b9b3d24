"""`python -m workers [--burst]`: an rq worker on every platform queue, with rq's scheduler.

It is rq's SimpleWorker: jobs run in the worker process, reusing its database and
HIS/channel connections, instead of a fork per job (our jobs are short and every
one is safe to run again, so a crash costs a lease period, not a payment). Every
line a job logs names the job and the row it works on (workers/logcontext.py).
"""
from __future__ import annotations

import argparse

import workers.jobs  # noqa: F401  (the job code is loaded once, before the first job)
from app.runtime import QUEUE_NAMES
from config import metrics_files
from workers.context import runtime
from workers.logcontext import ContextWorker


def main() -> None:
    parser = argparse.ArgumentParser(prog="workers", description=__doc__)
    parser.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    parser.add_argument("--no-scheduler", action="store_true", help="leave scheduling to another worker")
    args = parser.parse_args()
    metrics_files.prepare()
    rt = runtime()
    queues = [rt.queue(name) for name in QUEUE_NAMES]
    worker = ContextWorker(queues, connection=rt.redis)
    worker.work(burst=args.burst, with_scheduler=not args.no_scheduler)


if __name__ == "__main__":
    main()
