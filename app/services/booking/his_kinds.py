"""The HIS writes a booking makes, and what their outcome means.

- `registration`: the paid booking registered for its patient and time (a HIS patient is created first for
  a patient without a card or HIS id, under the same key on every path). Refused while the booking is
  still only paid, the payment goes back in full; the registration sync reads the rest from the outbox.
- `registration_revert`: waits while a registration of the order is still on its way (revert only what
  the HIS has). For a cancellation it holds the refund back; recorded or refused (nothing active to
  revert), the refund may go.
- `charge`: the charge record of a redeemed package. A refusal is left to finance (audit trail).
- `extra_charge`: an unpaid HIS bill on the card for something charged outside the package; the bill id
  is kept with the charge.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.db.models import ExtraCharge, HisOutbox, Item, Order, Patient
from app.domain.his_writes import HisWriteKind, HisWriteStatus
from app.his.base import HisBill, HisClient, HisRejected
from app.services.common.audit import record_system_event
from app.services.his import Performed, WriteKind, WriteRequest, register_kind
from app.services.payments import refund_rejected_order
from app.services.people import his_key_for
from app.services.refunds import release_parts

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Registrant:
    """The patient a registration is for, as the HIS needs it."""

    patient_id: int
    his_key: str
    name: str
    phone: str
    id_number: str | None
    his_patient_id: str | None
    card_no: str | None


def _registrant(session: Session, row: HisOutbox) -> dict:
    patient = session.get(Patient, row.payload["patient_id"])
    return {"item_code": session.get(Item, row.payload["item_id"]).code,
            "patient": _Registrant(patient.id, his_key_for(patient.id, patient.created_at, "his-patient"),
                                   patient.name, patient.phone, patient.id_number, patient.his_patient_id,
                                   patient.cards[0].card_no if patient.cards else None)}


def _register(client: HisClient, write: WriteRequest) -> Performed:
    who: _Registrant = write.context["patient"]
    his_patient_id, created = who.his_patient_id, None
    if who.card_no is None and his_patient_id is None:
        created = his_patient_id = client.create_patient(who.name, who.phone, who.id_number,
                                                         idempotency_key=who.his_key).id
    p = write.payload
    result = client.register(write.order_no, write.context["item_code"], datetime.fromisoformat(p["appointment_at"]),
                             write.key, card_no=who.card_no, patient_id=None if who.card_no else his_patient_id,
                             amount_fen=p["amount_fen"])
    return Performed(result.record_id, created)


def _registered(session: Session, row: HisOutbox, performed: Performed) -> None:
    if performed.detail:
        session.execute(update(Patient).where(Patient.id == row.payload["patient_id"],
                                              Patient.his_patient_id.is_(None))
                        .values(his_patient_id=performed.detail))


def _registration_in_flight(session: Session, revert: HisOutbox) -> bool:
    return session.scalar(select(HisOutbox.id).where(HisOutbox.order_id == revert.order_id,
                                                     HisOutbox.kind == HisWriteKind.REGISTRATION,
                                                     HisOutbox.status == HisWriteStatus.PENDING).limit(1)) is not None


def _revert(client: HisClient, write: WriteRequest) -> Performed:
    return Performed(client.revert_registration(write.order_no, write.key).record_id)


def _reverted(session: Session, row: HisOutbox, _performed: Performed) -> None:
    if row.refund_request_id is not None:
        release_parts(session, row.refund_request_id, "the HIS registration was reverted")


def _revert_refused(session: Session, row: HisOutbox, exc: HisRejected) -> None:
    if row.refund_request_id is not None:
        # Nothing active to revert (never registered, or reverted already): the refund may go.
        log.warning("registration revert %s refused (%s); refunding anyway", row.idempotency_key, exc.code)
        release_parts(session, row.refund_request_id, f"nothing to revert in the HIS ({exc.code})")
        return
    _note_refusal(session, row, exc)


def _note_refusal(session: Session, row: HisOutbox, exc: HisRejected) -> None:
    order = session.get(Order, row.order_id)
    record_system_event(session, order.clinic_id, "his_write_rejected", "order", order.order_no,
                        after={"kind": row.kind, "code": exc.code, "idempotency_key": row.idempotency_key})


def _charge(client: HisClient, write: WriteRequest) -> Performed:
    p = write.payload
    return Performed(client.charge(write.order_no, p["card_no"], p["amount_fen"], p["settlement_type"],
                                   write.key).record_id)


EXTRA_BILL_KIND = "charge"


def _extra_charge(client: HisClient, write: WriteRequest) -> Performed:
    p = write.payload
    bill = client.create_bill(p["card_no"], EXTRA_BILL_KIND, p["title"], p["amount_fen"], idempotency_key=write.key)
    return Performed(bill.bill_id, bill)


def _bill_created(session: Session, row: HisOutbox, performed: Performed) -> None:
    bill: HisBill = performed.detail
    session.execute(update(ExtraCharge).where(ExtraCharge.idempotency_key == row.idempotency_key)
                    .values(bill_id=bill.bill_id))


def _extra_charge_refused(session: Session, row: HisOutbox, exc: HisRejected) -> None:
    order = session.get(Order, row.order_id)
    record_system_event(session, order.clinic_id, "extra_charge_rejected", "order", order.order_no,
                        after={"idempotency_key": row.idempotency_key, "code": exc.code})


REGISTRATION = register_kind(WriteKind(HisWriteKind.REGISTRATION, _register, on_sent=_registered,
                                       on_rejected=refund_rejected_order, prepare=_registrant))
REGISTRATION_REVERT = register_kind(WriteKind(HisWriteKind.REGISTRATION_REVERT, _revert, on_sent=_reverted,
                                              on_rejected=_revert_refused, not_yet=_registration_in_flight))
CHARGE = register_kind(WriteKind(HisWriteKind.CHARGE, _charge, on_rejected=_note_refusal))
EXTRA_CHARGE = register_kind(WriteKind(HisWriteKind.EXTRA_CHARGE, _extra_charge, on_sent=_bill_created,
                                       on_rejected=_extra_charge_refused))
