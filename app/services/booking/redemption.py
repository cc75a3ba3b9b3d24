"""Redemption (核销): the patient came for the booked package.

A booked order is redeemed on its appointment day (a no-show must be rescheduled
to today first), once: the conditional status move on the locked order lets
exactly one of two concurrent redemptions through; the other gets
`invalid_transition`. In the same transaction:
- the HIS `charge` record of the package goes to the outbox, carrying the
  clinic's settlement type for the channel (and, in our copy, whether that type
  counts in cash flow and revenue);
- each extra charge outside the package is stored with a fixed idempotency key
  (`<order_no>:extra:<n>`) and becomes an unpaid HIS bill on the patient's card,
  which the patient pays like any visit bill: an `extra_charge` write in the HIS
  outbox under the same key. The request sends those writes right after the
  commit; if the HIS does not answer, the outbox retries them like every HIS
  write (24 hours, scaled, then flagged); the key makes a retry return the same
  bill, so none is lost or doubled.
The charge needs a card: a patient without one gets a HIS card first. An item that requires an attachment
(a panoramic X-ray) is redeemed only with one on the order or a `no_attachment_reason`, which the audit keeps.
"""
from __future__ import annotations

import logging
from datetime import timedelta

from app.db.models import ExtraCharge, Order
from app.db.types import utcnow
from app.domain import orders as o
from app.domain.errors import Conflict, InvalidTransition
from app.domain.his_writes import HisWriteKind, HisWriteStatus
from app.runtime import Runtime
from app.services.booking.attachments import attachment_check
from app.services.booking.desk_views import staff_booking_view
from app.services.booking.front_desk import actor_of, snapshot
from app.services.booking.staff_patients import ensure_card
from app.services.clinics import settlement_setting
from app.services.common.audit import record_staff_event
from app.services.common.principals import StaffPrincipal
from app.services.common.staff_scope import scoped_booking, shanghai_date
from app.services.his import record_order_write, record_write, send
from app.services.orders import move

log = logging.getLogger(__name__)


def _require_redeemable(order: Order) -> None:
    if order.status not in o.AWAITING_VISIT:
        hint = "; reschedule it to today first" if order.status == o.NO_SHOW else ""
        raise InvalidTransition(f"a {order.status} booking cannot be redeemed{hint}",
                                details={"from": order.status, "to": o.REDEEMED})
    if shanghai_date(order.appointment_at) != shanghai_date(utcnow()):
        raise Conflict(f"the appointment is on {shanghai_date(order.appointment_at).isoformat()}; a booking is "
                       "redeemed on its appointment day (reschedule it to today)", "not_appointment_day")


def redeem(rt: Runtime, principal: StaffPrincipal, order_no: str, extra_charges: list[dict],
           no_attachment_reason: str | None = None) -> dict:
    with rt.db.session() as session:
        order = scoped_booking(session, principal.clinic_ids, order_no)
        _require_redeemable(order)
        attachment_check(session, order, no_attachment_reason)
        patient_id = order.patient_id
    card_no = ensure_card(rt, patient_id)
    now = utcnow()
    with rt.db.session() as session:
        order = scoped_booking(session, principal.clinic_ids, order_no, lock=True)
        _require_redeemable(order)
        attachments = attachment_check(session, order, no_attachment_reason)
        before = snapshot(order)
        if not move(session, order, o.REDEEMED, "redeemed by staff", actor=actor_of(principal), redeemed_at=now):
            raise InvalidTransition("the booking changed meanwhile; reload it")
        setting = settlement_setting(session, order.clinic_id, order.channel)
        record_order_write(session, order, HisWriteKind.CHARGE, {
            "card_no": card_no, "amount_fen": order.amount_fen, "settlement_type": setting["settlement_type"],
            "count_in_cash_flow": setting["count_in_cash_flow"], "count_in_revenue": setting["count_in_revenue"]})
        # The request creates the bills itself right after the commit; the dispatcher takes over only if it
        # could not, once this lease has passed.
        lease_until = now + timedelta(seconds=rt.settings.JOB_LEASE_S)
        bills = []
        for seq, charge in enumerate(extra_charges, start=1):
            extra = ExtraCharge(order_id=order.id, seq=seq, name=charge["name"], amount_fen=charge["amount_fen"],
                                card_no=card_no, idempotency_key=f"{order.order_no}:extra:{seq}",
                                created_by=principal.user_id, created_at=now)
            session.add(extra)
            bills.append(record_write(session, clinic_id=order.clinic_id, order_id=order.id,
                                      kind=HisWriteKind.EXTRA_CHARGE, key=extra.idempotency_key,
                                      payload={"card_no": card_no, "title": extra.name, "amount_fen": extra.amount_fen},
                                      send_after=lease_until))
        session.flush()
        bill_writes = [write.id for write in bills]
        record_staff_event(session, principal, order.clinic_id, "booking_redeemed", "order", order.order_no,
                           before=before, after={
                               **snapshot(order), **attachments, "card_no": card_no,
                               "settlement_type": setting["settlement_type"],
                               "extra_charges": [{"name": c["name"], "amount_fen": c["amount_fen"]}
                                                 for c in extra_charges]})
        order_id = order.id
    for write_id in bill_writes:
        if send(rt, write_id) == HisWriteStatus.PENDING:
            break  # the HIS is not answering: the outbox creates this bill and the rest with backoff
    with rt.db.session() as session:
        return staff_booking_view(session, session.get(Order, order_id))
