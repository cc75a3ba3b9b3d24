"""A staff refund of (part of) one paid order: which orders may be refunded how, what the HIS must be told
before the money leaves, and when finance must approve first (maker-checker).

- A top-up: the amount comes off the card first (`refund_hold`, as a card-balance refund does).
- A visit-bill order: the HIS's bill settlement is reversed for the amount first (`bill_settlement_reversal`).
- A booking not yet redeemed: a partial refund needs no HIS write (the registration stands); a refund of
  everything that remains is the cancellation, which reverts the registration.
- A redeemed booking: the HIS's charge record is adjusted down by the amount (`charge_adjustment`), so its
  revenue matches what the clinic kept.
"""
from __future__ import annotations

from app.domain import orders as o
from app.domain.errors import Conflict, InvalidInput
from app.domain.his_writes import HisWriteKind

MAX_REASON_LENGTH = 200
# A booking between payment and visit: partly refundable without telling the HIS.
BOOKING_BEFORE_VISIT = frozenset(o.CANCELLABLE_BOOKING)
VISIT_BILL_REFUNDABLE = frozenset({o.COMPLETED, o.PARTIALLY_REFUNDED})


def needs_approval(amount_fen: int, approval_threshold_fen: int) -> bool:
    """Above the threshold a second person, from finance, must approve."""
    return amount_fen > approval_threshold_fen


def plan(order_type: str, order_status: str, amount_fen: int, remaining_fen: int) -> HisWriteKind | None:
    """The HIS write the refund waits for (None: the money may leave at once); refuses what may not be refunded."""
    if amount_fen <= 0:
        raise InvalidInput("the refund amount must be at least 1 fen", "invalid_amount")
    if order_type == o.BOOKING:
        kind = _booking(order_status, amount_fen, remaining_fen)
    elif order_type == o.TOPUP and order_status in o.REFUNDABLE_TOPUP:
        kind = HisWriteKind.REFUND_HOLD
    elif order_type == o.VISIT_BILL and order_status in VISIT_BILL_REFUNDABLE:
        kind = HisWriteKind.BILL_SETTLEMENT_REVERSAL
    else:
        raise Conflict(f"a {order_status} {order_type} order cannot be refunded by staff", "order_not_refundable",
                       details={"status": order_status, "type": order_type})
    if amount_fen > remaining_fen:
        raise Conflict(f"only {remaining_fen} fen of this order can still be refunded", "refund_exceeds_refundable",
                       details={"refundable_fen": remaining_fen})
    return kind


def _booking(order_status: str, amount_fen: int, remaining_fen: int) -> HisWriteKind | None:
    if order_status == o.REDEEMED:
        return HisWriteKind.CHARGE_ADJUSTMENT
    if order_status not in BOOKING_BEFORE_VISIT:
        raise Conflict(f"a {order_status} booking cannot be refunded by staff", "order_not_refundable",
                       details={"status": order_status, "type": o.BOOKING})
    if amount_fen == remaining_fen:
        raise Conflict("refunding all that remains of a booking not yet redeemed is its cancellation: cancel the "
                       "booking (POST /bookings/{order_no}/cancel), which also reverts its HIS registration",
                       "use_cancellation")
    return None
