"""The HIS interface: our own value types and errors, never transport objects.

Every write carries an idempotency key the HIS honours: repeating a write with the same key and
arguments returns the first result and changes nothing, so after `HisUnavailable` (which includes
a timeout, where the HIS may well have written) the caller sends the same write with the same key
again. A different write under a used key is refused with `HisRejected('idempotency_conflict')`.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

BILL_KINDS = ("exam", "lab", "prescription", "treatment", "charge")
RECORD_KINDS = ("registration", "registration_revert", "recharge", "bill_settlement", "charge", "refund_hold",
                "refund_restore", "bill_settlement_reversal", "charge_adjustment")


@dataclass(frozen=True)
class HisConfig:
    """Where a clinic's HIS is and the key pair both directions sign with (app.his.signing)."""

    clinic_code: str
    base_url: str
    key_id: str
    secret: str = field(repr=False)


@dataclass(frozen=True)
class HisPatient:
    id: str
    name: str
    phone: str = field(repr=False)
    id_number: str | None = field(repr=False)
    card_nos: tuple[str, ...] = ()


@dataclass(frozen=True)
class HisCard:
    card_no: str
    balance_fen: int
    patient: HisPatient


@dataclass(frozen=True)
class HisBill:
    bill_id: str
    card_no: str
    kind: str
    """One of BILL_KINDS."""
    title: str
    amount_fen: int
    status: str
    """`unpaid` or `paid`."""
    paid_by: str | None = None
    """The order_no that settled it, `window` when paid at the hospital window, None while unpaid."""


@dataclass(frozen=True)
class HisRegistration:
    order_no: str
    card_no: str | None
    patient_id: str
    item_code: str
    appointment_at: datetime
    amount_fen: int
    status: str
    """`active` or `reverted`."""


@dataclass(frozen=True)
class HisWriteResult:
    idempotency_key: str
    kind: str
    """One of RECORD_KINDS."""
    record_id: str
    card_no: str | None
    amount_fen: int
    order_no: str
    recorded_at: datetime
    balance_fen: int | None = None
    """The card's balance right after this write (None for registrations)."""
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Details of the record: `bill_ids`, `settlement_type`, `patient_id`, `item_code`, `appointment_at`."""
    replayed: bool = False
    """True when the HIS had already done this write under this key and answered from its record."""


@dataclass(frozen=True)
class HisRecord:
    """One row of the HIS's daily export: what it recorded, for reconciliation."""

    idempotency_key: str
    kind: str
    card_no: str | None
    amount_fen: int
    order_no: str
    recorded_at: datetime


class HisError(Exception):
    """Something went wrong talking to the HIS."""


class HisUnavailable(HisError):
    """Network error, timeout, 5xx, or an answer that is unreadable or carries no HIS error code: the
    outcome is unknown, so send the same request with the same idempotency key again later."""


class HisUnreachable(HisUnavailable):
    """No answer at all: connection refused, a name that does not resolve, a timeout."""


class HisUnrecognised(HisUnavailable):
    """An answer, but not in the HIS's shape (HTML, other JSON, an error without a HIS error code): most likely
    the base URL points at something that is not this HIS API."""


class HisAuthFailed(HisUnavailable):
    """The HIS refused our key (401/403). A configuration fault rather than a verdict on the write: it is
    retried like an outage so that fixing the key lets every pending write go through."""


class HisRejected(HisError):
    """A definitive refusal with the HIS's code (bill_already_paid, insufficient_balance,
    idempotency_conflict, invalid_request…): sending it again changes nothing."""

    def __init__(self, code: str, message: str = "", status: int | None = None) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message
        self.status = status


class HisNotFound(HisRejected):
    """No such card, patient, bill or registration."""


class HisClient(ABC):
    # --- patients and cards ----------------------------------------------------
    @abstractmethod
    def get_card(self, card_no: str) -> HisCard:
        """HisNotFound for an unknown card."""

    @abstractmethod
    def get_balance(self, card_no: str) -> int:
        """The card's balance in fen, live."""

    @abstractmethod
    def find_patients(self, phone: str | None = None, *, id_number: str | None = None) -> list[HisPatient]:
        """Every patient with this phone and/or ID number (family members may share a phone)."""

    @abstractmethod
    def get_patient(self, patient_id: str) -> HisPatient:
        ...

    @abstractmethod
    def create_patient(self, name: str, phone: str, id_number: str | None = None,
                       idempotency_key: str | None = None) -> HisPatient:
        ...

    @abstractmethod
    def open_card(self, patient_id: str, idempotency_key: str | None = None) -> HisCard:
        """A new card with balance 0 for an existing patient."""

    # --- visit bills -------------------------------------------------------------
    @abstractmethod
    def unpaid_bills(self, card_no: str) -> list[HisBill]:
        ...

    @abstractmethod
    def get_bill(self, bill_id: str) -> HisBill:
        ...

    @abstractmethod
    def create_bill(self, card_no: str, kind: str, title: str, amount_fen: int,
                    idempotency_key: str | None = None) -> HisBill:
        """An unpaid bill on the card, e.g. an extra charge at redemption."""

    # --- ledger writes -------------------------------------------------------------
    @abstractmethod
    def recharge(self, card_no: str, amount_fen: int, order_no: str, idempotency_key: str) -> HisWriteResult:
        ...

    @abstractmethod
    def settle_bills(self, card_no: str, bill_ids: list[str], amount_fen: int, order_no: str,
                     idempotency_key: str) -> HisWriteResult:
        """amount_fen must equal the bills' sum; HisRejected('bill_already_paid') if any is paid already."""

    @abstractmethod
    def register(self, order_no: str, item_code: str, appointment_at: datetime, idempotency_key: str, *,
                 card_no: str | None = None, patient_id: str | None = None, amount_fen: int = 0) -> HisWriteResult:
        """Needs card_no or patient_id; HisRejected('already_registered') while the order has an active one."""

    @abstractmethod
    def revert_registration(self, order_no: str, idempotency_key: str) -> HisWriteResult:
        ...

    @abstractmethod
    def get_registration(self, order_no: str) -> HisRegistration:
        """The order's latest registration."""

    @abstractmethod
    def charge(self, order_no: str, card_no: str, amount_fen: int, settlement_type: str,
               idempotency_key: str) -> HisWriteResult:
        """The charge record of a redeemed package; the card balance is unchanged."""

    @abstractmethod
    def refund_hold(self, card_no: str, amount_fen: int, order_no: str, idempotency_key: str) -> HisWriteResult:
        """Take amount_fen off the card for a refund; HisRejected('insufficient_balance') if it is not there."""

    @abstractmethod
    def refund_restore(self, card_no: str, amount_fen: int, order_no: str, idempotency_key: str) -> HisWriteResult:
        """Give back what a refund_hold under the same order_no took; no more than it still holds."""

    @abstractmethod
    def reverse_bill_settlement(self, card_no: str, amount_fen: int, order_no: str,
                                idempotency_key: str) -> HisWriteResult:
        """Reverse (part of) the bill settlement of order_no for a refund; the card balance is unchanged.
        HisRejected('reversal_exceeds_settlement') beyond what the order settled and has not had reversed."""

    @abstractmethod
    def adjust_charge(self, order_no: str, card_no: str, amount_fen: int, idempotency_key: str) -> HisWriteResult:
        """Reduce the charge record of a redeemed package by amount_fen (a refund after redemption); the card
        balance is unchanged. HisRejected('adjustment_exceeds_charge') beyond what the charges of order_no hold."""

    # --- reconciliation ---------------------------------------------------------------
    @abstractmethod
    def export(self, day: date) -> list[HisRecord]:
        """What the HIS recorded on this Asia/Shanghai date, in write order."""
