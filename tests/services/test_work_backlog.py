"""What the metrics and the queue screens call backlog, read from the lease specs of workers/dispatcher.py on a
database no dispatcher runs against: rows owed work, those due now, and how long the oldest due row has waited.
A table of work is covered by its lease spec alone (the push outbox, when it lands, by its own)."""
from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import timedelta

from prometheus_client.core import GaugeMetricFamily

from app.db.models import HisOutbox, NotificationInbox, Order
from app.db.types import utcnow
from app.domain import ids
from app.monitoring import WorkCollector
from app.services import ops
from tests.services.helpers import new_clinic
from workers.dispatcher import LEASES, lease_spec


def _inbox(rt, clinic_code: str, due_in: timedelta, status: str = "received") -> None:
    now = utcnow()
    with rt.db.session() as session:
        session.add(NotificationInbox(channel="wechat", kind="payment", clinic_code=clinic_code, body="<xml/>",
                                      status=status, attempts=0, next_attempt_at=now + due_in, received_at=now))


def test_inbox_rows_owed_due_and_the_oldest_ones_wait(rt):
    clinic = new_clinic(rt)
    spec = lease_spec("inbox")
    before = ops.backlog_of(rt, spec)
    _inbox(rt, clinic.code, -timedelta(minutes=10))
    _inbox(rt, clinic.code, -timedelta(seconds=5))
    _inbox(rt, clinic.code, timedelta(minutes=2))          # leased or backing off: owed, not due
    _inbox(rt, clinic.code, -timedelta(hours=1), "processed")  # done: not owed
    after = ops.backlog_of(rt, spec)
    assert (after.backlog - before.backlog, after.due - before.due) == (3, 2)
    assert after.oldest_due_age_s >= 600 and after.queue == "notifications"


def test_an_expired_order_nobody_looked_at_is_due_since_it_expired(rt):
    clinic = new_clinic(rt)
    spec = lease_spec("expired_orders")
    before = ops.backlog_of(rt, spec)
    now = utcnow()
    with rt.db.session() as session:
        for expired_ago in (timedelta(minutes=30), -timedelta(minutes=5)):  # one expired, one still open
            session.add(Order(order_no=ids.new_business_no("topup", now), clinic_id=clinic.id, type="topup",
                              status="created", channel="wechat", amount_fen=100, refunded_fen=0, card_no="C1",
                              description="充值", expires_at=now - expired_ago, next_check_at=None))
    after = ops.backlog_of(rt, spec)
    assert (after.backlog - before.backlog, after.due - before.due) == (1, 1)
    assert after.oldest_due_age_s >= 1800


def test_a_new_table_of_work_is_measured_by_its_spec_alone(rt):
    """A spec the dispatcher does not have yet (standing in for the push outbox) is measured like the others."""
    clinic = new_clinic(rt)
    flagged_writes = replace(lease_spec("his_outbox"), name="flagged_writes", due_statuses=("flagged",))
    before = ops.backlog_of(rt, flagged_writes)
    with rt.db.session() as session:
        session.add(HisOutbox(clinic_id=clinic.id, kind="recharge", idempotency_key=f"k-{secrets.token_hex(6)}",
                              payload={}, status="flagged", attempts=9, next_attempt_at=utcnow() - timedelta(hours=2)))
    after = ops.backlog_of(rt, flagged_writes)
    assert (after.backlog - before.backlog, after.due - before.due) == (1, 1)
    families = {f.name: f for f in WorkCollector(rt, [*LEASES, flagged_writes])._work(
        GaugeMetricFamily("up", "", labels=["source"]))}
    names = {s.labels["work"] for s in families["hpay_work_backlog"].samples}
    assert names == {spec.name for spec in LEASES} | {"flagged_writes"}
