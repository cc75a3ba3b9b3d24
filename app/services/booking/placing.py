"""Placing a booking when a day's appointments open: the admission gate first, then the conditional update,
then the lookups, and the fairness rules hospitals apply.

A crowd's sold-out answer costs at most one Redis script (app.services.booking.gate; none while this process
remembers the slot as sold out). A request the gate admits (or
that goes to the database because the gate is off, unbuilt or down) takes its place with the conditional
update first and looks things up only when that succeeded; a lookup or a rule that fails rolls the place back
with the transaction (and gives the gate its place back). The rules: one booking holding a place per patient,
item and Asia/Shanghai day of the appointment (a unique key on the order, so two devices at once cannot both
pass), and per user HPAY_BOOKINGS_PER_USER_PER_DAY bookings made per day (the user's row is locked while
counting, so concurrent requests of one user count one after the other).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, bindparam, func, literal, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.admission_gate import ADMITTED, INVENTORY_FULL, SLOT_FULL, Admission
from app.db.models import Clinic, Item, MerchantAccount, MpUser, Order, Patient, Slot
from app.domain import orders as o
from app.domain.errors import Conflict, NotFound
from app.runtime import Runtime
from app.services.booking import gate
from app.services.clinics import (
    PLATFORM,
    clinic_item_criteria,
    clinic_item_or_refusal,
    paying_account_or_refusal,
    require_clinic_item,
)
from app.services.common.principals import MpPrincipal, MpSignedSession
from app.services.common.staff_scope import MAX_ROW_ID, SHANGHAI
from app.services.orders import claim_open_slot_place, take_inventory_place
from app.services.people import confirm_session_in, user_patient_criteria, user_patient_or_refusal


def sold_out(full: str, channel: str) -> Conflict:
    if full == SLOT_FULL:
        return Conflict("this time slot is fully booked", "slot_sold_out")
    return Conflict(f"no more of this item can be sold through {channel}", "inventory_sold_out")


def admit(rt: Runtime, principal: MpPrincipal, data: dict) -> Admission:
    """Ask the gate before any database work; a sold-out answer ends the request here."""
    admission = gate.admit(rt, principal.clinic_id, data["item_id"], data["slot_id"], data["channel"])
    if admission.answer in (SLOT_FULL, INVENTORY_FULL):
        raise sold_out(admission.answer, data["channel"])
    return admission


def remembers_sold_out(rt: Runtime) -> bool:
    """Whether this process remembers any sold-out answer now (outside a crowd, none: nothing to look up)."""
    return rt.settings.BOOKING_GATE_ENABLED and rt.booking_gate.sold_out_memo.holds_any()


def remembered_sold_out(rt: Runtime, clinic_id: int, item_id: int, slot_id: int, channel: str) -> Conflict | None:
    """The sold-out refusal `admit` would give now from this process's memory alone (no Redis, no database), or
    None: what lets a crowd's repeated requests be answered before the web framework (app.api.mp.sold_out_edge)."""
    if not rt.settings.BOOKING_GATE_ENABLED:
        return None
    remembered = rt.booking_gate.remembered(clinic_id, item_id, slot_id, channel)
    return None if remembered is None else sold_out(remembered.answer, channel)


def settle_refusal(rt: Runtime, admission: Admission, data: dict, exc: BaseException) -> None:
    """The database refused after the gate admitted: drain the gate when it said full, else give back."""
    if admission.answer != ADMITTED:
        return
    where = (data["slot_id"], data["item_id"], data["channel"])
    code = getattr(exc, "code", None)
    if code in ("slot_sold_out", "inventory_sold_out"):
        gate.drain(rt, admission, *where, full=SLOT_FULL if code == "slot_sold_out" else INVENTORY_FULL)
    else:
        gate.give_back(rt, admission, *where)


@dataclass(frozen=True)
class BookedRows:
    """The rows a booking read, held until its answer is built: the session's identity map holds rows weakly, and
    the answer would otherwise read each of them again."""

    slot: Slot
    item: Item
    patient: Patient


def fill_booking(rt: Runtime, session: Session, mp_session: MpSignedSession, data: dict, order: Order) -> BookedRows:
    """Confirm the session, take the slot's place and check the request against what it names; raise (rolling
    back) on any refusal. The item's stock is taken afterwards by `take_stock`, the last statement before the
    commit."""
    principal = mp_session.principal
    item_id, slot_id, channel, now = data["item_id"], data["slot_id"], order.channel, order.created_at
    # The session's check and the daily cap's lock on the user's row in one statement.
    confirm_session_in(session, mp_session, lock_user=rt.settings.BOOKINGS_PER_USER_PER_DAY > 0)
    slot = claim_open_slot_place(session, slot_id, item_id, open_at=now)
    if slot is None:
        _why_not(session, principal, item_id, slot_id, now)
        raise sold_out(SLOT_FULL, channel)
    clinic, account, patient, item, made_today = session.execute(
        *_what_the_request_names(rt, principal, data["patient_id"], item_id, now)).one()
    account = paying_account_or_refusal(clinic, account)
    patient = user_patient_or_refusal(patient, data["patient_id"])
    item = clinic_item_or_refusal(item, item_id)
    if item.collected_by != account.owner:
        raise Conflict(f"this item is paid through the {item.collected_by}'s app, not the one you signed in through",
                       "item_not_sold_through_this_app")
    if channel not in item.channels:
        raise Conflict(f"this item is not offered through {channel}", "channel_not_offered")
    if item.collected_by == PLATFORM:
        # What the platform will owe the clinic for it, as the price is now: a later change moves no past order.
        price = (item.purchase_price_fen or {}).get(channel)
        if price is None:
            raise Conflict(f"this item has no {channel} purchase price; it cannot be sold there yet",
                           "purchase_price_missing")
        order.purchase_price_fen = int(price)
    _within_daily_limit(rt, made_today)
    order.patient_id, order.item_id, order.slot_id = patient.id, item.id, slot_id
    order.appointment_at, order.amount_fen = slot.starts_at, item.price_fen
    order.description = item.name[:200]
    order.active_booking_key = o.active_booking_key(patient.id, item.id, slot.starts_at)
    order.payments = []  # set while the order is new: read after the insert, it would be queried
    return BookedRows(slot, item, patient)


def take_stock(session: Session, order: Order) -> None:
    """One place of the item's stock on the order's channel. Every booking of the item queues on this row's lock
    until its transaction ends, so it is taken last, once the order is written and its answer built: the lock is
    held for this statement and the commit, not for Python work a busy process may be slow to get back to."""
    if not take_inventory_place(session, order.item_id, order.channel):
        raise sold_out(INVENTORY_FULL, order.channel)


class OrderNumberTaken(Exception):
    """Another order holds the number just made for a new one (its random part repeated within the same second):
    the caller's transaction rolled back, and the order is placed again with a new number."""


def insert_booking(session: Session, order: Order) -> None:
    """Add the order; the unique key refuses a patient's second booking of the item that day."""
    session.add(order)
    flush_booking_key(session, order)


def flush_new_order(session: Session) -> None:
    """Write a new order; OrderNumberTaken when its number is another order's."""
    try:
        session.flush()
    except IntegrityError as exc:
        if "order_no" in str(exc.orig):
            raise OrderNumberTaken() from None
        raise


def flush_booking_key(session: Session, order: Order) -> None:
    """Write the order's booking key (new, or moved to another day): 409 when the patient holds another booking
    of the item that day (the caller's transaction then rolls back whole)."""
    who = {"patient_id": order.patient_id, "item_id": order.item_id}  # read now: a failed flush expires the order
    try:
        flush_new_order(session)
    except IntegrityError as exc:
        if "active_booking_key" not in str(exc.orig):
            raise
        raise Conflict("this patient already has a booking of this item on that day", "patient_already_booked",
                       details=who) from None


def _what_the_request_names(rt: Runtime, principal: MpPrincipal, patient_id: int, item_id: int, now: datetime):
    """One statement for the rows a booking checks: the clinic, the app the user signed in through, the patient
    and the item (each None when it is not this user's or this clinic's), and the user's bookings made today.
    The count runs under the lock on the user's row that the session's check took, so concurrent requests of
    one user count one after the other. The ids are in range (the API's schema, or the claim that succeeded)."""
    day_start = datetime.combine(now.astimezone(SHANGHAI).date(), datetime.min.time(), SHANGHAI)
    return _names_statement(rt.settings.BOOKINGS_PER_USER_PER_DAY > 0), {
        "p_clinic": principal.clinic_id, "p_user": principal.user_id, "p_patient": patient_id, "p_item": item_id,
        "p_day_start": day_start, "p_day_end": day_start + timedelta(days=1)}


@functools.cache
def _names_statement(counting: bool):
    """`_what_the_request_names`' statement, built once per process with bound parameters (with or without the
    day's count): building it per request cost each booking about 0.3 ms of CPU."""
    made_today = literal(0)
    if counting:
        made_today = select(func.count()).select_from(Order).where(
            Order.user_id == bindparam("p_user"), Order.type == o.BOOKING, Order.created_at >= bindparam("p_day_start"),
            Order.created_at < bindparam("p_day_end"),
            Order.status.in_(o.COUNTS_TOWARDS_DAILY_LIMIT)).scalar_subquery()
    clinic_id = bindparam("p_clinic")
    return (select(Clinic, MerchantAccount, Patient, Item, made_today)
            .select_from(Clinic)
            .outerjoin(MpUser, MpUser.id == bindparam("p_user"))
            .outerjoin(MerchantAccount, MerchantAccount.id == MpUser.merchant_account_id)
            .outerjoin(Patient, and_(*user_patient_criteria(bindparam("p_user"), clinic_id, bindparam("p_patient"))))
            .outerjoin(Item, and_(*clinic_item_criteria(clinic_id, bindparam("p_item"))))
            .where(Clinic.id == clinic_id))


def _within_daily_limit(rt: Runtime, made_today: int) -> None:
    limit = rt.settings.BOOKINGS_PER_USER_PER_DAY
    if limit > 0 and made_today >= limit:
        raise Conflict(f"you can make at most {limit} bookings a day", "booking_limit_reached",
                       details={"limit": limit})


def _why_not(session: Session, principal: MpPrincipal, item_id: int, slot_id: int, now: datetime) -> None:
    """The conditional update took nothing: say why when it is not simply full."""
    require_clinic_item(session, principal.clinic_id, item_id)
    slot = session.get(Slot, slot_id) if 0 < slot_id <= MAX_ROW_ID else None
    if slot is None or slot.item_id != item_id:
        raise NotFound("no such time slot for this item", "slot_not_found")
    if slot.closed:
        raise Conflict("this time slot is closed", "slot_closed")
    if slot.release_at is not None and slot.release_at > now:
        raise Conflict("this time slot is not released yet", "slot_not_released")
    if slot.starts_at <= now:
        raise Conflict("this time slot has already started", "slot_in_past")
