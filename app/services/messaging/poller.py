"""For a clinic whose HIS cannot announce bills (`clinics.bill_push_mode = poll`): read the unpaid bills of
the cards whose holders subscribed to messages, and treat each bill not seen before exactly as an announced
one. The bills seen are remembered per clinic (`polled_bills`), so a bill is announced once however often the
poller runs, and in however many processes."""
from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.db.models import Card, Clinic, MessageSubscription, MpUser, Patient, PolledBill
from app.db.types import utcnow
from app.domain.errors import InvalidInput
from app.domain.messaging import MessageKind
from app.his import HisBill, HisError
from app.runtime import Runtime
from app.services.clinics import get_clinic
from app.services.his import his_client
from app.services.messaging.announcements import record_in

log = logging.getLogger(__name__)

PUSH, POLL = "push", "poll"
BILL_PUSH_MODES = (PUSH, POLL)


def set_bill_push_mode(rt: Runtime, clinic_code: str, mode: str) -> str:
    if mode not in BILL_PUSH_MODES:
        raise InvalidInput(f"bill_push_mode must be one of {', '.join(BILL_PUSH_MODES)}", "validation_failed")
    with rt.db.session() as session:
        get_clinic(session, clinic_code).bill_push_mode = mode
    return mode


def subscribed_cards(rt: Runtime, clinic_id: int) -> list[str]:
    """The verified cards of the clinic whose holders have a subscription left for some template."""
    with rt.db.session() as session:
        return list(session.scalars(
            select(Card.card_no).join(Patient, Card.patient_id == Patient.id)
            .join(MpUser, MpUser.id == Patient.user_id)
            .join(MessageSubscription, MessageSubscription.user_id == MpUser.id)
            .where(Card.clinic_id == clinic_id, Card.verified_at.is_not(None), MessageSubscription.allowance > 0)
            .distinct().order_by(Card.card_no)))


def poll_bills(rt: Runtime) -> dict[str, int]:
    """One round over every polling clinic: {clinic code: bills announced}."""
    with rt.db.session() as session:
        clinics = [(c.id, c.code) for c in session.scalars(select(Clinic).where(Clinic.bill_push_mode == POLL)
                                                          .order_by(Clinic.id))]
    return {code: poll_clinic(rt, clinic_id) for clinic_id, code in clinics}


def poll_clinic(rt: Runtime, clinic_id: int) -> int:
    with rt.db.session() as session:
        clinic = session.get(Clinic, clinic_id)
    his = his_client(rt, clinic)
    announced = 0
    for card_no in subscribed_cards(rt, clinic_id):
        try:
            bills = [bill for bill in his.unpaid_bills(card_no) if bill.status == "unpaid"]
        except HisError as exc:
            log.warning("clinic %s: the unpaid bills of card %s could not be read: %s", clinic.code, card_no, exc)
            continue
        for bill in bills:
            if _announce_once(rt, clinic_id, bill):
                announced += 1
    return announced


def _announce_once(rt: Runtime, clinic_id: int, bill: HisBill) -> bool:
    """Remember the bill and announce it, in one transaction; False when it was seen before (here or by another
    poller at the same moment)."""
    try:
        with rt.db.session() as session:
            if session.scalar(select(PolledBill.id).where(PolledBill.clinic_id == clinic_id,
                                                          PolledBill.bill_id == bill.bill_id)) is not None:
                return False
            session.add(PolledBill(clinic_id=clinic_id, bill_id=bill.bill_id, card_no=bill.card_no, seen_at=utcnow()))
            session.flush()
            record_in(session, clinic_id, MessageKind.BILL_CREATED, bill)
    except IntegrityError:
        return False
    return True
