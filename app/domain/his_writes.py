"""Writes owed to the HIS: their kinds, the life of an outbox row, and the registration kept in step.

An outbox row is pending until the HIS recorded it (sent) or refused it (rejected); when it cannot be
sent for the retry horizon it is flagged for a person. A flagged write goes back to pending when a person
or the reconciliation re-drives it, and so does a sent one the HIS's export turns out not to hold; the
idempotency key makes the HIS record it once however often it is sent.
"""
from __future__ import annotations

from enum import StrEnum

from app.domain.state_machine import StateMachine


class HisWriteKind(StrEnum):
    RECHARGE = "recharge"
    BILL_SETTLEMENT = "bill_settlement"
    REGISTRATION = "registration"
    REGISTRATION_REVERT = "registration_revert"
    CHARGE = "charge"
    """The charge record of a redeemed package."""
    EXTRA_CHARGE = "extra_charge"
    """An unpaid bill on the card for something charged at redemption outside the package."""
    REFUND_HOLD = "refund_hold"
    REFUND_RESTORE = "refund_restore"
    BILL_SETTLEMENT_REVERSAL = "bill_settlement_reversal"
    """A staff refund of a visit-bill order: the HIS's settlement of its bills reversed for the amount."""
    CHARGE_ADJUSTMENT = "charge_adjustment"
    """A staff refund of a redeemed booking: the package's charge record reduced by the amount."""


# What the HIS keeps in its ledger (and lists in its daily export); an extra charge is a bill, not a record.
LEDGER_KINDS = frozenset(HisWriteKind) - {HisWriteKind.EXTRA_CHARGE}
# What a paid order owes the HIS, by order type.
PAID_ORDER_WRITE = {"topup": HisWriteKind.RECHARGE, "visit_bill": HisWriteKind.BILL_SETTLEMENT,
                    "booking": HisWriteKind.REGISTRATION}


class HisWriteStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    REJECTED = "rejected"
    FLAGGED = "flagged"


HIS_WRITE = StateMachine("HIS write", HisWriteStatus, {
    HisWriteStatus.PENDING: {HisWriteStatus.SENT, HisWriteStatus.REJECTED, HisWriteStatus.FLAGGED},
    HisWriteStatus.FLAGGED: {HisWriteStatus.PENDING},
    HisWriteStatus.SENT: {HisWriteStatus.PENDING},
})


class ExtraChargeStatus(StrEnum):
    """An extra charge as staff see it: the state of its HIS bill's outbox write."""

    PENDING = "pending"
    CREATED = "created"
    REJECTED = "rejected"
    FLAGGED = "flagged"


EXTRA_CHARGE_STATUS = {HisWriteStatus.PENDING: ExtraChargeStatus.PENDING,
                       HisWriteStatus.SENT: ExtraChargeStatus.CREATED,
                       HisWriteStatus.REJECTED: ExtraChargeStatus.REJECTED,
                       HisWriteStatus.FLAGGED: ExtraChargeStatus.FLAGGED}


class RegistrationSyncStatus(StrEnum):
    PENDING = "pending"
    """Work left: the HIS's registration does not match the booking yet."""
    DONE = "done"
    STOPPED = "stopped"
    """The booking left the booked states, or a HIS write was refused or flagged (the note says which)."""


REGISTRATION_SYNC = StateMachine("registration sync", RegistrationSyncStatus, {
    RegistrationSyncStatus.PENDING: {RegistrationSyncStatus.DONE, RegistrationSyncStatus.STOPPED},
    # Staff changed the patient or the time again.
    RegistrationSyncStatus.DONE: {RegistrationSyncStatus.PENDING},
    RegistrationSyncStatus.STOPPED: {RegistrationSyncStatus.PENDING},
})
