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
  which the patient pays like any visit bill. The bill is created right after
  the commit and, if the HIS does not answer, by the dispatcher with backoff for
  24 hours (scaled) before it is flagged; the key makes a retry return the same
  bill, so none is lost or doubled.
The charge needs a card: a patient without one gets a HIS card first.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.db.models import Clinic, ExtraCharge, Order
from app.db.types import utcnow
from app.domain import orders as o
from app.domain.backoff import HIS_RETRY_HORIZON_S, HIS_RETRY_SCHEDULE, delay_after
from app.domain.errors import Conflict, InvalidTransition
from app.his import HisRejected, HisUnavailable
from app.runtime import Runtime
from app.services.booking.desk_views import staff_booking_view
from app.services.booking.front_desk import actor_of, snapshot
from app.services.booking.staff_patients import ensure_card
from app.services.clinics.settlement_types import settlement_setting
from app.services.common.audit import record_system_event
from app.services.common.staff_scope import scoped_booking, shanghai_date
from app.services.his import delivery
from app.services.his.gateway import his_client
from app.services.orders.state import move
from app.services.people.staff_auth import StaffPrincipal, audit

log = logging.getLogger(__name__)

PENDING, CREATED, REJECTED, FLAGGED = "pending", "created", "rejected", "flagged"
REDEEMABLE = (o.BOOKED, o.RESCHEDULED)
EXTRA_BILL_KIND = "charge"


def _require_redeemable(order: Order) -> None:
    if order.status not in REDEEMABLE:
        hint = "; reschedule it to today first" if order.status == o.NO_SHOW else ""
        raise InvalidTransition(f"a {order.status} booking cannot be redeemed{hint}",
                                details={"from": order.status, "to": o.REDEEMED})
    if shanghai_date(order.appointment_at) != shanghai_date(utcnow()):
        raise Conflict(f"the appointment is on {shanghai_date(order.appointment_at).isoformat()}; a booking is "
                       "redeemed on its appointment day (reschedule it to today)", "not_appointment_day")


def redeem(rt: Runtime, principal: StaffPrincipal, order_no: str, extra_charges: list[dict]) -> dict:
    with rt.db.session() as session:
        order = scoped_booking(session, principal.clinic_ids, order_no)
        _require_redeemable(order)
        patient_id = order.patient_id
    card_no = ensure_card(rt, patient_id)
    now = utcnow()
    with rt.db.session() as session:
        order = scoped_booking(session, principal.clinic_ids, order_no, lock=True)
        _require_redeemable(order)
        before = snapshot(order)
        if not move(session, order, o.REDEEMED, "redeemed by staff", actor=actor_of(principal), redeemed_at=now):
            raise InvalidTransition("the booking changed meanwhile; reload it")
        setting = settlement_setting(session, order.clinic_id, order.channel)
        delivery.add_write(session, order, "charge", {
            "card_no": card_no, "amount_fen": order.amount_fen, "settlement_type": setting["settlement_type"],
            "count_in_cash_flow": setting["count_in_cash_flow"], "count_in_revenue": setting["count_in_revenue"]})
        # The request creates the bills itself right after the commit; the dispatcher takes over only if it
        # could not, once this lease has passed.
        lease_until = now + timedelta(seconds=rt.settings.JOB_LEASE_S)
        charges = [ExtraCharge(order_id=order.id, seq=seq, name=charge["name"], amount_fen=charge["amount_fen"],
                               card_no=card_no, idempotency_key=f"{order.order_no}:extra:{seq}", status=PENDING,
                               attempts=0, next_attempt_at=lease_until, created_by=principal.user_id, created_at=now)
                   for seq, charge in enumerate(extra_charges, start=1)]
        session.add_all(charges)
        session.flush()
        charge_ids = [charge.id for charge in charges]
        audit(session, principal, order.clinic_id, "booking_redeemed", "order", order.order_no, before=before,
              after={**snapshot(order), "card_no": card_no, "settlement_type": setting["settlement_type"],
                     "extra_charges": [{"name": c["name"], "amount_fen": c["amount_fen"]} for c in extra_charges]})
        order_id = order.id
    for charge_id in charge_ids:
        if send_extra_charge(rt, charge_id) == PENDING:
            break  # the HIS is not answering: the dispatcher creates this bill and the rest with backoff
    with rt.db.session() as session:
        return staff_booking_view(session, session.get(Order, order_id))


def send_extra_charge(rt: Runtime, charge_id: int) -> str:
    """Create one extra charge's HIS bill (the dispatcher's job too); returns the charge's status afterwards."""
    with rt.db.session() as session:
        charge = session.get(ExtraCharge, charge_id)
        if charge is None or charge.status != PENDING:
            return charge.status if charge else "missing"
        order = session.get(Order, charge.order_id)
        client = his_client(session.get(Clinic, order.clinic_id), rt.settings)
        request = (charge.card_no, charge.name, charge.amount_fen, charge.idempotency_key)
    card_no, title, amount_fen, key = request
    try:
        outcome = client.create_bill(card_no, EXTRA_BILL_KIND, title, amount_fen, idempotency_key=key)
    except (HisUnavailable, HisRejected) as exc:
        outcome = exc
    with rt.db.session() as session:
        charge = session.get(ExtraCharge, charge_id)
        if charge.status != PENDING:
            return charge.status
        order = session.get(Order, charge.order_id)
        if isinstance(outcome, HisUnavailable):
            _retry_later(rt, session, charge, order, str(outcome))
        elif isinstance(outcome, HisRejected):
            charge.attempts += 1
            charge.status, charge.last_error = REJECTED, f"{outcome.code}: {outcome.message}"[:500]
            log.error("HIS refused extra charge %s: %s", key, charge.last_error)
            record_system_event(session, order.clinic_id, "extra_charge_rejected", "order", order.order_no,
                                after={"idempotency_key": key, "code": outcome.code})
        else:
            session.execute(update(ExtraCharge).where(ExtraCharge.id == charge.id, ExtraCharge.status == PENDING)
                            .values(status=CREATED, bill_id=outcome.bill_id, sent_at=utcnow(),
                                    attempts=ExtraCharge.attempts + 1)
                            .execution_options(synchronize_session=False))
            session.refresh(charge)
        return charge.status


def _retry_later(rt: Runtime, session: Session, charge: ExtraCharge, order: Order, error: str) -> None:
    now = utcnow()
    charge.attempts += 1
    charge.last_error = error[:500]
    if now - charge.created_at >= timedelta(seconds=HIS_RETRY_HORIZON_S * rt.settings.RETRY_TIME_SCALE):
        charge.status = FLAGGED
        log.error("extra charge %s flagged after %s attempts: %s", charge.idempotency_key, charge.attempts, error)
        record_system_event(session, order.clinic_id, "extra_charge_flagged", "order", order.order_no,
                            after={"idempotency_key": charge.idempotency_key, "attempts": charge.attempts,
                                   "last_error": charge.last_error})
        return
    delay = delay_after(HIS_RETRY_SCHEDULE, charge.attempts) * rt.settings.RETRY_TIME_SCALE
    charge.next_attempt_at = now + timedelta(seconds=delay)
    log.warning("extra charge %s not created (attempt %s), retrying in %.1fs: %s", charge.idempotency_key,
                charge.attempts, delay, error)


# --- what the dispatcher picks up ------------------------------------------------------------

def due_ids(session: Session, now: datetime, limit: int) -> list[int]:
    return list(session.scalars(select(ExtraCharge.id).where(ExtraCharge.status == PENDING,
                                                             ExtraCharge.next_attempt_at <= now)
                                .order_by(ExtraCharge.next_attempt_at).limit(limit)))


def lease(session: Session, ids: list[int], until: datetime) -> list[int]:
    return [row_id for row_id in ids if session.execute(
        update(ExtraCharge).where(ExtraCharge.id == row_id, ExtraCharge.status == PENDING,
                                  ExtraCharge.next_attempt_at <= utcnow())
        .values(next_attempt_at=until).execution_options(synchronize_session=False)).rowcount]
