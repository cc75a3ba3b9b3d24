"""Order types, statuses and the one transition function every status change goes through."""
from __future__ import annotations

from dataclasses import dataclass

from app.domain.errors import InvalidTransition

BOOKING, TOPUP, VISIT_BILL = "booking", "topup", "visit_bill"
ORDER_TYPES = (BOOKING, TOPUP, VISIT_BILL)

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

_COMMON = {
    # Unpaid: paid by the channel, closed on expiry, cancelled by the patient.
    CREATED: {PAID, CLOSED, CANCELLED},
    # A payment that arrived after we closed the order and could still be honoured.
    CLOSED: {PAID},
    REFUNDING: {REFUNDED, PARTIALLY_REFUNDED},
    PARTIALLY_REFUNDED: {REFUNDING, REFUNDED},
}

TRANSITIONS: dict[str, dict[str, set[str]]] = {
    BOOKING: {
        **_COMMON,
        PAID: {BOOKED, REFUNDING},
        # Staff may confirm a booked order again (another patient or time), and move a rescheduled one again.
        BOOKED: {BOOKED, REDEEMED, NO_SHOW, REFUNDING},
        NO_SHOW: {RESCHEDULED, REFUNDING},
        RESCHEDULED: {RESCHEDULED, REDEEMED, NO_SHOW, REFUNDING},
    },
    # Top-ups and visit bills are complete once the HIS recorded them; their money may later be
    # refunded (card balance refunds draw on top-up orders).
    TOPUP: {**_COMMON, PAID: {COMPLETED, REFUNDING}, COMPLETED: {REFUNDING, PARTIALLY_REFUNDED, REFUNDED}},
    VISIT_BILL: {**_COMMON, PAID: {COMPLETED, REFUNDING}, COMPLETED: {REFUNDING}},
}

# Statuses in which the order's money was received.
MONEY_RECEIVED = {PAID, COMPLETED, BOOKED, REDEEMED, NO_SHOW, RESCHEDULED, REFUNDING, PARTIALLY_REFUNDED}
# Statuses that hold a slot and inventory place.
HOLDS_PLACE = {CREATED, PAID, BOOKED, NO_SHOW, RESCHEDULED}


@dataclass(frozen=True)
class Transition:
    order_type: str
    from_status: str
    to_status: str
    reason: str


def transition(order_type: str, from_status: str, to_status: str, reason: str) -> Transition:
    """Refuse an illegal move; return the event to record with the conditional update."""
    allowed = TRANSITIONS.get(order_type, {}).get(from_status, set())
    if to_status not in allowed:
        raise InvalidTransition(
            f"a {order_type} order cannot go from {from_status} to {to_status}",
            details={"from": from_status, "to": to_status},
        )
    return Transition(order_type, from_status, to_status, reason)


def can_transition(order_type: str, from_status: str, to_status: str) -> bool:
    return to_status in TRANSITIONS.get(order_type, {}).get(from_status, set())
