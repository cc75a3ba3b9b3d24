"""A mini-program user's patients and their HIS cards: list and add patients, bind or open a card,
read a card's live balance and unpaid bills.

Binding an existing card needs the holder's SMS code (app/services/people/card_verification.py); a binding
made before that rule (verified_at NULL) can be verified again the same way and is refused with 403
`card_verification_required` by every use of the card (balance, bills, orders, refunds) until then.

Phones and ID numbers leave this module masked only (responses and logs alike). HIS calls run
outside any transaction: they may take seconds. Documents returned here are the API.md shapes.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import BindParameter, ColumnElement, false, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from app.db.models import Card, Clinic, Patient
from app.domain.errors import Forbidden, InvalidInput, NotFound, Unavailable
from app.his import HisCard, HisClient, HisNotFound, HisRejected, HisUnavailable
from app.runtime import Runtime
from app.services.common.presentation import card_view, patient_view
from app.services.common.principals import MpPrincipal
from app.services.his import his_client
from app.services.people import card_verification
from app.services.people.card_verification import CODE_PATTERN, Applicant

log = logging.getLogger(__name__)

NAME_MAX_LEN = 50
# A fixed set, so front ends can label and translate it; a relation outside it is sent as "other".
RELATIONS = ("self", "spouse", "child", "parent", "other")
PHONE_PATTERN = r"^1[3-9][0-9]{9}$"
ID_NUMBER_PATTERN = r"^[0-9]{17}[0-9Xx]$"
# HIS card numbers are short tokens of letters, digits and hyphens (the sandbox HIS issues D0000001);
# anything else cannot be a card and never reaches the HIS.
CARD_NO_PATTERN = r"^[A-Za-z0-9-]{1,32}$"
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
    criteria = user_patient_criteria(principal.user_id, principal.clinic_id, patient_id)
    return user_patient_or_refusal(session.scalar(select(Patient).where(*criteria)), patient_id)


def user_patient_criteria(user_id: int | BindParameter, clinic_id: int | BindParameter,
                          patient_id: int | BindParameter) -> list[ColumnElement[bool]]:
    """What makes `patient_id` one of this user's patients, for a query of the caller's. The values may be bound
    parameters of a statement built once; a value passed with it is then the caller's to keep in range."""
    if isinstance(patient_id, int) and not 0 < patient_id <= MAX_ROW_ID:
        return [false()]
    return [Patient.id == patient_id, Patient.user_id == user_id, Patient.clinic_id == clinic_id]


def user_patient_or_refusal(patient: Patient | None, patient_id: int) -> Patient:
    if patient is None:
        raise NotFound(f"patient {patient_id} is not one of your patients", "patient_not_found")
    return patient


def valid_card_no(card_no: str) -> bool:
    return re.fullmatch(CARD_NO_PATTERN, card_no) is not None


def require_user_card(session: Session, principal: MpPrincipal, card_no: str) -> Card:
    """The verified binding of this card to one of this user's patients: NotFound `card_not_found` when
    there is none, Forbidden `card_verification_required` when it was bound before SMS verification."""
    card = None
    if valid_card_no(card_no):
        card = session.scalar(
            select(Card).join(Patient, Card.patient_id == Patient.id)
            .where(Card.card_no == card_no, Card.clinic_id == principal.clinic_id,
                   Patient.user_id == principal.user_id)
            .order_by(Card.verified_at.is_(None), Card.id).limit(1))
    if card is None:
        raise NotFound("this card is not bound to any of your patients", "card_not_found")
    if card.verified_at is None:
        raise Forbidden("this card was bound before SMS verification; verify it again: POST "
                        f"/patients/{card.patient_id}/cards with its card_no, then the texted sms_code",
                        "card_verification_required", details={"patient_id": card.patient_id})
    return card


# --- patients -----------------------------------------------------------------------------------

def list_patients(rt: Runtime, principal: MpPrincipal) -> list[dict]:
    with rt.db.session() as session:
        rows = session.scalars(
            select(Patient).where(Patient.user_id == principal.user_id, Patient.clinic_id == principal.clinic_id)
            .options(selectinload(Patient.cards)).order_by(Patient.id))
        return [patient_view(patient, patient.cards) for patient in rows]


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
        return patient_view(patient, [])


# --- cards --------------------------------------------------------------------------------------

def add_card(rt: Runtime, principal: MpPrincipal, patient_id: int, *, card_no: str | None = None,
             create: bool = False, sms_code: str | None = None) -> tuple[int, dict]:
    """Bind an existing HIS card (`card_no`, proven by an SMS code) or open a new one in the HIS (`create`).

    Returns (HTTP status, document): 202 `{verification, sent_to, expires_in}` when a code was asked for
    (no `sms_code` yet), 201 a new binding, 200 a binding that already existed (now verified, if it was not).
    """
    if (card_no is None) == (not create) or (create and sms_code is not None):
        raise InvalidInput("send either card_no (bind an existing card) or create: true (open a new one)",
                           "card_no_or_create")
    if card_no is not None and not valid_card_no(card_no):
        raise InvalidInput("card_no must be 1 to 32 letters, digits or hyphens", "validation_failed",
                           {"card_no": ["1 to 32 letters, digits or hyphens"]})
    if sms_code is not None and not re.fullmatch(CODE_PATTERN, sms_code):
        raise InvalidInput("sms_code must be the 6 digits of the text message", "validation_failed",
                           {"sms_code": ["exactly 6 digits"]})
    with rt.db.session() as session:
        patient = require_user_patient(session, principal, patient_id)
        clinic = session.get(Clinic, patient.clinic_id)
        snapshot = _PatientSnapshot(patient.id, patient.clinic_id, patient.name, patient.phone, patient.id_number,
                                    patient.his_patient_id, patient.created_at)
        existing = session.scalar(select(Card).where(Card.patient_id == patient.id, Card.card_no == card_no)) \
            if card_no is not None else None
        if existing is not None and existing.verified_at is not None:
            return 200, card_view(existing)
    if create:
        his_card = _opened_card(rt, his_client(rt, clinic), snapshot)
        card, created = _bind_once(rt, snapshot.id, his_card.card_no, lambda: _bind_opened(rt, snapshot, his_card))
    else:
        applicant = Applicant(snapshot.id, snapshot.clinic_id, snapshot.name, snapshot.phone, snapshot.id_number)
        if sms_code is None:
            return 202, card_verification.request_code(rt, principal.user_id, applicant, card_no)
        card, created = _bind_once(rt, snapshot.id, card_no,
                                   lambda: card_verification.confirm_code(rt, applicant, card_no, sms_code))
    return (201 if created else 200), card_view(card)


def _bind_opened(rt: Runtime, patient: _PatientSnapshot, his_card: HisCard) -> tuple[Card, bool]:
    """A card the HIS opened for this very patient is the patient's own: bound as verified."""
    with rt.db.session() as session:
        return card_verification.bind_verified(session, patient.clinic_id, patient.id, his_card.card_no,
                                               his_card.patient.id)


def _bind_once(rt: Runtime, patient_id: int, card_no: str,
               bind: Callable[[], tuple[Card, bool]]) -> tuple[Card, bool]:
    """Run `bind`; when a concurrent request bound the same card to this patient first, that binding stands."""
    try:
        return bind()
    except IntegrityError:
        with rt.db.session() as session:
            card = session.scalar(select(Card).where(Card.patient_id == patient_id, Card.card_no == card_no))
        if card is None or card.verified_at is None:
            raise
        return card, False


def card_balance(rt: Runtime, principal: MpPrincipal, card_no: str) -> dict:
    """`{card_no, patient_id, balance_fen}` with the balance read live from the HIS."""
    with rt.db.session() as session:
        card = require_user_card(session, principal, card_no)
        clinic = session.get(Clinic, card.clinic_id)
        document = card_view(card)
    with _his_errors(not_found=("the hospital system no longer knows this card", "card_not_found")):
        document["balance_fen"] = his_client(rt, clinic).get_balance(card_no)
    return document


def unpaid_bills(rt: Runtime, principal: MpPrincipal, card_no: str) -> list[dict]:
    """The visit bills on the card that the HIS holds unpaid: `[{bill_id, kind, title, amount_fen}]`."""
    with rt.db.session() as session:
        clinic = session.get(Clinic, require_user_card(session, principal, card_no).clinic_id)
    with _his_errors(not_found=("the hospital system no longer knows this card", "card_not_found")):
        bills = his_client(rt, clinic).unpaid_bills(card_no)
    return [{"bill_id": bill.bill_id, "kind": bill.kind, "title": bill.title, "amount_fen": bill.amount_fen}
            for bill in bills if bill.status == "unpaid"]


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
