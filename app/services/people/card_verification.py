"""Binding an existing HIS card: the patient proves to be its holder with a one-time SMS code.

A code is texted only when our patient's name plus phone or ID number match the HIS card holder, and
it goes to the phone the HIS holds. A request for a card that does not exist or whose holder does not
match is answered exactly like a match whose HIS phone is our patient's phone: the same limits are
counted on that phone, a code row is stored (a code nobody is sent, so every later try fails like a wrong
code), and instead of the provider's round trip the request waits about as long as recent sends took.

Codes: 6 digits, valid HPAY_SMS_CODE_TTL_S, HPAY_SMS_CODE_MAX_TRIES tries, single use, stored as a
keyed hash (HMAC under a key derived from HPAY_SECRET_KEY). A new request supersedes the unused code of
the same patient and card. Phones leave this module masked only.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import random
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.channels.sms import SmsError, SmsThrottled
from app.db.models import Card, CardVerification, Clinic, Patient
from app.db.types import utcnow
from app.domain.cards import CardVerificationStatus
from app.domain.errors import InvalidInput, Unavailable
from app.his import HisNotFound, HisPatient, HisRejected, HisUnavailable
from app.runtime import Runtime
from app.services.common.status import set_status
from app.services.his import his_client
from app.services.people import sms_limits
from config.logging import mask_phone

log = logging.getLogger(__name__)

CODE_PATTERN = r"^[0-9]{6}$"
MOBILE_PATTERN = re.compile(r"1[3-9][0-9]{9}")
PENDING, USED, SUPERSEDED, FAILED = (CardVerificationStatus.PENDING, CardVerificationStatus.USED,
                                     CardVerificationStatus.SUPERSEDED, CardVerificationStatus.FAILED)


@dataclass(frozen=True)
class Applicant:
    """The patient asking to bind a card, as read from our database."""

    patient_id: int
    clinic_id: int
    name: str
    phone: str
    id_number: str | None


class _SendLatency:
    """How long the provider's round trip takes lately, so a code request that sends nothing lasts as long."""

    def __init__(self, initial_s: float = 0.2) -> None:
        self._value = initial_s
        self._lock = threading.Lock()

    def record(self, seconds: float) -> None:
        with self._lock:
            self._value = 0.8 * self._value + 0.2 * min(seconds, 5.0)

    def imitate(self) -> None:
        with self._lock:
            seconds = self._value
        time.sleep(seconds * random.uniform(0.8, 1.2))


_send_latency = _SendLatency()


def same_person_name(a: str, b: str) -> bool:
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def is_holder(applicant: Applicant, holder: HisPatient) -> bool:
    """Name, plus phone or ID number, as the HIS has them."""
    if not same_person_name(holder.name, applicant.name):
        return False
    same_phone = hmac.compare_digest(str(holder.phone or "").encode(), applicant.phone.encode())
    same_id = bool(applicant.id_number and holder.id_number) and hmac.compare_digest(
        str(holder.id_number).upper().encode(), applicant.id_number.upper().encode())
    return same_phone or same_id


def _code_hash(rt: Runtime, patient_id: int, card_no: str, code: str) -> str:
    key = hmac.new(rt.settings.SECRET_KEY.encode(), b"hpay-card-binding-code", hashlib.sha256).digest()
    return hmac.new(key, f"{patient_id}\n{card_no}\n{code}".encode(), hashlib.sha256).hexdigest()


def _his_holder(rt: Runtime, clinic: Clinic, applicant: Applicant, card_no: str) -> HisPatient | None:
    """The card's HIS holder when the applicant is that person, else None (unknown card included)."""
    try:
        holder = his_client(rt, clinic).get_card(card_no).patient
    except (HisNotFound, HisRejected):
        return None
    except HisUnavailable:
        raise Unavailable("the hospital system is not answering right now; try again in a moment",
                          "his_unavailable") from None
    if not is_holder(applicant, holder):
        return None
    if not MOBILE_PATTERN.fullmatch(str(holder.phone or "")):
        log.warning("card %s: the HIS holds no mobile number for its holder; it cannot be bound online", card_no)
        return None
    return holder


def request_code(rt: Runtime, user_id: int, applicant: Applicant, card_no: str) -> dict:
    """Text a binding code to the holder's phone; `{verification: "sms", sent_to, expires_in}`."""
    sms_limits.take_user(rt, user_id)
    with rt.db.session() as session:
        clinic = session.get(Clinic, applicant.clinic_id)
    holder = _his_holder(rt, clinic, applicant, card_no)
    phone = holder.phone if holder else applicant.phone
    sms_limits.take_phone(rt, phone)
    code = f"{secrets.randbelow(10**6):06d}"
    ttl = rt.settings.SMS_CODE_TTL_S
    with rt.db.session() as session:
        # One code request of a patient at a time, so exactly one code per patient and card is pending.
        session.scalar(select(Patient.id).where(Patient.id == applicant.patient_id).with_for_update())
        for earlier in session.scalars(select(CardVerification).where(
                CardVerification.patient_id == applicant.patient_id, CardVerification.card_no == card_no,
                CardVerification.status == PENDING)):
            set_status(session, earlier, SUPERSEDED, reason="a new code was asked for")
        row = CardVerification(clinic_id=applicant.clinic_id, patient_id=applicant.patient_id, card_no=card_no,
                               code_hash=_code_hash(rt, applicant.patient_id, card_no, code),
                               holder_matched=holder is not None, his_patient_id=holder.id if holder else None,
                               sent_to=mask_phone(phone), status=str(PENDING), tries=0,
                               expires_at=utcnow() + timedelta(seconds=ttl))
        session.add(row)
        session.flush()
        verification_id = row.id
    if holder:
        request_id = _send(rt, verification_id, phone, code)
    else:
        _send_latency.imitate()
        request_id = None
    with rt.db.session() as session:  # the same write either way
        session.execute(update(CardVerification).where(CardVerification.id == verification_id)
                        .values(provider_request_id=request_id))
    log.info("card %s: binding code %s for patient %s (%s)", card_no, verification_id, applicant.patient_id,
             "texted to the holder" if holder else "not texted: no such card or not its holder")
    return {"verification": "sms", "sent_to": mask_phone(phone), "expires_in": ttl}


def _send(rt: Runtime, verification_id: int, phone: str, code: str) -> str:
    started = time.monotonic()
    try:
        request_id = rt.sms_gateway().send_code(phone, code, reference=f"card-verification-{verification_id}")
    except SmsError as exc:
        with rt.db.session() as session:
            row = session.get(CardVerification, verification_id)
            if row.status == PENDING:
                set_status(session, row, FAILED, reason=f"not texted: {type(exc).__name__}")
        if isinstance(exc, SmsThrottled):
            sms_limits.refuse(exc.retry_after_s or rt.settings.SMS_PHONE_INTERVAL_S or 60,
                              "this phone at the SMS provider")
        log.error("binding code %s not sent: %s", verification_id, type(exc).__name__)
        raise Unavailable("the code could not be texted right now; try again in a moment",
                          "sms_unavailable") from None
    _send_latency.record(time.monotonic() - started)
    return request_id


def confirm_code(rt: Runtime, applicant: Applicant, card_no: str, code: str) -> tuple[Card, bool]:
    """Check the code of the patient's pending request for this card; on success the card is bound and
    verified in the same transaction that spends the code. Returns the binding and whether it is new.

    Every refusal is InvalidInput: `sms_code_invalid` (wrong; `tries_left`), `sms_code_tries_exceeded`, or
    `sms_code_expired` (expired, used, superseded or never requested)."""
    max_tries = rt.settings.SMS_CODE_MAX_TRIES
    now = utcnow()
    with rt.db.session() as session:
        row = session.scalar(select(CardVerification)
                             .where(CardVerification.patient_id == applicant.patient_id,
                                    CardVerification.card_no == card_no, CardVerification.status == PENDING)
                             .order_by(CardVerification.id.desc()).limit(1))
        if row is None or row.expires_at <= now:
            refusal = ("no valid code for this card: it expired or was already used; ask for a new one",
                       "sms_code_expired", {})
        else:
            tries = session.scalar(update(CardVerification)
                                   .where(CardVerification.id == row.id, CardVerification.status == PENDING,
                                          CardVerification.tries < max_tries)
                                   .values(tries=CardVerification.tries + 1).returning(CardVerification.tries))
            right = hmac.compare_digest(row.code_hash, _code_hash(rt, applicant.patient_id, card_no, code))
            if tries is None:
                refusal = ("too many wrong codes; ask for a new one", "sms_code_tries_exceeded", {})
            elif not (right and row.holder_matched):
                refusal = ("the code is not right", "sms_code_invalid", {"tries_left": max_tries - tries})
            elif not set_status(session, row, USED, reason="the right code came back", used_at=now):
                refusal = ("no valid code for this card: it was already used", "sms_code_expired", {})
            else:
                return bind_verified(session, applicant.clinic_id, applicant.patient_id, card_no,
                                     row.his_patient_id)
    message, code_name, details = refusal
    raise InvalidInput(message, code_name, details)


def bind_verified(session: Session, clinic_id: int, patient_id: int, card_no: str,
                  his_patient_id: str | None) -> tuple[Card, bool]:
    """Bind the card to the patient as proven now (or mark an old name-only binding proven); link the
    patient to its HIS patient if it has none yet. Returns the binding and whether it is new."""
    card = session.scalar(select(Card).where(Card.patient_id == patient_id, Card.card_no == card_no))
    created = card is None
    if created:
        card = Card(clinic_id=clinic_id, patient_id=patient_id, card_no=card_no, verified_at=utcnow())
        session.add(card)
        session.flush()
        log.info("card %s bound to patient %s", card_no, patient_id)
    elif card.verified_at is None:
        session.execute(update(Card).where(Card.id == card.id, Card.verified_at.is_(None))
                        .values(verified_at=utcnow()))
        session.refresh(card)
        log.info("card %s of patient %s verified again", card_no, patient_id)
    if his_patient_id is not None:
        session.execute(update(Patient).where(Patient.id == patient_id, Patient.his_patient_id.is_(None))
                        .values(his_patient_id=his_patient_id))
    return card, created
