"""Writes owed to the HIS: recorded with the state change that causes them, sent by workers.

Each row carries an idempotency key the HIS honours, so sending it again after
a timeout or a crash never writes twice. Failures are retried on a backoff
schedule for at least 24 hours (scaled in tests), then flagged for a person.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.db.models import Clinic, HisOutbox, Order, Patient
from app.db.types import utcnow
from app.domain import orders as o
from app.domain.backoff import HIS_RETRY_HORIZON_S, HIS_RETRY_SCHEDULE, delay_after
from app.his.base import HisClient, HisRejected, HisUnavailable, HisWriteResult
from app.runtime import Runtime
from app.services.his.gateway import his_client
from app.services.people.patients import his_key_for

log = logging.getLogger(__name__)

PENDING, SENT, FLAGGED, REJECTED = "pending", "sent", "flagged", "rejected"


def add_write(session: Session, order: Order, kind: str, payload: dict, *, refund_id: int | None = None,
              key_suffix: str = "") -> HisOutbox:
    """Record a write in the caller's transaction; the dispatcher sends it once that commits."""
    row = HisOutbox(clinic_id=order.clinic_id, order_id=order.id, refund_id=refund_id, kind=kind,
                    idempotency_key=f"{order.order_no}:{kind}{key_suffix}", payload=payload, status=PENDING,
                    next_attempt_at=utcnow())
    session.add(row)
    return row


def add_request_write(session: Session, request, kind: str, payload: dict, key: str) -> HisOutbox:
    """A write on behalf of a refund request (a card hold or restore, a cancellation's revert); its outcome
    releases or fails the request's refund parts."""
    row = HisOutbox(clinic_id=request.clinic_id, order_id=request.order_id, refund_request_id=request.id, kind=kind,
                    idempotency_key=key, payload=payload, status=PENDING, next_attempt_at=utcnow())
    session.add(row)
    return row


def add_write_for_paid_order(session: Session, order: Order) -> HisOutbox:
    """What the HIS must record once an order's money arrived: registration, recharge or bill settlement."""
    if order.type == o.TOPUP:
        return add_write(session, order, "recharge", {"card_no": order.card_no, "amount_fen": order.amount_fen})
    if order.type == o.VISIT_BILL:
        return add_write(session, order, "bill_settlement", {"card_no": order.card_no,
                                                             "bill_ids": list(order.bill_ids or []),
                                                             "amount_fen": order.amount_fen})
    return add_write(session, order, "registration", {"patient_id": order.patient_id, "item_id": order.item_id,
                                                      "amount_fen": order.amount_fen,
                                                      "appointment_at": order.appointment_at.isoformat()})


@dataclass(frozen=True)
class _WritePlan:
    """Everything a HIS write needs, read in one short transaction so no transaction spans the HIS call."""

    kind: str
    key: str
    order_no: str
    payload: dict
    item_code: str | None = None
    card_no: str | None = None
    patient: tuple[str, str, str, str | None, str | None] | None = None  # HIS key, name, phone, id number, HIS id
    patient_id: int | None = None


def _plan(session: Session, row: HisOutbox, order: Order | None) -> _WritePlan:
    order_no = row.payload["order_no"] if "order_no" in row.payload else order.order_no
    plan = _WritePlan(row.kind, row.idempotency_key, order_no, dict(row.payload))
    if row.kind != "registration":
        return plan
    from app.db.models import Item

    patient = session.get(Patient, row.payload["patient_id"])
    card_no = patient.cards[0].card_no if patient.cards else None
    return _WritePlan(row.kind, row.idempotency_key, order_no, dict(row.payload),
                      item_code=session.get(Item, row.payload["item_id"]).code, card_no=card_no,
                      patient=(his_key_for(patient.id, patient.created_at, "his-patient"), patient.name,
                               patient.phone, patient.id_number, patient.his_patient_id),
                      patient_id=patient.id)


def _perform(client: HisClient, plan: _WritePlan) -> tuple[HisWriteResult, str | None]:
    """Do the write; also returns the HIS patient id when one had to be created for a registration."""
    p, key, order_no = plan.payload, plan.key, plan.order_no
    if plan.kind == "recharge":
        return client.recharge(p["card_no"], p["amount_fen"], order_no, key), None
    if plan.kind == "bill_settlement":
        return client.settle_bills(p["card_no"], p["bill_ids"], p["amount_fen"], order_no, key), None
    if plan.kind == "registration":
        patient_key, name, phone, id_number, his_patient_id = plan.patient
        created = None
        if plan.card_no is None and his_patient_id is None:
            created = his_patient_id = client.create_patient(name, phone, id_number, idempotency_key=patient_key).id
        result = client.register(order_no, plan.item_code, datetime.fromisoformat(p["appointment_at"]), key,
                                 card_no=plan.card_no, patient_id=None if plan.card_no else his_patient_id,
                                 amount_fen=p["amount_fen"])
        return result, created
    if plan.kind == "registration_revert":
        return client.revert_registration(order_no, key), None
    if plan.kind == "refund_hold":
        return client.refund_hold(p["card_no"], p["amount_fen"], order_no, key), None
    if plan.kind == "refund_restore":
        return client.refund_restore(p["card_no"], p["amount_fen"], order_no, key), None
    if plan.kind == "charge":
        return client.charge(order_no, p["card_no"], p["amount_fen"], p["settlement_type"], key), None
    raise ValueError(f"unknown HIS write kind {plan.kind!r}")


def send(rt: Runtime, outbox_id: int) -> str:
    """Send one pending write; returns the row's status afterwards."""
    with rt.db.session() as session:
        row = session.get(HisOutbox, outbox_id)
        if row is None or row.status != PENDING:
            return row.status if row else "missing"
        if row.kind == "registration_revert" and _registration_in_flight(session, row):
            # Revert only what the HIS has: wait for the registration write to settle first.
            row.next_attempt_at = utcnow() + timedelta(seconds=max(1.0, 5 * rt.settings.RETRY_TIME_SCALE))
            return row.status
        plan = _plan(session, row, session.get(Order, row.order_id) if row.order_id else None)
        client = his_client(session.get(Clinic, row.clinic_id), rt.settings)
    outcome: HisWriteResult | HisUnavailable | HisRejected
    created_patient = None
    try:
        outcome, created_patient = _perform(client, plan)
    except (HisUnavailable, HisRejected) as exc:
        outcome = exc
    with rt.db.session() as session:
        row = session.get(HisOutbox, outbox_id)
        order = session.get(Order, row.order_id) if row.order_id else None
        if created_patient and plan.patient_id:
            patient = session.get(Patient, plan.patient_id)
            patient.his_patient_id = patient.his_patient_id or created_patient
        if row.status != PENDING:
            return row.status
        if isinstance(outcome, HisUnavailable):
            _schedule_retry(rt, session, row, f"{outcome.__class__.__name__}: {outcome}")
        elif isinstance(outcome, HisRejected):
            _reject(session, row, order, outcome)
        else:
            _mark_sent(session, row, order, outcome)
            session.expire(row, ["status"])  # updated by a conditional statement, not through the object
        return row.status


def _registration_in_flight(session: Session, revert: HisOutbox) -> bool:
    return session.scalar(select(HisOutbox.id).where(HisOutbox.order_id == revert.order_id,
                                                     HisOutbox.kind == "registration",
                                                     HisOutbox.status == PENDING).limit(1)) is not None


def _schedule_retry(rt: Runtime, session: Session, row: HisOutbox, error: str) -> None:
    now = utcnow()
    row.attempts += 1
    row.last_error = error[:500]
    horizon = timedelta(seconds=HIS_RETRY_HORIZON_S * rt.settings.RETRY_TIME_SCALE)
    if now - row.created_at >= horizon:
        row.status = FLAGGED
        log.error("HIS write %s flagged for a person after %s attempts: %s", row.idempotency_key, row.attempts,
                  error)
        from app.services.common.audit import record_system_event

        record_system_event(session, row.clinic_id, "his_write_flagged", "his_outbox", row.id,
                            after={"idempotency_key": row.idempotency_key, "attempts": row.attempts,
                                   "last_error": row.last_error})
        return
    delay = delay_after(HIS_RETRY_SCHEDULE, row.attempts) * rt.settings.RETRY_TIME_SCALE
    row.next_attempt_at = now + timedelta(seconds=delay)
    log.warning("HIS write %s failed (attempt %s), retrying in %.1fs: %s", row.idempotency_key, row.attempts,
                delay, error)


def _reject(session: Session, row: HisOutbox, order: Order | None, exc: HisRejected) -> None:
    row.attempts += 1
    row.status = REJECTED
    row.last_error = f"{exc.code}: {exc.message}"[:500]
    log.error("HIS refused write %s: %s", row.idempotency_key, row.last_error)
    if row.refund_request_id is not None:
        from app.services.refunds import gates

        gates.on_write_settled(session, row, ok=False, code=exc.code)
        return
    from app.services.payments import outcomes

    outcomes.on_his_rejected(session, row, order, exc.code)


def _mark_sent(session: Session, row: HisOutbox, order: Order | None, result: HisWriteResult) -> None:
    now = utcnow()
    updated = session.execute(
        update(HisOutbox).where(HisOutbox.id == row.id, HisOutbox.status == PENDING)
        .values(status=SENT, sent_at=now, his_record_id=result.record_id, attempts=HisOutbox.attempts + 1)
        .execution_options(synchronize_session=False)
    ).rowcount
    if updated != 1:
        return
    if row.refund_request_id is not None:
        from app.services.refunds import gates

        gates.on_write_settled(session, row, ok=True, code=None)
        return
    if row.kind in ("recharge", "bill_settlement") and order.status == o.PAID:
        from app.services.orders.state import move

        move(session, order, o.COMPLETED, f"HIS recorded the {row.kind}", completed_at=now)


def due_ids(session: Session, now: datetime, limit: int) -> list[int]:
    return list(session.scalars(
        select(HisOutbox.id).where(HisOutbox.status == PENDING, HisOutbox.next_attempt_at <= now)
        .order_by(HisOutbox.next_attempt_at).limit(limit)
    ))


def lease(session: Session, ids: list[int], until: datetime) -> list[int]:
    """Claim rows for enqueueing; a row another dispatcher claimed first is skipped."""
    claimed = []
    for row_id in ids:
        if session.execute(update(HisOutbox).where(HisOutbox.id == row_id, HisOutbox.status == PENDING,
                                                   HisOutbox.next_attempt_at <= utcnow())
                           .values(next_attempt_at=until).execution_options(synchronize_session=False)).rowcount:
            claimed.append(row_id)
    return claimed
