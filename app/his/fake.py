"""An in-memory HIS for the service tests: the HisClient interface over patients, cards, bills and a ledger kept
in this process, honouring idempotency keys like a real HIS, with refusals and outages a test scripts.

The Runtime is given a `FakeHis` as its HIS factory (app.runtime): every clinic then talks to this one HIS.
A test sets up what the hospital already has (`add_card`, `add_bill`, `pay_at_window`) and scripts trouble:
`down` (every call is HisUnavailable), `fail_next(operation, error)`. It never reaches a network.
"""
from __future__ import annotations

import hashlib
import itertools
import json
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta, timezone

from app.his.base import (
    HisBill,
    HisCard,
    HisClient,
    HisConfig,
    HisError,
    HisNotFound,
    HisPatient,
    HisRecord,
    HisRegistration,
    HisRejected,
    HisUnavailable,
    HisWriteResult,
)

SHANGHAI = timezone(timedelta(hours=8))


@dataclass
class FakeHis(HisClient):
    patients: dict[str, HisPatient] = field(default_factory=dict)
    balances: dict[str, int] = field(default_factory=dict)
    """card_no -> balance in fen."""
    holders: dict[str, str] = field(default_factory=dict)
    """card_no -> HIS patient id."""
    bills: dict[str, HisBill] = field(default_factory=dict)
    registrations: dict[str, HisRegistration] = field(default_factory=dict)
    records: list[HisRecord] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    down: bool = False
    _answers: dict[str, tuple[str, object]] = field(default_factory=dict)
    _failures: dict[str, list[HisError]] = field(default_factory=lambda: defaultdict(list))
    _numbers: itertools.count = field(default_factory=lambda: itertools.count(1))

    def __call__(self, _config: HisConfig, _settings=None) -> FakeHis:
        return self

    # --- what a test does -------------------------------------------------------------------------------------
    def add_card(self, name: str, phone: str, balance_fen: int = 0, id_number: str | None = None) -> str:
        patient = self._new_patient(name, phone, id_number)
        return self._new_card(patient.id, balance_fen)

    def add_bill(self, card_no: str, amount_fen: int, title: str = "检验费", kind: str = "lab") -> str:
        bill_id = f"BILL{next(self._numbers):08d}"
        self.bills[bill_id] = HisBill(bill_id, card_no, kind, title, amount_fen, "unpaid")
        return bill_id

    def pay_at_window(self, bill_id: str) -> None:
        self.bills[bill_id] = replace(self.bills[bill_id], status="paid", paid_by="window")

    def cancel_bill(self, bill_id: str) -> None:
        self.bills[bill_id] = replace(self.bills[bill_id], status="cancelled")

    def fail_next(self, operation: str, error: HisError, times: int = 1) -> None:
        """The next `times` calls of `operation` (recharge, refund_restore, …) raise `error`."""
        self._failures[operation].extend([error] * times)

    # --- plumbing ---------------------------------------------------------------------------------------------
    def _call(self, operation: str) -> None:
        self.calls.append(operation)
        if self.down:
            raise HisUnavailable(f"the HIS is down ({operation})")
        if self._failures[operation]:
            raise self._failures[operation].pop(0)

    def _new_patient(self, name: str, phone: str, id_number: str | None) -> HisPatient:
        patient = HisPatient(f"P{next(self._numbers):08d}", name, phone, id_number)
        self.patients[patient.id] = patient
        return patient

    def _new_card(self, patient_id: str, balance_fen: int) -> str:
        card_no = f"FAKE{next(self._numbers):06d}"
        self.balances[card_no], self.holders[card_no] = balance_fen, patient_id
        patient = self.patients[patient_id]
        self.patients[patient_id] = replace(patient, card_nos=(*patient.card_nos, card_no))
        return card_no

    def _card(self, card_no: str) -> str:
        if card_no not in self.balances:
            raise HisNotFound("card_not_found", f"no card {card_no}")
        return card_no

    def _once(self, operation: str, key: str | None, params: dict, write):
        """Apply `write()` once per key: a repeat with the same parameters gets the first answer."""
        fingerprint = hashlib.sha256(json.dumps([operation, params], sort_keys=True, default=str).encode()).hexdigest()
        if key is not None and key in self._answers:
            seen, answer = self._answers[key]
            if seen != fingerprint:
                raise HisRejected("idempotency_conflict", f"{key} was used for another request")
            return replace(answer, replayed=True) if isinstance(answer, HisWriteResult) else answer
        answer = write()
        if key is not None:
            self._answers[key] = (fingerprint, answer)
        return answer

    def _record(self, key: str, kind: str, card_no: str | None, amount_fen: int, order_no: str,
                balance_fen: int | None = None, **extra) -> HisWriteResult:
        now = datetime.now(UTC)
        self.records.append(HisRecord(key, kind, card_no, amount_fen, order_no, now))
        return HisWriteResult(key, kind, f"R{next(self._numbers):08d}", card_no, amount_fen, order_no, now,
                              balance_fen, extra)

    # --- reads ------------------------------------------------------------------------------------------------
    def get_card(self, card_no: str) -> HisCard:
        self._call("get_card")
        self._card(card_no)
        return HisCard(card_no, self.balances[card_no], self.patients[self.holders[card_no]])

    def get_balance(self, card_no: str) -> int:
        self._call("get_balance")
        return self.balances[self._card(card_no)]

    def find_patients(self, phone: str | None = None, *, id_number: str | None = None) -> list[HisPatient]:
        self._call("find_patients")
        return [p for p in self.patients.values() if (phone and p.phone == phone) or
                (id_number and p.id_number == id_number)]

    def get_patient(self, patient_id: str) -> HisPatient:
        self._call("get_patient")
        if patient_id not in self.patients:
            raise HisNotFound("patient_not_found", patient_id)
        return self.patients[patient_id]

    def unpaid_bills(self, card_no: str) -> list[HisBill]:
        self._call("unpaid_bills")
        self._card(card_no)
        return [b for b in self.bills.values() if b.card_no == card_no and b.status == "unpaid"]

    def get_bill(self, bill_id: str) -> HisBill:
        self._call("get_bill")
        if bill_id not in self.bills:
            raise HisNotFound("bill_not_found", bill_id)
        return self.bills[bill_id]

    def get_registration(self, order_no: str) -> HisRegistration:
        self._call("get_registration")
        if order_no not in self.registrations:
            raise HisNotFound("registration_not_found", order_no)
        return self.registrations[order_no]

    def export(self, day: date) -> list[HisRecord]:
        self._call("export")
        return [r for r in self.records if r.recorded_at.astimezone(SHANGHAI).date() == day]

    # --- master data ------------------------------------------------------------------------------------------
    def create_patient(self, name: str, phone: str, id_number: str | None = None,
                       idempotency_key: str | None = None) -> HisPatient:
        self._call("create_patient")
        return self._once("create_patient", idempotency_key, {"name": name, "phone": phone, "id": id_number},
                          lambda: self._new_patient(name, phone, id_number))

    def open_card(self, patient_id: str, idempotency_key: str | None = None) -> HisCard:
        self._call("open_card")
        self.get_patient(patient_id)
        card_no = self._once("open_card", idempotency_key, {"patient_id": patient_id},
                             lambda: self._new_card(patient_id, 0))
        return HisCard(card_no, self.balances[card_no], self.patients[patient_id])

    def create_bill(self, card_no: str, kind: str, title: str, amount_fen: int,
                    idempotency_key: str | None = None) -> HisBill:
        self._call("create_bill")
        self._card(card_no)
        bill_id = self._once("create_bill", idempotency_key, {"card_no": card_no, "title": title, "fen": amount_fen},
                             lambda: self.add_bill(card_no, amount_fen, title, kind))
        return self.bills[bill_id]

    # --- ledger writes ----------------------------------------------------------------------------------------
    def recharge(self, card_no: str, amount_fen: int, order_no: str, idempotency_key: str) -> HisWriteResult:
        self._call("recharge")
        self._card(card_no)

        def write():
            self.balances[card_no] += amount_fen
            return self._record(idempotency_key, "recharge", card_no, amount_fen, order_no, self.balances[card_no])
        return self._once("recharge", idempotency_key, {"card": card_no, "fen": amount_fen, "order": order_no}, write)

    def settle_bills(self, card_no: str, bill_ids: list[str], amount_fen: int, order_no: str,
                     idempotency_key: str) -> HisWriteResult:
        self._call("settle_bills")

        def write():
            bills = [self.get_bill(bill_id) for bill_id in bill_ids]
            if any(b.status == "paid" for b in bills):
                raise HisRejected("bill_already_paid", "a bill was paid already")
            if sum(b.amount_fen for b in bills) != amount_fen:
                raise HisRejected("amount_mismatch", "the amount is not the bills' sum")
            for bill in bills:
                self.bills[bill.bill_id] = replace(bill, status="paid", paid_by=order_no)
            return self._record(idempotency_key, "bill_settlement", card_no, amount_fen, order_no, bill_ids=bill_ids)
        return self._once("settle_bills", idempotency_key, {"bills": bill_ids, "fen": amount_fen}, write)

    def register(self, order_no: str, item_code: str, appointment_at: datetime, idempotency_key: str, *,
                 card_no: str | None = None, patient_id: str | None = None, amount_fen: int = 0) -> HisWriteResult:
        self._call("register")

        def write():
            active = self.registrations.get(order_no)
            if active is not None and active.status == "active":
                raise HisRejected("already_registered", f"{order_no} has an active registration")
            holder = self.holders[self._card(card_no)] if card_no else self.get_patient(patient_id).id
            self.registrations[order_no] = HisRegistration(order_no, card_no, holder, item_code, appointment_at,
                                                           amount_fen, "active")
            return self._record(idempotency_key, "registration", card_no, amount_fen, order_no, patient_id=holder)
        return self._once("register", idempotency_key, {"order": order_no, "item": item_code, "card": card_no,
                                                        "patient": patient_id, "at": appointment_at}, write)

    def revert_registration(self, order_no: str, idempotency_key: str) -> HisWriteResult:
        self._call("revert_registration")

        def write():
            active = self.registrations.get(order_no)
            if active is None or active.status != "active":
                raise HisRejected("nothing_to_revert", f"{order_no} has no active registration")
            self.registrations[order_no] = replace(active, status="reverted")
            return self._record(idempotency_key, "registration_revert", active.card_no, 0, order_no)
        return self._once("revert_registration", idempotency_key, {"order": order_no}, write)

    def charge(self, order_no: str, card_no: str, amount_fen: int, settlement_type: str,
               idempotency_key: str) -> HisWriteResult:
        self._call("charge")
        self._card(card_no)
        return self._once("charge", idempotency_key, {"order": order_no, "fen": amount_fen, "type": settlement_type},
                          lambda: self._record(idempotency_key, "charge", card_no, amount_fen, order_no,
                                               settlement_type=settlement_type))

    def refund_hold(self, card_no: str, amount_fen: int, order_no: str, idempotency_key: str) -> HisWriteResult:
        self._call("refund_hold")
        self._card(card_no)

        def write():
            if amount_fen > self.balances[card_no]:
                raise HisRejected("insufficient_balance", f"card {card_no} holds {self.balances[card_no]} fen")
            self.balances[card_no] -= amount_fen
            return self._record(idempotency_key, "refund_hold", card_no, amount_fen, order_no, self.balances[card_no])
        return self._once("refund_hold", idempotency_key, {"card": card_no, "fen": amount_fen, "order": order_no},
                          write)

    def refund_restore(self, card_no: str, amount_fen: int, order_no: str, idempotency_key: str) -> HisWriteResult:
        self._call("refund_restore")
        self._card(card_no)

        def write():
            held = sum(r.amount_fen if r.kind == "refund_hold" else -r.amount_fen for r in self.records
                       if r.order_no == order_no and r.kind in ("refund_hold", "refund_restore"))
            if amount_fen > held:
                raise HisRejected("restore_exceeds_hold", f"only {held} fen of {order_no} is held")
            self.balances[card_no] += amount_fen
            return self._record(idempotency_key, "refund_restore", card_no, amount_fen, order_no,
                                self.balances[card_no])
        return self._once("refund_restore", idempotency_key, {"card": card_no, "fen": amount_fen, "order": order_no},
                          write)

    def _recorded(self, order_no: str, kind: str) -> int:
        return sum(r.amount_fen for r in self.records if r.order_no == order_no and r.kind == kind)

    def reverse_bill_settlement(self, card_no: str, amount_fen: int, order_no: str,
                                idempotency_key: str) -> HisWriteResult:
        self._call("reverse_bill_settlement")
        self._card(card_no)

        def write():
            left = self._recorded(order_no, "bill_settlement") - self._recorded(order_no, "bill_settlement_reversal")
            if amount_fen > left:
                raise HisRejected("reversal_exceeds_settlement", f"only {left} fen of {order_no} is settled")
            return self._record(idempotency_key, "bill_settlement_reversal", card_no, amount_fen, order_no)
        return self._once("reverse_bill_settlement", idempotency_key,
                          {"card": card_no, "fen": amount_fen, "order": order_no}, write)

    def adjust_charge(self, order_no: str, card_no: str, amount_fen: int, idempotency_key: str) -> HisWriteResult:
        self._call("adjust_charge")
        self._card(card_no)

        def write():
            left = self._recorded(order_no, "charge") - self._recorded(order_no, "charge_adjustment")
            if amount_fen > left:
                raise HisRejected("adjustment_exceeds_charge", f"only {left} fen of {order_no} is charged")
            return self._record(idempotency_key, "charge_adjustment", card_no, amount_fen, order_no)
        return self._once("adjust_charge", idempotency_key, {"card": card_no, "fen": amount_fen, "order": order_no},
                          write)
