"""The sandbox HIS's tables, demo seed, lookups and record shapes (SQLite via the world ledger)."""
from __future__ import annotations

import json
import sqlite3
from datetime import date, timedelta

from ..world import World
from .validation import HisRefusal

_BILLS_TABLE = """
CREATE TABLE IF NOT EXISTS {name} (
    bill_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL UNIQUE,
    card_no TEXT NOT NULL REFERENCES his_cards(card_no),
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    amount_fen INTEGER NOT NULL CHECK (amount_fen > 0),
    status TEXT NOT NULL DEFAULT 'unpaid' CHECK (status IN ('unpaid', 'paid', 'cancelled')),
    paid_by TEXT,
    paid_at TEXT,
    created_at TEXT NOT NULL,
    cancelled_at TEXT
);
"""
_BILLS_INDEX = "CREATE INDEX IF NOT EXISTS ix_his_bills_card ON his_bills(card_no, status);\n"

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS his_patients (
    patient_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL UNIQUE,
    name TEXT NOT NULL,
    phone TEXT NOT NULL,
    id_number TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_his_patients_phone ON his_patients(phone);
CREATE INDEX IF NOT EXISTS ix_his_patients_id_number ON his_patients(id_number);
CREATE TABLE IF NOT EXISTS his_cards (
    card_no TEXT PRIMARY KEY,
    seq INTEGER NOT NULL UNIQUE,
    patient_id TEXT NOT NULL REFERENCES his_patients(patient_id),
    balance_fen INTEGER NOT NULL CHECK (balance_fen >= 0),
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_his_cards_patient ON his_cards(patient_id);
{_BILLS_TABLE.format(name='his_bills')}{_BILLS_INDEX}CREATE TABLE IF NOT EXISTS his_registrations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    order_no TEXT NOT NULL,
    card_no TEXT,
    patient_id TEXT NOT NULL,
    item_code TEXT NOT NULL,
    appointment_at TEXT NOT NULL,
    amount_fen INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'reverted')),
    created_at TEXT NOT NULL,
    reverted_at TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS ux_his_registrations_active ON his_registrations(order_no)
    WHERE status = 'active';
CREATE TABLE IF NOT EXISTS his_records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('registration', 'registration_revert', 'recharge', 'bill_settlement',
                                       'charge', 'refund_hold', 'refund_restore', 'bill_settlement_reversal',
                                       'charge_adjustment')),
    card_no TEXT,
    amount_fen INTEGER NOT NULL,
    order_no TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    extra TEXT
);
CREATE INDEX IF NOT EXISTS ix_his_records_recorded_at ON his_records(recorded_at);
CREATE INDEX IF NOT EXISTS ix_his_records_card_order ON his_records(card_no, order_no, kind);
CREATE TABLE IF NOT EXISTS his_idempotency (
    idempotency_key TEXT PRIMARY KEY,
    operation TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    response TEXT NOT NULL,
    created_at TEXT NOT NULL
);
"""

_BILLS_V1_COLUMNS = "bill_id, seq, card_no, kind, title, amount_fen, status, paid_by, paid_at, created_at"


def upgrade(world: World) -> None:
    """A data directory made before bills could be cancelled gets the new his_bills, its rows kept.

    SQLite cannot change a CHECK constraint in place, so the table is rebuilt once.
    """
    row = world.query_one("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'his_bills'")
    if row is None or "'cancelled'" in row["sql"]:
        return
    world.execute_script(
        "BEGIN IMMEDIATE;" + _BILLS_TABLE.format(name="his_bills_v2")
        + f"INSERT INTO his_bills_v2({_BILLS_V1_COLUMNS}) SELECT {_BILLS_V1_COLUMNS} FROM his_bills;"
        + "DROP TABLE his_bills; ALTER TABLE his_bills_v2 RENAME TO his_bills;" + _BILLS_INDEX + "COMMIT;")


SEED_BALANCE_FEN = 50_000
# paid_by of a bill the patient paid at the hospital window rather than through the platform.
WINDOW_PAYER = "window"
# (name, phone, birth date) of the demo patients owning cards D0000001..D0000010; the first two
# are a parent and child sharing one phone, as families do.
_SEED_PATIENTS = [
    ("张伟", "13800000001", "19800312"), ("张小雨", "13800000001", "20150706"),
    ("李娜", "13800000003", "19920118"), ("王芳", "13800000004", "19751130"),
    ("刘洋", "13800000005", "19880825"), ("陈静", "13800000006", "19950403"),
    ("杨磊", "13800000007", "19830917"), ("赵敏", "13800000008", "19790221"),
    ("黄强", "13800000009", "19900609"), ("周婷", "13800000010", "20011014"),
]
_SEED_BILLS = [
    ("D0000001", "exam", "胸部X线检查", 12_000), ("D0000001", "lab", "血常规", 2_500),
    ("D0000001", "prescription", "阿莫西林胶囊", 3_680), ("D0000002", "treatment", "雾化治疗", 4_500),
    ("D0000002", "lab", "尿常规", 1_500), ("D0000003", "exam", "腹部B超", 16_000),
]
_ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]


def _resident_id(birth: str, seq: int) -> str:
    """A well-formed 18-character ID (GB 11643 check digit) for the demo patients."""
    body = f"110101{birth}{seq:03d}"
    total = sum(int(d) * w for d, w in zip(body, _ID_WEIGHTS, strict=True))
    return body + "10X98765432"[total % 11]


def stamp(world: World) -> str:
    """Sandbox-clock time as Asia/Shanghai ISO 8601 to the second; its first 10 characters are the business date."""
    return world.now_shanghai().replace(microsecond=0).isoformat()


def _next_seq(conn: sqlite3.Connection, table: str) -> int:
    return conn.execute(f"SELECT COALESCE(MAX(seq), 0) + 1 FROM {table}").fetchone()[0]


# --- creation (inside a caller's transaction) ------------------------------
def insert_patient(conn: sqlite3.Connection, now: str, name: str, phone: str, id_number: str | None) -> str:
    seq = _next_seq(conn, "his_patients")
    patient_id = f"P{seq:06d}"
    conn.execute("INSERT INTO his_patients(patient_id, seq, name, phone, id_number, created_at)"
                 " VALUES (?, ?, ?, ?, ?, ?)", (patient_id, seq, name, phone, id_number, now))
    return patient_id


def insert_card(conn: sqlite3.Connection, now: str, patient_id: str, balance_fen: int) -> str:
    seq = _next_seq(conn, "his_cards")
    card_no = f"D{seq:07d}"
    conn.execute("INSERT INTO his_cards(card_no, seq, patient_id, balance_fen, created_at) VALUES (?, ?, ?, ?, ?)",
                 (card_no, seq, patient_id, balance_fen, now))
    return card_no


def insert_bill(conn: sqlite3.Connection, now: str, card_no: str, kind: str, title: str, amount_fen: int) -> str:
    seq = _next_seq(conn, "his_bills")
    bill_id = f"B{seq:08d}"
    conn.execute("INSERT INTO his_bills(bill_id, seq, card_no, kind, title, amount_fen, created_at)"
                 " VALUES (?, ?, ?, ?, ?, ?, ?)", (bill_id, seq, card_no, kind, title, amount_fen, now))
    return bill_id


def seed(world: World) -> None:
    """Deterministic demo patients, cards and unpaid bills, written once per data directory."""
    with world.tx() as conn:
        if conn.execute("SELECT 1 FROM his_patients LIMIT 1").fetchone():
            return
        now = stamp(world)
        for seq, (name, phone, birth) in enumerate(_SEED_PATIENTS, start=1):
            patient_id = insert_patient(conn, now, name, phone, _resident_id(birth, seq))
            insert_card(conn, now, patient_id, SEED_BALANCE_FEN)
        for card_no, kind, title, amount_fen in _SEED_BILLS:
            insert_bill(conn, now, card_no, kind, title, amount_fen)


# --- lookups (any connection; a missing row is a 404 where the caller needs it) ----
def patient_json(conn: sqlite3.Connection, patient_id: str) -> dict | None:
    row = conn.execute("SELECT * FROM his_patients WHERE patient_id = ?", (patient_id,)).fetchone()
    if row is None:
        return None
    card_nos = [r["card_no"] for r in conn.execute(
        "SELECT card_no FROM his_cards WHERE patient_id = ? ORDER BY seq", (patient_id,))]
    return {"id": row["patient_id"], "name": row["name"], "phone": row["phone"], "id_number": row["id_number"],
            "card_nos": card_nos}


def require_patient(conn: sqlite3.Connection, patient_id: str) -> dict:
    patient = patient_json(conn, patient_id)
    if patient is None:
        raise HisRefusal(404, "patient_not_found", f"no patient {patient_id}")
    return patient


def find_patients(conn: sqlite3.Connection, phone: str | None, id_number: str | None) -> list[dict]:
    rows = conn.execute(
        "SELECT patient_id FROM his_patients WHERE (? IS NULL OR phone = ?) AND (? IS NULL OR id_number = ?)"
        " ORDER BY seq", (phone, phone, id_number, id_number)).fetchall()
    return [patient_json(conn, r["patient_id"]) for r in rows]


def card_row(conn: sqlite3.Connection, card_no: str) -> sqlite3.Row:
    row = conn.execute("SELECT * FROM his_cards WHERE card_no = ?", (card_no,)).fetchone()
    if row is None:
        raise HisRefusal(404, "card_not_found", f"no card {card_no}")
    return row


def card_json(conn: sqlite3.Connection, card_no: str) -> dict:
    row = card_row(conn, card_no)
    return {"card_no": row["card_no"], "balance_fen": row["balance_fen"],
            "patient": patient_json(conn, row["patient_id"])}


def bill_json(row: sqlite3.Row) -> dict:
    return {"bill_id": row["bill_id"], "card_no": row["card_no"], "kind": row["kind"], "title": row["title"],
            "amount_fen": row["amount_fen"], "status": row["status"], "paid_by": row["paid_by"],
            "created_at": row["created_at"], "cancelled_at": row["cancelled_at"]}


def bill_row(conn: sqlite3.Connection, bill_id: str) -> sqlite3.Row:
    row = conn.execute("SELECT * FROM his_bills WHERE bill_id = ?", (bill_id,)).fetchone()
    if row is None:
        raise HisRefusal(404, "bill_not_found", f"no bill {bill_id}")
    return row


def unpaid_bills(conn: sqlite3.Connection, card_no: str) -> list[dict]:
    card_row(conn, card_no)
    rows = conn.execute("SELECT * FROM his_bills WHERE card_no = ? AND status = 'unpaid' ORDER BY seq",
                        (card_no,)).fetchall()
    return [bill_json(r) for r in rows]


def registration_json(row: sqlite3.Row) -> dict:
    return {"order_no": row["order_no"], "card_no": row["card_no"], "patient_id": row["patient_id"],
            "item_code": row["item_code"], "appointment_at": row["appointment_at"],
            "amount_fen": row["amount_fen"], "status": row["status"], "created_at": row["created_at"],
            "reverted_at": row["reverted_at"]}


def latest_registration(conn: sqlite3.Connection, order_no: str) -> sqlite3.Row:
    row = conn.execute("SELECT * FROM his_registrations WHERE order_no = ? ORDER BY id DESC LIMIT 1",
                       (order_no,)).fetchone()
    if row is None:
        raise HisRefusal(404, "registration_not_found", f"no registration for order {order_no}")
    return row


EXPORT_COLUMNS = ("idempotency_key", "kind", "card_no", "amount_fen", "order_no", "recorded_at")


def records_on(conn: sqlite3.Connection, business_date: str) -> list[dict]:
    """The ledger rows whose Asia/Shanghai recorded_at falls on business_date, in write order."""
    next_day = (date.fromisoformat(business_date) + timedelta(days=1)).isoformat()
    rows = conn.execute(
        f"SELECT {', '.join(EXPORT_COLUMNS)} FROM his_records WHERE recorded_at >= ? AND recorded_at < ?"
        " ORDER BY id", (business_date, next_day)).fetchall()
    return [dict(r) for r in rows]


def write_result(row: sqlite3.Row, balance_fen: int | None) -> dict:
    return {"record_id": f"R{row['id']:08d}", **{c: row[c] for c in EXPORT_COLUMNS},
            "balance_fen": balance_fen, "extra": json.loads(row["extra"]) if row["extra"] else {}}
