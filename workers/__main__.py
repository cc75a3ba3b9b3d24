"""`python -m workers [--burst]`: an rq worker on every platform queue, with rq's scheduler.

It is rq's SimpleWorker: jobs run in the worker process, reusing its database and
HIS/channel connections, instead of a fork per job (our jobs are short and every
one is safe to run again, so a crash costs a lease period, not a payment).
"""
from __future__ import annotations

import argparse

from rq import SimpleWorker

import workers.jobs  # noqa: F401  (the job code is loaded once, before the first job)
from app.runtime import QUEUE_NAMES
from workers.context import runtime


def main() -> None:
    parser = argparse.ArgumentParser(prog="workers", description=__doc__)
    parser.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    parser.add_argument("--no-scheduler", action="store_true", help="leave scheduling to another worker")
    args = parser.parse_args()
    rt = runtime()
    queues = [rt.queue(name) for name in QUEUE_NAMES]
    worker = SimpleWorker(queues, connection=rt.redis)
    worker.work(burst=args.burst, with_scheduler=not args.no_scheduler)


if __name__ == "__main__":
    main()
