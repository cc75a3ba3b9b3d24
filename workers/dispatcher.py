"""The dispatcher: every second, hand due work from the database to the rq queues.

The database is the source of truth for what is owed (inbox rows to process, HIS writes to send, payments
to query, expired orders to close, refunds to send or follow, no-shows to mark, registrations to bring in
step, messages to push to patients). What is due is declared once, in `LEASES`: a model, its status column
and the statuses that are worked on, and the time column that says when a row is due. A due row is leased by
pushing that time forward (one conditional UPDATE per batch, so two dispatchers never both take a row) and
enqueued; a job lost to a crash or a Redis restart comes back when its lease runs out, and every job is safe
to run twice.
Each run that gets through writes the dispatcher's heartbeat (`/readyz`), and the same specs say what the
metrics and the administrators' queue screen measure as backlog (app.services.ops), so a new spec is covered.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from app.db.models import HisOutbox, MessagePush, NotificationInbox, Order, PaymentAttempt, Refund, RegistrationSync
from app.db.types import utcnow
from app.domain import orders as o
from app.domain.his_writes import HisWriteStatus, RegistrationSyncStatus
from app.domain.messaging import PushStatus
from app.domain.payments import InboxStatus, PaymentStatus
from app.domain.refunds import IN_FLIGHT
from app.runtime import Runtime
from app.services import ops
from app.services.booking.no_shows import appointments_over

log = logging.getLogger(__name__)

BATCH = 500
JOB_TIMEOUT_S = 300
FAILED_JOB_TTL_S = 7 * 24 * 3600


@dataclass(frozen=True)
class LeaseSpec:
    name: str
    model: type
    status: InstrumentedAttribute
    due_statuses: tuple[str, ...]
    time: InstrumentedAttribute
    """Due when at or before now (or NULL, when `due_when_null`); pushed forward to lease the row."""
    queue: str
    job: str
    """The worker job (dotted path) that gets the row's id."""
    where: Callable[[datetime], list[ColumnElement]] = field(default=lambda now: [])
    """More conditions a due row meets (the same when it is leased)."""
    due_when_null: bool = False
    order_by: InstrumentedAttribute | None = None
    ready: Callable[[Session, list[int], datetime], list[int]] | None = None
    """A last look, in Python, at the due rows (what SQL cannot say on both databases)."""
    due_since: InstrumentedAttribute | None = None
    """Since when a row whose `time` is NULL is due (`due_when_null`), for the age of the oldest due row."""

    def _conditions(self, now: datetime) -> list[ColumnElement]:
        due = or_(self.time.is_(None), self.time <= now) if self.due_when_null else self.time <= now
        return [self.status.in_([str(s) for s in self.due_statuses]), due, *self.where(now)]

    def due_ids(self, session: Session, now: datetime, limit: int) -> list[int]:
        ids = list(session.scalars(select(self.model.id).where(*self._conditions(now))
                                   .order_by(self.order_by if self.order_by is not None else self.time)
                                   .limit(limit)))
        return self.ready(session, ids, now) if self.ready is not None and ids else ids

    def lease(self, session: Session, ids: list[int], until: datetime) -> list[int]:
        """Claim the rows that are still due; a row another dispatcher claimed first is skipped."""
        if not ids:
            return []
        claimed = session.scalars(update(self.model).where(self.model.id.in_(ids), *self._conditions(utcnow()))
                                  .values({self.time.key: until}).returning(self.model.id)
                                  .execution_options(synchronize_session=False))
        return sorted(claimed)


def _expired(now: datetime) -> list[ColumnElement]:
    return [Order.expires_at <= now]


def _appointment_begun(now: datetime) -> list[ColumnElement]:
    return [Order.type == o.BOOKING, Order.appointment_at <= now]


LEASES = [
    LeaseSpec("inbox", NotificationInbox, NotificationInbox.status, (InboxStatus.RECEIVED,),
              NotificationInbox.next_attempt_at, "notifications", "workers.jobs.process_notification",
              order_by=NotificationInbox.id),
    LeaseSpec("his_outbox", HisOutbox, HisOutbox.status, (HisWriteStatus.PENDING,), HisOutbox.next_attempt_at,
              "his", "workers.jobs.send_his_write"),
    LeaseSpec("payment_queries", PaymentAttempt, PaymentAttempt.status, (PaymentStatus.PENDING,),
              PaymentAttempt.next_query_at, "channel", "workers.jobs.query_payment"),
    # An unpaid order whose time is up; next_check_at leases it (NULL: never looked at).
    LeaseSpec("expired_orders", Order, Order.status, (o.CREATED,), Order.next_check_at, "channel",
              "workers.jobs.expire_order", where=_expired, due_when_null=True, order_by=Order.expires_at,
              due_since=Order.expires_at),
    LeaseSpec("refunds", Refund, Refund.status, IN_FLIGHT, Refund.next_query_at, "channel",
              "workers.jobs.advance_refund"),
    # A booking whose appointment ended without a redemption; the same lease column, other statuses.
    LeaseSpec("no_shows", Order, Order.status, o.AWAITING_VISIT, Order.next_check_at, "default",
              "workers.jobs.mark_no_show", where=_appointment_begun, due_when_null=True,
              order_by=Order.appointment_at, ready=appointments_over, due_since=Order.appointment_at),
    LeaseSpec("registration_syncs", RegistrationSync, RegistrationSync.status, (RegistrationSyncStatus.PENDING,),
              RegistrationSync.next_attempt_at, "his", "workers.jobs.sync_registration"),
    LeaseSpec("message_pushes", MessagePush, MessagePush.status, (PushStatus.PENDING,), MessagePush.next_attempt_at,
              "channel", "workers.jobs.send_message_push"),
]


def lease_spec(name: str) -> LeaseSpec:
    return next(spec for spec in LEASES if spec.name == name)


def dispatch_one(rt: Runtime, spec: LeaseSpec, limit: int = BATCH) -> int:
    """Lease the spec's due rows and enqueue a job for each; how many."""
    now = utcnow()
    # Leases are real seconds: a job needs the same wall time however compressed the retry schedule is.
    until = now + timedelta(seconds=rt.settings.JOB_LEASE_S)
    with rt.db.session() as session:
        claimed = spec.lease(session, spec.due_ids(session, now, limit), until)
    if claimed:
        queue = rt.queue(spec.queue)
        with rt.redis.pipeline() as pipe:
            for row_id in claimed:
                queue.enqueue(spec.job, row_id, pipeline=pipe, job_timeout=JOB_TIMEOUT_S,
                              failure_ttl=FAILED_JOB_TTL_S, result_ttl=600)
            pipe.execute()
    return len(claimed)


def dispatch(rt: Runtime) -> dict[str, int]:
    counts = {spec.name: dispatch_one(rt, spec) for spec in LEASES}
    if any(counts.values()):
        log.info("dispatched %s", counts)
    ops.beat(rt)
    return counts
