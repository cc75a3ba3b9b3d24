"""`python -m workers [--burst]`: an rq worker on every platform queue, with rq's scheduler."""
from __future__ import annotations

import argparse

from rq import Worker

from app.runtime import QUEUE_NAMES
from workers.context import runtime


def main() -> None:
    parser = argparse.ArgumentParser(prog="workers", description=__doc__)
    parser.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    parser.add_argument("--no-scheduler", action="store_true", help="leave scheduling to another worker")
    args = parser.parse_args()
    rt = runtime()
    queues = [rt.queue(name) for name in QUEUE_NAMES]
    worker = Worker(queues, connection=rt.redis)
    worker.work(burst=args.burst, with_scheduler=not args.no_scheduler)


if __name__ == "__main__":
    main()
