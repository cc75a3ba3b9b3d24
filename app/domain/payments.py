"""The payment attempt: one try to pay an order on one channel, and what a verified payment came to."""
from __future__ import annotations

from enum import StrEnum

from app.domain.state_machine import StateMachine


class PaymentStatus(StrEnum):
    PENDING = "pending"
    """Created and sent to the channel; no outcome known yet."""
    PAID = "paid"
    CLOSED = "closed"
    """The order is over and the channel holds no money for this attempt (or closed the trade)."""


PAYMENT_ATTEMPT = StateMachine("payment attempt", PaymentStatus, {
    PaymentStatus.PENDING: {PaymentStatus.PAID, PaymentStatus.CLOSED},
    # A payment that arrives after we closed the attempt (a late payment) is still recorded.
    PaymentStatus.CLOSED: {PaymentStatus.PAID},
})


class PaymentOutcome(StrEnum):
    """What recording a verified payment did."""

    PAID = "paid"
    LATE_HONOURED = "late_honoured"
    LATE_REFUNDED = "late_refunded"
    DUPLICATE_REFUNDED = "duplicate_refunded"
    ALREADY_RECORDED = "already_recorded"


class ChannelCheck(StrEnum):
    """What asking the channel about an attempt before closing its order found."""

    PAID = "paid"
    """Paid after all: recorded."""
    CLOSED = "closed"
    """Not paid, and closed at the channel when it was still open."""
    UNKNOWN = "unknown"
    """The channel did not answer clearly: try again later, close nothing."""


class InboxStatus(StrEnum):
    RECEIVED = "received"
    PROCESSED = "processed"
    FAILED = "failed"


INBOX_NOTIFICATION = StateMachine("inbox notification", InboxStatus, {
    InboxStatus.RECEIVED: {InboxStatus.PROCESSED, InboxStatus.FAILED},
})
