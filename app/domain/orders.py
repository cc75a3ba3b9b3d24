"""Order types, statuses and the state machine of each order type; every status change goes through one.

Booking: created -> paid -> booked (confirmed by staff) -> redeemed, with no_show -> rescheduled -> redeemed,
cancelled, closed (unpaid and expired), and refunding / refunded / partially_refunded. Top-ups and visit
bills are complete once the HIS recorded them.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from app.domain.errors import InvalidTransition
from app.domain.ids import SHANGHAI
from app.domain.state_machine import StateMachine


class OrderType(StrEnum):
    BOOKING = "booking"
    TOPUP = "topup"
    VISIT_BILL = "visit_bill"


class OrderStatus(StrEnum):
    CREATED = "created"
    PAID = "paid"
    COMPLETED = "completed"
    BOOKED = "booked"
    REDEEMED = "redeemed"
    NO_SHOW = "no_show"
    RESCHEDULED = "rescheduled"
    CANCELLED = "cancelled"
    CLOSED = "closed"
    REFUNDING = "refunding"
    REFUNDED = "refunded"
    PARTIALLY_REFUNDED = "partially_refunded"


BOOKING, TOPUP, VISIT_BILL = OrderType.BOOKING, OrderType.TOPUP, OrderType.VISIT_BILL
ORDER_TYPES = tuple(OrderType)

CREATED, PAID, COMPLETED = OrderStatus.CREATED, OrderStatus.PAID, OrderStatus.COMPLETED
BOOKED, REDEEMED, NO_SHOW, RESCHEDULED = (OrderStatus.BOOKED, OrderStatus.REDEEMED, OrderStatus.NO_SHOW,
                                          OrderStatus.RESCHEDULED)
CANCELLED, CLOSED = OrderStatus.CANCELLED, OrderStatus.CLOSED
REFUNDING, REFUNDED, PARTIALLY_REFUNDED = (OrderStatus.REFUNDING, OrderStatus.REFUNDED,
                                          OrderStatus.PARTIALLY_REFUNDED)

_COMMON = {
    # Unpaid: paid by the channel, closed on expiry, cancelled by the patient.
    CREATED: {PAID, CLOSED, CANCELLED},
    # A payment that arrived after we closed the order and could still be honoured.
    CLOSED: {PAID},
    REFUNDING: {REFUNDED, PARTIALLY_REFUNDED},
    PARTIALLY_REFUNDED: {REFUNDING, REFUNDED},
}

MACHINES: dict[str, StateMachine[OrderStatus]] = {
    BOOKING: StateMachine("booking order", OrderStatus, {
        **_COMMON,
        PAID: {BOOKED, REFUNDING},
        # Staff may confirm a booked order again (another patient or time), and move a rescheduled one again.
        BOOKED: {BOOKED, REDEEMED, NO_SHOW, REFUNDING},
        NO_SHOW: {RESCHEDULED, REFUNDING},
        RESCHEDULED: {RESCHEDULED, REDEEMED, NO_SHOW, REFUNDING},
    }),
    # Top-ups and visit bills are complete once the HIS recorded them; their money may later be
    # refunded (card balance refunds draw on top-up orders).
    TOPUP: StateMachine("topup order", OrderStatus, {
        **_COMMON, PAID: {COMPLETED, REFUNDING}, COMPLETED: {REFUNDING, PARTIALLY_REFUNDED, REFUNDED}}),
    # A staff refund of part or all of a visit bill moves it once the money went back.
    VISIT_BILL: StateMachine("visit_bill order", OrderStatus, {
        **_COMMON, PAID: {COMPLETED, REFUNDING}, COMPLETED: {REFUNDING, PARTIALLY_REFUNDED, REFUNDED}}),
}

# Statuses in which the order's money was received.
MONEY_RECEIVED = frozenset({PAID, COMPLETED, BOOKED, REDEEMED, NO_SHOW, RESCHEDULED, REFUNDING, PARTIALLY_REFUNDED})
# Statuses that hold a slot and inventory place.
HOLDS_PLACE = frozenset({CREATED, PAID, BOOKED, NO_SHOW, RESCHEDULED})
# Bookings that count towards a user's daily limit: all but those that ended unpaid (cancelled, expired).
COUNTS_TOWARDS_DAILY_LIMIT = HOLDS_PLACE | {REDEEMED, REFUNDING, REFUNDED, PARTIALLY_REFUNDED}
# A paid booking that has not been redeemed yet: cancellable (and refunded in full).
CANCELLABLE_BOOKING = (PAID, BOOKED, NO_SHOW, RESCHEDULED)
# A booking on its way to the appointment: watched for no-shows, kept in step with the HIS registration.
AWAITING_VISIT = (BOOKED, RESCHEDULED)
# Top-ups whose money may go back to the card holder.
REFUNDABLE_TOPUP = (COMPLETED, PARTIALLY_REFUNDED)
# An unpaid order or one paid and not yet recorded by the HIS: its visit bills are taken.
OPEN_BILL_ORDER = (CREATED, PAID)


def machine_of(order_type: str) -> StateMachine[OrderStatus]:
    try:
        return MACHINES[order_type]
    except KeyError:
        raise InvalidTransition(f"{order_type!r} is not an order type", details={"type": order_type}) from None


@dataclass(frozen=True)
class Transition:
    order_type: str
    from_status: OrderStatus
    to_status: OrderStatus
    reason: str


def transition(order_type: str, from_status: str, to_status: str, reason: str) -> Transition:
    """Refuse an illegal move; return the event to record with the conditional update."""
    origin, target = machine_of(order_type).check(from_status, to_status)
    return Transition(order_type, origin, target, reason)


def can_transition(order_type: str, from_status: str, to_status: str) -> bool:
    return order_type in MACHINES and MACHINES[order_type].allows(from_status, to_status)


def active_booking_key(patient_id: int, item_id: int, appointment_at: datetime) -> str:
    """The unique key of a booking holding a place: one per patient, item and Asia/Shanghai day of the
    appointment (hospitals' rule), so two devices booking at once cannot both pass."""
    return f"{patient_id}:{item_id}:{appointment_at.astimezone(SHANGHAI).date().isoformat()}"
