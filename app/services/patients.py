"""A mini-program user's patients and their HIS cards: list and add patients, bind or open a card,
read a card's live balance and unpaid bills.

Phones and ID numbers leave this module masked only (responses and logs alike). HIS calls run
outside any transaction: they may take seconds. Documents returned here are the API.md shapes.
"""
from __future__ import annotations

import logging
import re
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from app.db.models import Card, Clinic, Patient
from app.domain.errors import InvalidInput, NotFound, Unavailable
from app.his import HisCard, HisClient, HisNotFound, HisRejected, HisUnavailable
from app.runtime import Runtime
from app.services.auth import MpPrincipal
from app.services.his_gateway import his_client
from config.logging import mask_id_number, mask_phone

log = logging.getLogger(__name__)

NAME_MAX_LEN = 50
# A fixed set, so front ends can label and translate it; a relation outside it is sent as "other".
RELATIONS = ("self", "spouse", "child", "parent", "other")
PHONE_PATTERN = r"^1[3-9][0-9]{9}$"
ID_NUMBER_PATTERN = r"^[0-9]{17}[0-9Xx]$"
# HIS card numbers are short printable ASCII tokens; anything else cannot be a card.
CARD_NO_PATTERN = r"^[!-~]{1,64}$"
MAX_ROW_ID = 2**31 - 1

_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class _PatientSnapshot:
    """What the HIS calls need of a patient, read in one transaction and used after it."""

    id: int
    clinic_id: int
    name: str
    phone: str
    id_number: str | None
    his_patient_id: str | None
    created_at: datetime

    def his_key(self, purpose: str) -> str:
        return his_key_for(self.id, self.created_at, purpose)


def his_key_for(patient_id: int, created_at: datetime, purpose: str) -> str:
    """The idempotency key of a HIS write about one of our patients (creating it in the HIS, opening a card).

    Stable for this row across retries and across every path that creates the HIS patient (binding,
    booking registration, staff redemption), and distinct from a same-id row of a rebuilt database.
    """
    return f"hpay-patient-{patient_id}-{created_at.strftime('%Y%m%d%H%M%S%f')}-{purpose}"


# --- lookups other services use ---------------------------------------------------------------

def require_user_patient(session: Session, principal: MpPrincipal, patient_id: int) -> Patient:
    """One of this user's patients, or NotFound `patient_not_found` (also for another user's)."""
    patient = None
    if 0 < patient_id <= MAX_ROW_ID:
        patient = session.scalar(select(Patient).where(Patient.id == patient_id,
                                                       Patient.user_id == principal.user_id,
                                                       Patient.clinic_id == principal.clinic_id))
    if patient is None:
        raise NotFound(f"patient {patient_id} is not one of your patients", "patient_not_found")
    return patient


def require_user_card(session: Session, principal: MpPrincipal, card_no: str) -> Card:
    """The binding of this card to one of this user's patients, or NotFound `card_not_found`."""
    card = None
    if re.fullmatch(CARD_NO_PATTERN, card_no):
        card = session.scalar(
            select(Card).join(Patient, Card.patient_id == Patient.id)
            .where(Card.card_no == card_no, Card.clinic_id == principal.clinic_id,
                   Patient.user_id == principal.user_id)
            .order_by(Card.id).limit(1))
    if card is None:
        raise NotFound("this card is not bound to any of your patients", "card_not_found")
    return card


# --- patients -----------------------------------------------------------------------------------

def list_patients(rt: Runtime, principal: MpPrincipal) -> list[dict]:
    with rt.db.session() as session:
        rows = session.scalars(
            select(Patient).where(Patient.user_id == principal.user_id, Patient.clinic_id == principal.clinic_id)
            .options(selectinload(Patient.cards)).order_by(Patient.id))
        return [patient_document(patient, patient.cards) for patient in rows]


def normalized_patient_fields(name: str, phone: str, id_number: str | None = None,
                              relation: str | None = None) -> dict:
    """The fields as stored, or InvalidInput `validation_failed` naming each bad field."""
    name = " ".join(str(name).split())
    errors: dict[str, list[str]] = {}
    if not 1 <= len(name) <= NAME_MAX_LEN or _CONTROL_CHARS.search(name):
        errors["name"] = [f"1 to {NAME_MAX_LEN} characters, no control characters"]
    if not re.fullmatch(PHONE_PATTERN, str(phone)):
        errors["phone"] = ["an 11-digit mainland mobile number, 1[3-9]XXXXXXXXX"]
    if id_number is not None:
        id_number = str(id_number).upper()
        if not re.fullmatch(ID_NUMBER_PATTERN, id_number):
            errors["id_number"] = ["an 18-character resident ID number: 17 digits, then a digit or X"]
    if relation is not None and relation not in RELATIONS:
        errors["relation"] = [f"one of {', '.join(RELATIONS)}"]
    if errors:
        raise InvalidInput("The request is not valid; see `errors` for each field.", "validation_failed", errors)
    return {"name": name, "phone": phone, "id_number": id_number, "relation": relation}


def create_patient(rt: Runtime, principal: MpPrincipal, *, name: str, phone: str, id_number: str | None = None,
                   relation: str | None = None) -> dict:
    """A new patient of this user (two patients may share a phone number)."""
    fields = normalized_patient_fields(name, phone, id_number, relation)
    with rt.db.session() as session:
        patient = Patient(clinic_id=principal.clinic_id, user_id=principal.user_id, **fields)
        session.add(patient)
        session.flush()
        log.info("patient %s added by mp user %s", patient.id, principal.user_id)
        return patient_document(patient, [])


def patient_document(patient: Patient, cards) -> dict:
    return {"id": patient.id, "name": patient.name, "phone": mask_phone(patient.phone),
            "id_number": mask_id_number(patient.id_number), "relation": patient.relation,
            "cards": [card_document(card) for card in cards]}


def card_document(card: Card) -> dict:
    return {"card_no": card.card_no, "patient_id": card.patient_id}


# --- cards --------------------------------------------------------------------------------------

def add_card(rt: Runtime, principal: MpPrincipal, patient_id: int, *, card_no: str | None = None,
             create: bool = False) -> tuple[dict, bool]:
    """Bind an existing HIS card (`card_no`) or open a new one in the HIS (`create`).

    Returns the binding's document and whether it is new; binding a card twice returns the first binding.
    """
    if (card_no is None) == (not create):
        raise InvalidInput("send either card_no (bind an existing card) or create: true (open a new one)",
                           "card_no_or_create")
    if card_no is not None and not re.fullmatch(CARD_NO_PATTERN, card_no):
        raise InvalidInput("card_no must be 1 to 64 printable ASCII characters", "validation_failed",
                           {"card_no": ["1 to 64 printable ASCII characters"]})
    with rt.db.session() as session:
        patient = require_user_patient(session, principal, patient_id)
        already_bound = card_no is not None and _binding(session, patient.id, card_no) is not None
        clinic = session.get(Clinic, patient.clinic_id)
        snapshot = _PatientSnapshot(patient.id, patient.clinic_id, patient.name, patient.phone, patient.id_number,
                                    patient.his_patient_id, patient.created_at)
    his_patient_id = snapshot.his_patient_id
    if not already_bound:
        his = his_client(clinic, rt.settings)
        his_card = _opened_card(rt, his, snapshot) if create else _verified_card(his, snapshot, card_no)
        card_no, his_patient_id = his_card.card_no, his_card.patient.id
    try:
        with rt.db.session() as session:
            card, created = _binding(session, snapshot.id, card_no), False
            if card is None:
                card, created = Card(clinic_id=snapshot.clinic_id, patient_id=snapshot.id, card_no=card_no), True
                session.add(card)
                session.flush()
                log.info("card %s bound to patient %s", card_no, snapshot.id)
            if his_patient_id is not None:
                session.execute(update(Patient).where(Patient.id == snapshot.id, Patient.his_patient_id.is_(None))
                                .values(his_patient_id=his_patient_id))
            return card_document(card), created
    except IntegrityError:
        # The same card was bound to this patient by a concurrent request: that binding stands.
        with rt.db.session() as session:
            card = _binding(session, snapshot.id, card_no)
            if card is None:
                raise
            return card_document(card), False


def card_balance(rt: Runtime, principal: MpPrincipal, card_no: str) -> dict:
    """`{card_no, patient_id, balance_fen}` with the balance read live from the HIS."""
    with rt.db.session() as session:
        card = require_user_card(session, principal, card_no)
        clinic = session.get(Clinic, card.clinic_id)
        document = card_document(card)
    with _his_errors(not_found=("the hospital system no longer knows this card", "card_not_found")):
        document["balance_fen"] = his_client(clinic, rt.settings).get_balance(card_no)
    return document


def unpaid_bills(rt: Runtime, principal: MpPrincipal, card_no: str) -> list[dict]:
    """The visit bills on the card that the HIS holds unpaid: `[{bill_id, kind, title, amount_fen}]`."""
    with rt.db.session() as session:
        clinic = session.get(Clinic, require_user_card(session, principal, card_no).clinic_id)
    with _his_errors(not_found=("the hospital system no longer knows this card", "card_not_found")):
        bills = his_client(clinic, rt.settings).unpaid_bills(card_no)
    return [{"bill_id": bill.bill_id, "kind": bill.kind, "title": bill.title, "amount_fen": bill.amount_fen}
            for bill in bills if bill.status == "unpaid"]


def _binding(session: Session, patient_id: int, card_no: str) -> Card | None:
    return session.scalar(select(Card).where(Card.patient_id == patient_id, Card.card_no == card_no))


def _same_person_name(a: str, b: str) -> bool:
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def _verified_card(his: HisClient, patient: _PatientSnapshot, card_no: str) -> HisCard:
    with _his_errors(not_found=("the hospital system has no card with this number", "card_not_found")):
        his_card = his.get_card(card_no)
    if not _same_person_name(his_card.patient.name, patient.name):
        # Never say whose card it is: the holder's name is not ours to disclose.
        raise InvalidInput("this card is registered to someone else than this patient", "card_patient_mismatch")
    return his_card


def _opened_card(rt: Runtime, his: HisClient, patient: _PatientSnapshot) -> HisCard:
    """A card opened in the HIS for this patient; the keys make a retry return the same patient and card."""
    not_found = ("the hospital system no longer knows this patient", "his_patient_not_found")
    his_patient_id = patient.his_patient_id
    if his_patient_id is None:
        with _his_errors(not_found=not_found):
            created = his.create_patient(patient.name, patient.phone, patient.id_number,
                                         idempotency_key=patient.his_key("his-patient"))
        with rt.db.session() as session:
            session.execute(update(Patient).where(Patient.id == patient.id, Patient.his_patient_id.is_(None))
                            .values(his_patient_id=created.id))
            # A concurrent bind may have linked another HIS patient first; that link stands.
            his_patient_id = session.scalar(select(Patient.his_patient_id).where(Patient.id == patient.id))
    with _his_errors(not_found=not_found):
        return his.open_card(his_patient_id, idempotency_key=patient.his_key("card"))


@contextmanager
def _his_errors(not_found: tuple[str, str]):
    """HIS failures as our refusals: unknown -> 404, refused -> 422, down or slow -> 503."""
    try:
        yield
    except HisNotFound:
        raise NotFound(*not_found) from None
    except HisRejected as exc:
        raise InvalidInput(f"the hospital system refused this: {exc.message or exc.code}", "his_rejected",
                           {"his_error": [exc.code]}) from None
    except HisUnavailable:
        raise Unavailable("the hospital system is not answering right now; try again in a moment",
                          "his_unavailable") from None
