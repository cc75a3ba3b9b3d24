"""The sandbox HIS's writes, each honouring its idempotency key.

A write runs in one BEGIN IMMEDIATE transaction that looks up the key, applies the
change and stores the answer under the key. A repeat with the same body gets the
stored answer and writes nothing; concurrent duplicates queue on the write lock,
so exactly one of them writes. A refusal (HisRefusal) rolls everything back and
stores nothing, so a later retry with the same key is judged afresh.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable

from ..world import World
from .store import (
    bill_json,
    bill_row,
    card_json,
    card_row,
    insert_bill,
    insert_card,
    insert_patient,
    latest_registration,
    patient_json,
    require_patient,
    stamp,
    write_result,
)
from .validation import HisRefusal


def _fingerprint(operation: str, params: dict) -> str:
    canonical = json.dumps({"operation": operation, "params": params}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class HisLedger:
    def __init__(self, world: World):
        self.world = world

    def write(self, operation: str, params: dict, idempotency_key: str | None) -> tuple[dict, bool]:
        """Apply `operation` once per key; returns (answer, replayed)."""
        perform: Callable = self._operations[operation]
        fingerprint = _fingerprint(operation, params)
        with self.world.tx() as conn:
            if idempotency_key is not None:
                seen = conn.execute("SELECT operation, fingerprint, response FROM his_idempotency"
                                    " WHERE idempotency_key = ?", (idempotency_key,)).fetchone()
                if seen is not None:
                    if seen["fingerprint"] != fingerprint:
                        raise HisRefusal(409, "idempotency_conflict",
                                         f"idempotency key {idempotency_key} was first used for a different "
                                         f"{seen['operation']} request")
                    return json.loads(seen["response"]), True
            now = stamp(self.world)
            answer = perform(self, conn, now, params, idempotency_key)
            if idempotency_key is not None:
                conn.execute("INSERT INTO his_idempotency(idempotency_key, operation, fingerprint, response,"
                             " created_at) VALUES (?, ?, ?, ?, ?)",
                             (idempotency_key, operation, fingerprint, json.dumps(answer, ensure_ascii=False), now))
        return answer, False

    # --- helpers ------------------------------------------------------------
    @staticmethod
    def _record(conn: sqlite3.Connection, now: str, key: str, kind: str, p: dict, *, card_no: str | None,
                amount_fen: int, extra: dict | None = None, balance_fen: int | None = None) -> dict:
        cursor = conn.execute(
            "INSERT INTO his_records(idempotency_key, kind, card_no, amount_fen, order_no, recorded_at, extra)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (key, kind, card_no, amount_fen, p["order_no"], now,
             json.dumps(extra, ensure_ascii=False) if extra else None))
        row = conn.execute("SELECT * FROM his_records WHERE id = ?", (cursor.lastrowid,)).fetchone()
        return write_result(row, balance_fen)

    @staticmethod
    def _move_balance(conn: sqlite3.Connection, card_no: str, delta_fen: int) -> int:
        balance = card_row(conn, card_no)["balance_fen"]
        if balance + delta_fen < 0:
            raise HisRefusal(409, "insufficient_balance",
                             f"card {card_no} holds {balance} fen; {-delta_fen} fen cannot be taken")
        conn.execute("UPDATE his_cards SET balance_fen = ? WHERE card_no = ?", (balance + delta_fen, card_no))
        return balance + delta_fen

    # --- ledger writes (each leaves one his_records row) ---------------------
    def _recharge(self, conn, now, p, key):
        balance = self._move_balance(conn, p["card_no"], p["amount_fen"])
        return self._record(conn, now, key, "recharge", p, card_no=p["card_no"], amount_fen=p["amount_fen"],
                            balance_fen=balance)

    def _settle_bills(self, conn, now, p, key):
        balance = card_row(conn, p["card_no"])["balance_fen"]
        bills = [bill_row(conn, bill_id) for bill_id in p["bill_ids"]]
        foreign = [b["bill_id"] for b in bills if b["card_no"] != p["card_no"]]
        if foreign:
            raise HisRefusal(422, "bill_not_on_card", f"bills {', '.join(foreign)} are not on card {p['card_no']}")
        cancelled = [b["bill_id"] for b in bills if b["status"] == "cancelled"]
        if cancelled:
            raise HisRefusal(409, "bill_cancelled", f"bills {', '.join(cancelled)} were cancelled")
        paid = [b["bill_id"] for b in bills if b["status"] == "paid"]
        if paid:
            raise HisRefusal(409, "bill_already_paid", f"bills {', '.join(paid)} are already paid")
        total = sum(b["amount_fen"] for b in bills)
        if total != p["amount_fen"]:
            raise HisRefusal(422, "amount_mismatch", f"the bills total {total} fen, not {p['amount_fen']}")
        conn.executemany("UPDATE his_bills SET status = 'paid', paid_by = ?, paid_at = ? WHERE bill_id = ?",
                         [(p["order_no"], now, bill_id) for bill_id in p["bill_ids"]])
        return self._record(conn, now, key, "bill_settlement", p, card_no=p["card_no"], amount_fen=total,
                            extra={"bill_ids": p["bill_ids"]}, balance_fen=balance)

    def _register(self, conn, now, p, key):
        card_no, patient_id = p["card_no"], p["patient_id"]
        if card_no is not None:
            owner = card_row(conn, card_no)["patient_id"]
            if patient_id is not None and patient_id != owner:
                raise HisRefusal(422, "card_not_of_patient", f"card {card_no} does not belong to {patient_id}")
            patient_id = owner
        else:
            require_patient(conn, patient_id)
        if conn.execute("SELECT 1 FROM his_registrations WHERE order_no = ? AND status = 'active'",
                        (p["order_no"],)).fetchone():
            raise HisRefusal(409, "already_registered", f"order {p['order_no']} already has an active registration")
        conn.execute("INSERT INTO his_registrations(order_no, card_no, patient_id, item_code, appointment_at,"
                     " amount_fen, status, created_at) VALUES (?, ?, ?, ?, ?, ?, 'active', ?)",
                     (p["order_no"], card_no, patient_id, p["item_code"], p["appointment_at"], p["amount_fen"], now))
        return self._record(conn, now, key, "registration", p, card_no=card_no, amount_fen=p["amount_fen"],
                            extra={"patient_id": patient_id, "item_code": p["item_code"],
                                   "appointment_at": p["appointment_at"]})

    def _revert_registration(self, conn, now, p, key):
        registration = latest_registration(conn, p["order_no"])
        if registration["status"] != "active":
            raise HisRefusal(409, "registration_not_active",
                             f"the registration of order {p['order_no']} was already reverted")
        conn.execute("UPDATE his_registrations SET status = 'reverted', reverted_at = ? WHERE id = ?",
                     (now, registration["id"]))
        return self._record(conn, now, key, "registration_revert", p, card_no=registration["card_no"],
                            amount_fen=registration["amount_fen"],
                            extra={"patient_id": registration["patient_id"], "item_code": registration["item_code"]})

    def _charge(self, conn, now, p, key):
        balance = card_row(conn, p["card_no"])["balance_fen"]
        return self._record(conn, now, key, "charge", p, card_no=p["card_no"], amount_fen=p["amount_fen"],
                            extra={"settlement_type": p["settlement_type"]}, balance_fen=balance)

    def _refund_hold(self, conn, now, p, key):
        balance = self._move_balance(conn, p["card_no"], -p["amount_fen"])
        return self._record(conn, now, key, "refund_hold", p, card_no=p["card_no"], amount_fen=p["amount_fen"],
                            balance_fen=balance)

    def _refund_restore(self, conn, now, p, key):
        held = conn.execute(
            "SELECT COALESCE(SUM(CASE kind WHEN 'refund_hold' THEN amount_fen ELSE -amount_fen END), 0)"
            " FROM his_records WHERE card_no = ? AND order_no = ? AND kind IN ('refund_hold', 'refund_restore')",
            (p["card_no"], p["order_no"])).fetchone()[0]
        if p["amount_fen"] > held:
            raise HisRefusal(409, "restore_exceeds_hold",
                             f"only {held} fen of {p['order_no']} is held on card {p['card_no']}")
        balance = self._move_balance(conn, p["card_no"], p["amount_fen"])
        return self._record(conn, now, key, "refund_restore", p, card_no=p["card_no"], amount_fen=p["amount_fen"],
                            balance_fen=balance)

    @staticmethod
    def _left(conn: sqlite3.Connection, p: dict, kind: str, reversal: str) -> int:
        """What the records of `kind` for the order hold after the records of `reversal` taken off them."""
        return conn.execute(
            "SELECT COALESCE(SUM(CASE kind WHEN ? THEN amount_fen ELSE -amount_fen END), 0) FROM his_records"
            " WHERE card_no = ? AND order_no = ? AND kind IN (?, ?)",
            (kind, p["card_no"], p["order_no"], kind, reversal)).fetchone()[0]

    def _reverse_bill_settlement(self, conn, now, p, key):
        settled = self._left(conn, p, "bill_settlement", "bill_settlement_reversal")
        if p["amount_fen"] > settled:
            raise HisRefusal(409, "reversal_exceeds_settlement",
                             f"only {settled} fen of order {p['order_no']} is settled on card {p['card_no']}")
        balance = card_row(conn, p["card_no"])["balance_fen"]
        return self._record(conn, now, key, "bill_settlement_reversal", p, card_no=p["card_no"],
                            amount_fen=p["amount_fen"], balance_fen=balance)

    def _adjust_charge(self, conn, now, p, key):
        charged = self._left(conn, p, "charge", "charge_adjustment")
        if p["amount_fen"] > charged:
            raise HisRefusal(409, "adjustment_exceeds_charge",
                             f"only {charged} fen of order {p['order_no']} is charged on card {p['card_no']}")
        balance = card_row(conn, p["card_no"])["balance_fen"]
        return self._record(conn, now, key, "charge_adjustment", p, card_no=p["card_no"],
                            amount_fen=p["amount_fen"], balance_fen=balance)

    # --- master data (no ledger row; the key is optional) --------------------
    def _create_patient(self, conn, now, p, key):
        return patient_json(conn, insert_patient(conn, now, p["name"], p["phone"], p["id_number"]))

    def _open_card(self, conn, now, p, key):
        require_patient(conn, p["patient_id"])
        return card_json(conn, insert_card(conn, now, p["patient_id"], 0))

    def _create_bill(self, conn, now, p, key):
        card_row(conn, p["card_no"])
        return bill_json(bill_row(conn, insert_bill(conn, now, p["card_no"], p["kind"], p["title"], p["amount_fen"])))

    _operations = {
        "recharge": _recharge, "settle_bills": _settle_bills, "register": _register,
        "revert_registration": _revert_registration, "charge": _charge, "refund_hold": _refund_hold,
        "refund_restore": _refund_restore, "reverse_bill_settlement": _reverse_bill_settlement,
        "adjust_charge": _adjust_charge, "create_patient": _create_patient, "open_card": _open_card,
        "create_bill": _create_bill,
    }
