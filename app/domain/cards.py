"""Binding a HIS card: the one-time SMS code a holder proves themselves with."""
from __future__ import annotations

from enum import StrEnum

from app.domain.state_machine import StateMachine


class CardVerificationStatus(StrEnum):
    PENDING = "pending"
    USED = "used"
    SUPERSEDED = "superseded"
    """A newer code was asked for the same patient and card."""
    FAILED = "failed"
    """The text could not be sent."""


CARD_VERIFICATION = StateMachine("card verification", CardVerificationStatus, {
    CardVerificationStatus.PENDING: {CardVerificationStatus.USED, CardVerificationStatus.SUPERSEDED,
                                     CardVerificationStatus.FAILED},
})
