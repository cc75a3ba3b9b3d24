"""A bill announced on a card (by the HIS, `POST /api/his/v1/events`, or found by the poller): a message for
every mini-program user holding the card, and a push to the channel for those who subscribed.

Only what the HIS itself says about the bill is believed: the announcement names a card and a bill, the
bill's card, title, amount and status are read back from the HIS (`get_bill`). A bill that is not on that
card, already paid, or (for `bill_created`) not unpaid changes nothing. A card nobody holds changes nothing
either, and the HIS gets the same answer as for any other card. Each user gets one message per bill and
kind, so the HIS announcing again (its retries) changes nothing.

Messages and pushes are recorded in one transaction after the HIS was read; the push outbox is sent by
workers (app.services.messaging.pushes).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db.models import Card, Clinic, MessagePush, MpMessage, MpUser, Patient
from app.db.types import utcnow
from app.domain.errors import Unavailable
from app.domain.messaging import (
    DEFAULT_PAGE,
    BillFacts,
    MessageKind,
    Purpose,
    PushStatus,
    bill_page,
    template_data,
)
from app.his import HisBill, HisNotFound, HisRejected, HisUnavailable
from app.runtime import Runtime
from app.services.his import his_client
from app.services.messaging.subscriptions import allowance_row
from app.services.messaging.templates import template_for

log = logging.getLogger(__name__)

UNPAID, CANCELLED = "unpaid", "cancelled"
# What the bill must be for an announcement of each kind to mean anything.
_EXPECTED_STATUS = {MessageKind.BILL_CREATED: UNPAID, MessageKind.BILL_CANCELLED: CANCELLED}
_TITLES = {MessageKind.BILL_CREATED: "待缴费：{title}", MessageKind.BILL_CANCELLED: "账单已撤销：{title}"}


@dataclass(frozen=True)
class Announced:
    messages: int
    pushes: int


def holders(session: Session, clinic_id: int, card_no: str) -> list[MpUser]:
    """The mini-program users with a verified binding of this card in this clinic."""
    return list(session.scalars(
        select(MpUser).join(Patient, Patient.user_id == MpUser.id).join(Card, Card.patient_id == Patient.id)
        .where(Card.clinic_id == clinic_id, Card.card_no == card_no, Card.verified_at.is_not(None),
               MpUser.clinic_id == clinic_id).distinct().order_by(MpUser.id)))


def receive(rt: Runtime, clinic_id: int, kind: MessageKind, card_no: str, bill_id: str) -> Announced:
    """What the HIS announced, checked against the HIS's own record of the bill."""
    with rt.db.session() as session:
        clinic = session.get(Clinic, clinic_id)
        if not holders(session, clinic_id, card_no):
            return Announced(0, 0)
    try:
        bill = his_client(rt, clinic).get_bill(bill_id)
    except HisNotFound:
        log.warning("clinic %s announced bill %s, which its HIS does not know", clinic.code, bill_id)
        return Announced(0, 0)
    except HisRejected as exc:
        log.warning("clinic %s: reading announced bill %s was refused: %s", clinic.code, bill_id, exc.code)
        return Announced(0, 0)
    except HisUnavailable:
        # The HIS announces again when it gets no 2xx, by when it may answer its own reads.
        raise Unavailable("the hospital system did not answer our read of that bill; announce it again later",
                          "his_unavailable") from None
    if bill.card_no != card_no or bill.status != _EXPECTED_STATUS[kind]:
        log.warning("clinic %s announced %s of bill %s on card %s, but the HIS has it %s on card %s; ignored",
                    clinic.code, kind, bill_id, card_no, bill.status, bill.card_no)
        return Announced(0, 0)
    return record(rt, clinic_id, kind, bill)


def record(rt: Runtime, clinic_id: int, kind: MessageKind, bill: HisBill) -> Announced:
    """A message of this bill for each holder of its card, and the pushes they subscribed to."""
    with rt.db.session() as session:
        return record_in(session, clinic_id, kind, bill)


def record_in(session: Session, clinic_id: int, kind: MessageKind, bill: HisBill) -> Announced:
    """`record`, in the caller's transaction."""
    clinic = session.get(Clinic, clinic_id)
    facts = BillFacts(bill.bill_id, bill.card_no, bill.kind, bill.title, bill.amount_fen, clinic.name, utcnow())
    messages = pushes = 0
    for user in holders(session, clinic_id, bill.card_no):
        message = _new_message(session, clinic_id, user, kind, facts)
        if message is None:
            continue
        messages += 1
        if kind == MessageKind.BILL_CREATED and _push(session, clinic_id, user, message, facts):
            pushes += 1
    if messages:
        log.info("clinic %s: %s of bill %s -> %s messages, %s pushes", clinic_id, kind, bill.bill_id, messages, pushes)
    return Announced(messages, pushes)


def _new_message(session: Session, clinic_id: int, user: MpUser, kind: MessageKind,
                 facts: BillFacts) -> MpMessage | None:
    """The user's message of this bill and kind, or None when they have it already."""
    exists = select(MpMessage.id).where(MpMessage.user_id == user.id, MpMessage.bill_id == facts.bill_id,
                                        MpMessage.kind == str(kind))
    if session.scalar(exists) is not None:
        return None
    template = template_for(session, user.merchant_account_id, Purpose.BILL_CREATED)
    message = MpMessage(clinic_id=clinic_id, user_id=user.id, kind=str(kind),
                        title=_TITLES[kind].format(title=facts.title)[:200],
                        data={"bill_id": facts.bill_id, "card_no": facts.card_no, "kind": facts.kind,
                              "title": facts.title, "amount_fen": facts.amount_fen, "clinic": facts.clinic_name},
                        page=bill_page(template.page if template else DEFAULT_PAGE, facts.card_no),
                        bill_id=facts.bill_id, card_no=facts.card_no, created_at=facts.at)
    try:
        with session.begin_nested():
            session.add(message)
    except IntegrityError:
        return None  # the same announcement, handled at this moment by another request
    return message


def _push(session: Session, clinic_id: int, user: MpUser, message: MpMessage, facts: BillFacts) -> bool:
    """A pending push of the message when the user has a subscription left for the app's bill template."""
    template = template_for(session, user.merchant_account_id, Purpose.BILL_CREATED)
    if template is None:
        return False
    subscription = allowance_row(session, user.id, template.template_id)
    if subscription is None or subscription.allowance <= 0:
        return False
    session.add(MessagePush(clinic_id=clinic_id, message_id=message.id, user_id=user.id,
                            merchant_account_id=user.merchant_account_id, template_id=template.template_id,
                            page=message.page, data=template_data(template.fields, facts, user.channel),
                            status=str(PushStatus.PENDING), attempts=0, next_attempt_at=utcnow(),
                            created_at=utcnow()))
    return True
