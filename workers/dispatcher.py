"""The dispatcher: every second, hand due work from the database to the rq queues.

The database is the source of truth for what is owed (inbox rows to process,
HIS writes to send, payments to query, expired orders to close, refunds to send
or follow). Each due row is leased (its next-attempt time pushed forward) and
enqueued; a job lost to a crash or a Redis restart comes back when its lease
runs out, and every job is safe to run twice.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session

from app.db.types import utcnow
from app.runtime import Runtime
from app.services.booking import no_shows, redemption, registration_sync
from app.services.his import delivery
from app.services.payments import attempts, notifications
from app.services.refunds import executor

log = logging.getLogger(__name__)

BATCH = 500


@dataclass(frozen=True)
class Source:
    name: str
    queue: str
    job: str
    due: Callable[[Session, object, int], list[int]]
    lease: Callable[[Session, list[int], object], list[int]]


SOURCES = [
    Source("inbox", "notifications", "workers.jobs.process_notification", notifications.due_ids,
           notifications.lease),
    Source("his_outbox", "his", "workers.jobs.send_his_write", delivery.due_ids, delivery.lease),
    Source("payment_queries", "channel", "workers.jobs.query_payment", attempts.due_attempt_ids,
           attempts.lease_attempts),
    Source("expired_orders", "channel", "workers.jobs.expire_order", attempts.due_expired_order_ids,
           attempts.lease_orders),
    Source("refunds", "channel", "workers.jobs.advance_refund", executor.due_ids, executor.lease),
    Source("no_shows", "default", "workers.jobs.mark_no_show", no_shows.due_ids, no_shows.lease),
    Source("registration_syncs", "his", "workers.jobs.sync_registration", registration_sync.due_ids,
           registration_sync.lease),
    Source("extra_charges", "his", "workers.jobs.send_extra_charge", redemption.due_ids, redemption.lease),
]


def dispatch(rt: Runtime) -> dict[str, int]:
    counts = {}
    for source in SOURCES:
        now = utcnow()
        # Leases are real seconds: a job needs the same wall time however compressed the retry schedule is.
        until = now + timedelta(seconds=rt.settings.JOB_LEASE_S)
        with rt.db.session() as session:
            claimed = source.lease(session, source.due(session, now, BATCH), until)
        if claimed:
            queue = rt.queue(source.queue)
            with rt.redis.pipeline() as pipe:
                for row_id in claimed:
                    queue.enqueue(source.job, row_id, pipeline=pipe, job_timeout=300,
                                  failure_ttl=7 * 24 * 3600, result_ttl=600)
                pipe.execute()
        counts[source.name] = len(claimed)
    if any(counts.values()):
        log.info("dispatched %s", counts)
    return counts
