"""Every status write of a money record: a conditional update through the record's state machine, with an event.

`set_status` refuses an illegal move (InvalidTransition) and otherwise runs
`UPDATE … SET status = to WHERE id = ? AND status = <the status the caller read>`: when another process
moved the record first it changes nothing and returns False, so duplicate and concurrent callers never
apply a change twice. A change it makes is recorded in `status_events` in the same transaction.
Orders go through `app.services.orders.move`, built on the same conditional update, which records
`order_events` and releases the order's place.

`update_while` writes other fields only while the status is still the one read (a retry's schedule, a
lease), and records nothing: the status did not change.
"""
from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql import ClauseElement, ColumnElement

from app.db.models import (
    CardVerification,
    Coupon,
    HisOutbox,
    MessagePush,
    NotificationInbox,
    PaymentAttempt,
    ReconciliationClaim,
    ReconciliationDiscrepancy,
    ReconciliationRun,
    Refund,
    RefundRequest,
    RegistrationSync,
    Settlement,
    SettlementInvoice,
    Statement,
    StatusEvent,
)
from app.db.types import utcnow
from app.domain.cards import CARD_VERIFICATION
from app.domain.his_writes import HIS_WRITE, REGISTRATION_SYNC
from app.domain.messaging import PUSH
from app.domain.payments import INBOX_NOTIFICATION, PAYMENT_ATTEMPT
from app.domain.reconciliation_runs import CLAIM, DISCREPANCY, RECONCILIATION_RUN
from app.domain.refunds import REFUND, REFUND_REQUEST
from app.domain.settlement import COUPON_MACHINE, INVOICE_MACHINE, SETTLEMENT, STATEMENT
from app.domain.state_machine import StateMachine

MACHINES: dict[type, StateMachine] = {
    PaymentAttempt: PAYMENT_ATTEMPT,
    Refund: REFUND,
    RefundRequest: REFUND_REQUEST,
    HisOutbox: HIS_WRITE,
    NotificationInbox: INBOX_NOTIFICATION,
    RegistrationSync: REGISTRATION_SYNC,
    CardVerification: CARD_VERIFICATION,
    Statement: STATEMENT,
    Settlement: SETTLEMENT,
    Coupon: COUPON_MACHINE,
    SettlementInvoice: INVOICE_MACHINE,
    ReconciliationClaim: CLAIM,
    ReconciliationRun: RECONCILIATION_RUN,
    ReconciliationDiscrepancy: DISCREPANCY,
    MessagePush: PUSH,
}
REASON_MAX, ACTOR_MAX = 200, 100


def machine_of(row) -> StateMachine:
    try:
        return MACHINES[type(row)]
    except KeyError:
        raise TypeError(f"{type(row).__name__} has no state machine; orders move through orders.move") from None


def conditional_write(session: Session, row, expected: str, values: dict, where: tuple = ()) -> bool:
    """UPDATE the row with `values` while its status is `expected` (and `where` holds); on success the loaded
    object carries the new values (SQL expressions among them are reloaded on next access)."""
    model = type(row)
    if hasattr(model, "updated_at") and "updated_at" not in values:
        values = {**values, "updated_at": utcnow()}
    done = session.execute(update(model).where(model.id == row.id, model.status == expected, *where)
                           .values(**values).execution_options(synchronize_session=False)).rowcount
    if done != 1:
        return False
    for name, value in values.items():
        if isinstance(value, ClauseElement):
            session.expire(row, [name])
        else:
            set_committed_value(row, name, value)
    return True


def set_status(session: Session, row, to: str, *, reason: str, actor: str = "system",
               where: tuple[ColumnElement, ...] = (), **fields) -> bool:
    """Move `row` from the status it was read with to `to`, with `fields`; False when it was moved meanwhile."""
    machine = machine_of(row)
    origin, target = machine.check(row.status, to)
    now = utcnow()
    if not conditional_write(session, row, str(origin), {"status": str(target), **fields}, where):
        return False
    session.add(StatusEvent(record_type=machine.name, record_id=row.id, from_status=str(origin), to_status=str(target),
                            reason=reason[:REASON_MAX], actor=actor[:ACTOR_MAX], at=now))
    return True


def update_while(session: Session, row, status: str, **fields) -> bool:
    """Write `fields` only while the row's status is still `status`; False (nothing written) otherwise."""
    return conditional_write(session, row, str(machine_of(row).state(status)), fields)
