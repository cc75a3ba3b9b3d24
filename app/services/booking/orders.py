"""Placing, reading and cancelling a patient's orders.

A booking reserves its slot and the item's channel inventory in the same
transaction that creates the order (conditional increments, so a flash crowd
never oversells); the place is held until the order is paid, or released when
it expires or is cancelled. A visit-bill order's amount comes from the HIS.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from app.db.models import Card, Clinic, MerchantAccount, Order
from app.db.types import utcnow
from app.domain import ids
from app.domain import orders as o
from app.domain.errors import Conflict, InvalidInput, NotFound, Unavailable
from app.domain.payments import ChannelCheck
from app.his.base import HisNotFound, HisUnavailable
from app.runtime import Runtime
from app.services.booking import placing
from app.services.booking.cancellations import cancel_paid_booking
from app.services.clinics import CLINIC, require_paying_account
from app.services.common.principals import MpPrincipal, MpSignedSession
from app.services.his import his_client
from app.services.orders import describe, describe_many, move
from app.services.payments import close_pending_attempts, pending_attempts, settle_attempt_at_channel
from app.services.people import confirm_session, require_user_card

MAX_BILLS_PER_ORDER = 20
ORDER_NUMBER_TRIES = 3


def _load(session: Session, principal: MpPrincipal, order_no: str) -> Order:
    order = session.scalar(select(Order).where(Order.order_no == order_no, Order.user_id == principal.user_id)
                           .options(selectinload(Order.payments)))
    if order is None:
        raise NotFound("no such order", "order_not_found")
    return order


def get_order(rt: Runtime, principal: MpPrincipal, order_no: str) -> dict:
    with rt.db.session() as session:
        return describe(session, _load(session, principal, order_no))


def list_orders(rt: Runtime, principal: MpPrincipal, limit: int = 50, offset: int = 0) -> list[dict]:
    with rt.db.session() as session:
        return describe_many(session, list(session.scalars(
            select(Order).where(Order.user_id == principal.user_id).options(selectinload(Order.payments))
            .order_by(Order.id.desc()).limit(limit).offset(offset))))


def create_order(rt: Runtime, mp_session: MpSignedSession, data: dict) -> dict:
    """Place an order for a signed-in user whose session the database has not confirmed yet: a booking asks the
    admission gate first, and a sold-out answer (what the catalogue shows anyone) needs no database work."""
    principal = mp_session.principal
    channel = data["channel"]
    if channel != principal.channel:
        raise InvalidInput(f"you are signed in through {principal.channel}; pay with {principal.channel}",
                           "channel_mismatch")
    if data["type"] == o.BOOKING:
        return _create_booking(rt, mp_session, data)
    confirm_session(rt, mp_session)
    with rt.db.session() as session:
        _paying_account(session, principal, data["type"])
    bills = _fetch_bills(rt, principal, data) if data["type"] == o.VISIT_BILL else None
    return _numbered(lambda: _place_card_order(rt, principal, data, bills))


def _numbered(place: Callable[[], dict]) -> dict:
    """`place()`, again with a new order number when the one it made was taken: with 100 orders in a second the
    6 random digits of two of them are the same with a chance of about 1 in 200 (4,950 pairs), and that must
    not be a failed request."""
    for _ in range(ORDER_NUMBER_TRIES):
        try:
            return place()
        except placing.OrderNumberTaken:
            continue
    raise Unavailable("no free order number was found; try again", "order_number_unavailable", retry_after_s=1)


def _place_card_order(rt: Runtime, principal: MpPrincipal, data: dict, bills: dict[str, int] | None) -> dict:
    with rt.db.session() as session:
        _paying_account(session, principal, data["type"])
        order = _new_order(rt, principal, data)
        if data["type"] == o.TOPUP:
            _topup(rt, session, principal, data, order)
        else:
            _visit_bills(session, principal, data, order, bills)
        session.add(order)
        placing.flush_new_order(session)
        order.payments = []
        return describe(session, order)


def _new_order(rt: Runtime, principal: MpPrincipal, data: dict) -> Order:
    now = utcnow()
    return Order(order_no=ids.new_business_no(data["type"], now), clinic_id=principal.clinic_id,
                 user_id=principal.user_id, type=data["type"], status=o.CREATED, channel=data["channel"],
                 refunded_fen=0, expires_at=now + timedelta(seconds=rt.settings.ORDER_TTL_S), created_at=now,
                 updated_at=now)


def _create_booking(rt: Runtime, mp_session: MpSignedSession, data: dict) -> dict:
    """The admission gate first (a sold-out answer ends here), then one transaction that confirms the session and
    books (app.services.booking.placing); a refusal after the gate admitted gives its place back."""
    principal = mp_session.principal
    admission = placing.admit(rt, principal, data)
    try:
        return _numbered(lambda: _book(rt, mp_session, data))
    except BaseException as exc:
        placing.settle_refusal(rt, admission, data, exc)
        raise


def _book(rt: Runtime, mp_session: MpSignedSession, data: dict) -> dict:
    with rt.db.session() as session:
        order = _new_order(rt, mp_session.principal, data)
        booked = placing.fill_booking(rt, session, mp_session, data, order)
        placing.insert_booking(session, order)
        answer = describe(session, order)
        del booked  # held until the answer was built from the rows it read
        placing.take_stock(session, order)
    return answer


def _paying_account(session: Session, principal: MpPrincipal, order_type: str) -> MerchantAccount:
    """The app this user pays through, when the clinic and the app take new orders of this type: a card top-up
    or a visit bill is the clinic's own money, never paid through the platform's app."""
    account = require_paying_account(session, session.get(Clinic, principal.clinic_id), principal.user_id)
    if order_type != o.BOOKING and account.owner != CLINIC:
        raise Conflict("card top-ups and visit bills are paid through the clinic's own app",
                       "clinic_payment_through_platform_app")
    return account


def _topup(rt: Runtime, session: Session, principal: MpPrincipal, data: dict, order: Order) -> None:
    card = require_user_card(session, principal, data["card_no"])
    amount = data["amount_fen"]
    low, high = rt.settings.TOPUP_MIN_FEN, rt.settings.TOPUP_MAX_FEN
    if not low <= amount <= high:
        raise InvalidInput(f"a top-up must be between {low} and {high} fen", "amount_out_of_range",
                           details={"min_fen": low, "max_fen": high})
    order.card_no, order.patient_id, order.amount_fen = card.card_no, card.patient_id, amount
    order.description = "就诊卡充值 Card top-up"


def _fetch_bills(rt: Runtime, principal: MpPrincipal, data: dict) -> dict[str, int]:
    """The HIS's unpaid bills of the card that the patient chose, with the HIS's amounts."""
    wanted = data["bill_ids"]
    if not wanted or len(wanted) > MAX_BILLS_PER_ORDER or len(set(wanted)) != len(wanted):
        raise InvalidInput(f"choose 1 to {MAX_BILLS_PER_ORDER} different bills", "invalid_bill_ids")
    with rt.db.session() as session:
        require_user_card(session, principal, data["card_no"])
        client = his_client(rt, session.get(Clinic, principal.clinic_id))
    try:
        unpaid = {b.bill_id: b.amount_fen for b in client.unpaid_bills(data["card_no"])}
    except HisNotFound:
        raise NotFound("the HIS does not know this card", "card_not_found") from None
    except HisUnavailable:
        raise Unavailable("the hospital system did not answer; try again", "his_unavailable") from None
    missing = [b for b in wanted if b not in unpaid]
    if missing:
        raise Conflict(f"these bills are not waiting for payment (paid elsewhere?): {', '.join(missing)}",
                       "bill_not_payable", details={"bill_ids": missing})
    return {b: unpaid[b] for b in wanted}


def _visit_bills(session: Session, principal: MpPrincipal, data: dict, order: Order, bills: dict[str, int]) -> None:
    card = require_user_card(session, principal, data["card_no"])
    # Serialise orders on this card so two open orders never cover the same bill.
    session.scalar(select(Card).where(Card.id == card.id).with_for_update())
    open_orders = session.scalars(select(Order).where(
        Order.clinic_id == principal.clinic_id, Order.type == o.VISIT_BILL, Order.card_no == card.card_no,
        Order.status.in_(o.OPEN_BILL_ORDER)))
    taken = {b for other in open_orders for b in (other.bill_ids or [])} & set(bills)
    if taken:
        raise Conflict(f"these bills are already in an open order: {', '.join(sorted(taken))}", "bill_in_progress",
                       details={"bill_ids": sorted(taken)})
    order.card_no, order.patient_id = card.card_no, card.patient_id
    order.bill_ids, order.amount_fen = list(bills), sum(bills.values())
    order.description = "门诊缴费 Visit bills"


def cancel_order(rt: Runtime, principal: MpPrincipal, order_no: str, reason: str | None) -> dict:
    """An unpaid order is cancelled at once; a paid booking is cancelled and refunded in full."""
    with rt.db.session() as session:
        order = _load(session, principal, order_no)
        order_id, status, order_type = order.id, order.status, order.type
    if status != o.CREATED and order_type == o.BOOKING:
        return cancel_paid_booking(rt, order_id, actor=f"mp_user:{principal.user_id}",
                                   reason=reason or "cancelled by the patient", enforce_patient_deadline=True)
    if status != o.CREATED:
        raise Conflict(f"a {status} {order_type} order cannot be cancelled; ask for a refund instead",
                       "invalid_transition")
    return _cancel_unpaid(rt, principal, order_no, reason)


def _cancel_unpaid(rt: Runtime, principal: MpPrincipal, order_no: str, reason: str | None) -> dict:
    """Close the order's trades at the channel first, so no payment slips in, then cancel."""
    with rt.db.session() as session:
        order = _load(session, principal, order_no)
        pending = pending_attempts(rt, session, order)
    for attempt_id, adapter, out_trade_no in pending:
        outcome = settle_attempt_at_channel(rt, attempt_id, adapter, out_trade_no)
        if outcome == ChannelCheck.PAID:
            raise Conflict("the order was paid just now; ask for a refund instead", "order_already_paid")
        if outcome == ChannelCheck.UNKNOWN:
            raise Unavailable("the payment channel did not answer; try again", "channel_unavailable")
    actor = f"mp_user:{principal.user_id}"
    with rt.db.session() as session:
        order = _load(session, principal, order_no)
        if not move(session, order, o.CANCELLED, f"cancelled by the patient: {reason or '-'}", actor=actor,
                    closed_at=utcnow()):
            raise Conflict("the order changed meanwhile; reload it", "invalid_transition")
        close_pending_attempts(session, order, "the patient cancelled the order", actor)
        session.expire(order, ["payments"])
        return describe(session, order)


