"""The hospital's card-refund rules, made exact (seed 000, section 3.3).

An online refund of a card balance may not exceed the card's current HIS
balance, nor the online top-ups made to the card (through this channel app for
a patient's request, through every app for a window request) minus what was
already refunded from them. It is split across the original top-up orders,
newest first, each part no larger than what remains of its order; orders past
the channel's refund window or at its refund-count limit are skipped.

Every refund part and every request is a state machine; a request's status follows from its parts'
(`request_status`).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from app.domain.errors import Conflict, InvalidInput
from app.domain.state_machine import StateMachine

# WeChat Pay refuses a 51st refund of one payment.
WECHAT_MAX_REFUNDS_PER_PAYMENT = 50


class RefundStatus(StrEnum):
    """A refund part: money going back along one payment."""

    WAITING = "waiting"
    """Held back until a HIS write it depends on is recorded (a card hold, a registration revert)."""
    PENDING = "pending"
    """To be sent to the channel (again: its number is reused)."""
    PROCESSING = "processing"
    """The channel accepted it; its outcome is followed."""
    SUCCEEDED = "succeeded"
    FAILED = "failed"


REFUND = StateMachine("refund", RefundStatus, {
    RefundStatus.WAITING: {RefundStatus.PENDING, RefundStatus.FAILED},
    RefundStatus.PENDING: {RefundStatus.PROCESSING, RefundStatus.SUCCEEDED, RefundStatus.FAILED},
    # The channel may say it never got a refund it had accepted: sending it again under its number is safe.
    RefundStatus.PROCESSING: {RefundStatus.SUCCEEDED, RefundStatus.FAILED, RefundStatus.PENDING},
})
IN_FLIGHT = (RefundStatus.PENDING, RefundStatus.PROCESSING)
UNSETTLED = frozenset({RefundStatus.WAITING, RefundStatus.PENDING, RefundStatus.PROCESSING})


class RefundRequestStatus(StrEnum):
    AWAITING_APPROVAL = "awaiting_approval"
    """A staff refund above the approval threshold: no parts yet; its amount is held against the order."""
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    PARTIALLY_FAILED = "partially_failed"
    REJECTED = "rejected"
    """Finance said no; nothing left."""


REFUND_REQUEST = StateMachine("refund request", RefundRequestStatus, {
    RefundRequestStatus.AWAITING_APPROVAL: {RefundRequestStatus.PROCESSING, RefundRequestStatus.REJECTED},
    RefundRequestStatus.PROCESSING: {RefundRequestStatus.SUCCEEDED, RefundRequestStatus.FAILED,
                                     RefundRequestStatus.PARTIALLY_FAILED},
})


def request_status(part_statuses: Iterable[str]) -> RefundRequestStatus:
    """A request is processing while any part is unsettled, then succeeded, failed or partially failed."""
    statuses = {RefundStatus(status) for status in part_statuses}
    if statuses & UNSETTLED:
        return RefundRequestStatus.PROCESSING
    if statuses <= {RefundStatus.SUCCEEDED}:
        return RefundRequestStatus.SUCCEEDED
    if statuses <= {RefundStatus.FAILED}:
        return RefundRequestStatus.FAILED
    return RefundRequestStatus.PARTIALLY_FAILED


class RefundOrigin(StrEnum):
    PATIENT = "patient"
    """A patient's refund of a card balance, through the mini-program."""
    WINDOW = "window"
    """A card-balance refund the HIS started at the hospital's window."""
    CANCELLATION = "cancellation"
    HIS_REJECTED = "his_rejected"
    """The HIS refused what the payment was for."""
    LATE_PAYMENT = "late_payment"
    DUPLICATE_PAYMENT = "duplicate_payment"
    ADMIN = "admin"
    STAFF = "staff"
    """A staff refund of (part of) one paid order, approved by finance above HPAY_REFUND_APPROVAL_FEN."""


# Refunds of money the order kept (as opposed to a second or late payment the order never needed).
ORDER_MONEY_ORIGINS = frozenset({RefundOrigin.HIS_REJECTED, RefundOrigin.CANCELLATION, RefundOrigin.PATIENT,
                                 RefundOrigin.WINDOW, RefundOrigin.ADMIN, RefundOrigin.STAFF})
# Card-balance refunds took their amount off the card first; a failed part gives it back.
CARD_ORIGINS = frozenset({RefundOrigin.PATIENT, RefundOrigin.WINDOW})


@dataclass(frozen=True)
class RefundableTopup:
    order_id: int
    paid_at: datetime
    remaining_fen: int
    """The order's amount minus what is refunded or on its way back."""
    skip_reason: str | None = None
    """Why the channel cannot take a refund of this order now (window passed, count limit)."""


@dataclass(frozen=True)
class RefundPart:
    order_id: int
    amount_fen: int


def check_limits(amount_fen: int, balance_fen: int, topups: list[RefundableTopup]) -> None:
    if amount_fen <= 0:
        raise InvalidInput("the refund amount must be at least 1 fen", "invalid_amount")
    if amount_fen > balance_fen:
        raise Conflict(f"the card holds {balance_fen} fen; {amount_fen} fen cannot be refunded",
                       "refund_exceeds_balance", details={"balance_fen": balance_fen})
    topped_up = sum(t.remaining_fen for t in topups)
    if amount_fen > topped_up:
        raise Conflict(f"only {topped_up} fen of online top-ups remain to refund", "refund_exceeds_online_topups",
                       details={"refundable_topups_fen": topped_up})
    refundable = sum(t.remaining_fen for t in topups if t.skip_reason is None)
    if amount_fen > refundable:
        skipped = sorted({t.skip_reason for t in topups if t.skip_reason})
        raise Conflict(f"only {refundable} fen can go back online now (some top-ups are {', '.join(skipped)})",
                       "refund_exceeds_refundable_orders", details={"refundable_fen": refundable})


def allocate(amount_fen: int, topups: list[RefundableTopup]) -> list[RefundPart]:
    """Newest top-up first, each part at most what remains of its order; the limits were checked."""
    parts, left = [], amount_fen
    for topup in sorted(topups, key=lambda t: (t.paid_at, t.order_id), reverse=True):
        if left == 0:
            break
        if topup.skip_reason is not None or topup.remaining_fen <= 0:
            continue
        take = min(topup.remaining_fen, left)
        parts.append(RefundPart(topup.order_id, take))
        left -= take
    if left:
        raise Conflict("the top-ups cannot cover this refund", "refund_exceeds_refundable_orders")
    return parts
