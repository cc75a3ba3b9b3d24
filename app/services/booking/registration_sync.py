"""Bringing a booking's HIS registration to the patient and time staff chose.

A paid booking is registered in the HIS at payment time (outbox key
`<order_no>:registration`) for the patient and slot the mini-program user picked.
Confirming binds the booking to the patient who will come and the time agreed;
rescheduling a no-show moves the time. The HIS cannot edit a registration, so
the registration it holds is reverted and a new one written, each through the
HIS outbox with its own key (`<order_no>:registration_revert:cN`,
`<order_no>:registration:cN`).

Outbox rows are sent independently, so the order matters and is enforced here:
one step at a time, and only once every earlier registration write of the order
has settled. The step reads what the HIS holds from the settled writes (a sent
registration is active until a sent revert), compares it with the order's
patient and appointment, and adds the one write that moves towards it. It runs
in the confirming transaction and then from the dispatcher until it converges;
it stops when the order leaves the booked states (a cancellation then reverts
what the HIS holds) or when a write was refused or flagged, which it records
for a person.
"""
from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import HisOutbox, Order, RegistrationSync
from app.db.types import utcnow
from app.domain import orders as o
from app.domain.backoff import delay_after
from app.domain.his_writes import HisWriteKind, HisWriteStatus, RegistrationSyncStatus
from app.runtime import Runtime
from app.services.common.audit import record_system_event
from app.services.common.status import set_status
from app.services.his import order_writes, record_order_write

log = logging.getLogger(__name__)

PENDING, DONE, STOPPED = RegistrationSyncStatus.PENDING, RegistrationSyncStatus.DONE, RegistrationSyncStatus.STOPPED
WRITE_KINDS = (HisWriteKind.REGISTRATION, HisWriteKind.REGISTRATION_REVERT)
# Seconds (scaled like every retry) between looks at the outbox while a write is on its way.
RECHECK_SCHEDULE = [1, 2, 5, 10, 30, 60, 120, 300, 600]
MIN_RECHECK_S = 0.5
_OUR_KEY = re.compile(r":c[0-9]+$")


def request_sync(rt: Runtime, session: Session, order: Order) -> RegistrationSync:
    """In the transaction that changed the order's patient or appointment (the order row locked)."""
    sync = session.scalar(select(RegistrationSync).where(RegistrationSync.order_id == order.id))
    if sync is None:
        sync = RegistrationSync(order_id=order.id, status=str(PENDING), attempts=0, next_attempt_at=utcnow())
        session.add(sync)
        session.flush()
    elif sync.status != PENDING:
        set_status(session, sync, PENDING, reason="the booking's patient or time changed")
    sync.attempts, sync.note, sync.next_attempt_at = 0, None, utcnow()
    session.flush()
    _step(rt, session, order, sync)
    return sync


def sync(rt: Runtime, sync_id: int) -> str:
    """One step of a pending sync (the dispatcher's job); returns its status afterwards."""
    with rt.db.session() as session:
        row = session.get(RegistrationSync, sync_id)
        if row is None or row.status != PENDING:
            return row.status if row else "missing"
        order = session.scalar(select(Order).where(Order.id == row.order_id).with_for_update())
        session.refresh(row)
        if row.status == PENDING:
            _step(rt, session, order, row)
        return row.status


def _step(rt: Runtime, session: Session, order: Order, sync: RegistrationSync) -> None:
    if order.status not in o.AWAITING_VISIT:
        _finish(session, sync, STOPPED, f"the booking is {order.status}")
        return
    writes = order_writes(session, order.id, WRITE_KINDS)
    if any(w.status == HisWriteStatus.PENDING for w in writes):
        _recheck_later(rt, sync)
        return
    stuck = next((w for w in writes if w.status == HisWriteStatus.FLAGGED), None)
    if stuck is None and writes and writes[-1].status == HisWriteStatus.REJECTED and _written_here(writes[-1]):
        stuck = writes[-1]
    if stuck is not None:
        _finish(session, sync, STOPPED, f"HIS write {stuck.idempotency_key} is {stuck.status}")
        record_system_event(session, order.clinic_id, "registration_sync_stopped", "order", order.order_no,
                            after={"idempotency_key": stuck.idempotency_key, "status": stuck.status,
                                   "last_error": stuck.last_error})
        return
    active = registration_held(writes)
    if active is not None and _matches(active, order):
        _finish(session, sync, DONE, None)
        return
    suffix = f":c{len(writes) + 1}"
    sync.attempts = 0  # progress: look again soon, not after the backoff of a long wait
    if active is not None:
        record_order_write(session, order, HisWriteKind.REGISTRATION_REVERT, {}, key_suffix=suffix)
    else:
        record_order_write(session, order, HisWriteKind.REGISTRATION, {
            "patient_id": order.patient_id, "item_id": order.item_id, "amount_fen": order.amount_fen,
            "appointment_at": order.appointment_at.isoformat()}, key_suffix=suffix)
    _recheck_later(rt, sync)


def _written_here(write: HisOutbox) -> bool:
    return _OUR_KEY.search(write.idempotency_key) is not None


def registration_held(writes: list[HisOutbox]) -> dict | None:
    """The payload of the registration the HIS holds after these settled writes (in write order), if any."""
    active = None
    for write in writes:
        if write.status != HisWriteStatus.SENT:
            continue
        active = dict(write.payload) if write.kind == HisWriteKind.REGISTRATION else None
    return active


def _matches(payload: dict, order: Order) -> bool:
    try:
        at = datetime.fromisoformat(payload["appointment_at"])
    except (KeyError, TypeError, ValueError):
        return False
    return payload.get("patient_id") == order.patient_id and at == order.appointment_at


def _recheck_later(rt: Runtime, sync: RegistrationSync) -> None:
    delay = max(MIN_RECHECK_S, delay_after(RECHECK_SCHEDULE, sync.attempts) * rt.settings.RETRY_TIME_SCALE)
    sync.attempts += 1
    sync.next_attempt_at = utcnow() + timedelta(seconds=delay)


def _finish(session: Session, sync: RegistrationSync, status: RegistrationSyncStatus, note: str | None) -> None:
    session.flush()
    if set_status(session, sync, status, reason=note or "the HIS holds the booking's registration", note=note) \
            and status == STOPPED:
        log.warning("registration sync of order %s stopped: %s", sync.order_id, note)
