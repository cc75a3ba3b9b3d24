"""RQ job functions: ids in, one service call, nothing else."""
from __future__ import annotations

from app.services import dispatch, his_outbox, notifications, payments, refund_executor
from workers.context import runtime


def dispatch_due_work() -> dict:
    return dispatch.dispatch(runtime())


def process_notification(inbox_id: int) -> str:
    return notifications.process(runtime(), inbox_id)


def send_his_write(outbox_id: int) -> str:
    return his_outbox.send(runtime(), outbox_id)


def query_payment(attempt_id: int) -> str:
    return payments.query_attempt(runtime(), attempt_id)


def expire_order(order_id: int) -> str:
    return payments.expire_order(runtime(), order_id)


def advance_refund(refund_id: int) -> str:
    return refund_executor.advance(runtime(), refund_id)
