"""RQ job functions: ids in, one service call, nothing else."""
from __future__ import annotations

from app.services import messaging, reconciliation
from app.services.booking import no_shows, registration_sync
from app.services.his import send
from app.services.payments import expire_order as expire
from app.services.payments import process, query_attempt
from app.services.refunds import advance
from workers import dispatcher
from workers.context import runtime


def dispatch_due_work() -> dict:
    return dispatcher.dispatch(runtime())


def process_notification(inbox_id: int) -> str:
    return process(runtime(), inbox_id)


def send_his_write(outbox_id: int) -> str:
    return send(runtime(), outbox_id)


def query_payment(attempt_id: int) -> str:
    return query_attempt(runtime(), attempt_id)


def expire_order(order_id: int) -> str:
    return expire(runtime(), order_id)


def advance_refund(refund_id: int) -> str:
    return advance(runtime(), refund_id)


def mark_no_show(order_id: int) -> str:
    return no_shows.mark_if_overdue(runtime(), order_id)


def sync_registration(sync_id: int) -> str:
    return registration_sync.sync(runtime(), sync_id)


def send_message_push(push_id: int) -> str:
    return messaging.send(runtime(), push_id)


def poll_bills() -> dict:
    return messaging.poll_bills(runtime())


def reconcile_run(run_id: int, attempt: int) -> dict:
    return reconciliation.execute_started(runtime(), run_id, attempt)


def reconcile_daily() -> list[dict]:
    return reconciliation.run_daily(runtime())
