"""Patients as the front desk sees them: search by phone, bind a booking to an existing or a new
patient (two patients may share a phone; a new one is always a distinct person), and make sure
the patient holds a HIS card before a redemption charges it."""
from __future__ import annotations

import logging
import re

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from app.db.models import Card, Clinic, Order, Patient
from app.domain.errors import Conflict, NotFound, Unavailable
from app.his import HisRejected, HisUnavailable
from app.runtime import Runtime
from app.services.common.presentation import desk_patient_view
from app.services.common.staff_scope import MAX_ROW_ID, clinic_ids_in_scope
from app.services.his import his_client
from app.services.people import PHONE_PATTERN, his_key_for, normalized_patient_fields

log = logging.getLogger(__name__)


def staff_patient_document(patient: Patient) -> dict:
    return desk_patient_view(patient, [card.card_no for card in patient.cards])


def search_patients(rt: Runtime, scope: tuple[int, ...], phone: str, clinic_code: str | None = None) -> list[dict]:
    """The patients of the user's clinics with this phone number (family members may share one)."""
    if not re.fullmatch(PHONE_PATTERN, phone):
        return []
    with rt.db.session() as session:
        clinic_ids = clinic_ids_in_scope(session, scope, clinic_code)
        patients = session.scalars(select(Patient).where(Patient.phone == phone, Patient.clinic_id.in_(clinic_ids))
                                   .options(selectinload(Patient.cards)).order_by(Patient.id).limit(100))
        return [staff_patient_document(patient) for patient in patients]


def patient_for_booking(session: Session, order: Order, patient_id: int | None, new_patient: dict | None) -> Patient:
    """An existing patient of the booking's clinic, or a new one belonging to the user who booked."""
    if new_patient is not None:
        fields = normalized_patient_fields(new_patient["name"], new_patient["phone"], new_patient.get("id_number"),
                                           new_patient.get("relation"))
        patient = Patient(clinic_id=order.clinic_id, user_id=order.user_id, **fields)
        session.add(patient)
        session.flush()
        log.info("patient %s created by staff for booking %s", patient.id, order.order_no)
        return patient
    patient = None
    if patient_id is not None and 0 < patient_id <= MAX_ROW_ID:
        patient = session.scalar(select(Patient).where(Patient.id == patient_id,
                                                       Patient.clinic_id == order.clinic_id))
    if patient is None:
        raise NotFound(f"no patient {patient_id} in this booking's clinic", "patient_not_found")
    return patient


def ensure_card(rt: Runtime, patient_id: int) -> str:
    """The patient's HIS card number, opening one in the HIS (and the HIS patient, if needed) when they
    have none. The HIS patient is created under the same key as on every other path (his_key_for), so a registration
    sent before or after finds the same person; the card's key makes a retry return the same card."""
    with rt.db.session() as session:
        patient = session.get(Patient, patient_id)
        if patient.cards:
            return patient.cards[0].card_no
        clinic = session.get(Clinic, patient.clinic_id)
        name, phone, id_number, his_patient_id = patient.name, patient.phone, patient.id_number, \
            patient.his_patient_id
        patient_key = his_key_for(patient.id, patient.created_at, "his-patient")
        card_key = his_key_for(patient.id, patient.created_at, "card")
    his = his_client(rt, clinic)
    try:
        if his_patient_id is None:
            his_patient_id = his.create_patient(name, phone, id_number, idempotency_key=patient_key).id
        card = his.open_card(his_patient_id, idempotency_key=card_key)
    except HisUnavailable:
        raise Unavailable("the hospital system is not answering; try again in a moment", "his_unavailable") from None
    except HisRejected as exc:
        raise Conflict(f"the hospital system refused to open a card for this patient: {exc.code}",
                       "his_rejected") from None
    try:
        with rt.db.session() as session:
            session.execute(update(Patient).where(Patient.id == patient_id, Patient.his_patient_id.is_(None))
                            .values(his_patient_id=his_patient_id))
            if session.scalar(select(Card.id).where(Card.patient_id == patient_id,
                                                    Card.card_no == card.card_no)) is None:
                session.add(Card(clinic_id=clinic.id, patient_id=patient_id, card_no=card.card_no))
    except IntegrityError:
        pass  # bound by a concurrent redemption of the same patient: the same card, already there
    log.info("card %s opened in the HIS for patient %s", card.card_no, patient_id)
    return card.card_no
