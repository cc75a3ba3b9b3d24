"""The sandbox WeChat Pay ledger of trades (wx_ tables in the world's SQLite file, so it survives restarts).

Times are epoch seconds on the sandbox clock (`world.now()`), so shifting the clock
moves expiry, refund windows and bill days together.
"""
from __future__ import annotations

import sqlite3

from ..world import World
from . import wire

SCHEMA = """
CREATE TABLE IF NOT EXISTS wx_trades (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    appid TEXT NOT NULL,
    mch_id TEXT NOT NULL,
    out_trade_no TEXT NOT NULL,
    prepay_id TEXT NOT NULL UNIQUE,
    transaction_id TEXT UNIQUE,
    body TEXT NOT NULL,
    attach TEXT NOT NULL DEFAULT '',
    total_fee INTEGER NOT NULL,
    fee_type TEXT NOT NULL,
    openid TEXT NOT NULL,
    trade_type TEXT NOT NULL,
    notify_url TEXT NOT NULL,
    spbill_create_ip TEXT NOT NULL,
    time_start TEXT NOT NULL,
    time_expire TEXT NOT NULL,
    expire_at REAL NOT NULL,
    created_at REAL NOT NULL,
    state TEXT NOT NULL,
    paid_at REAL,
    time_end TEXT,
    bank_type TEXT,
    cash_fee INTEGER,
    closed_at REAL,
    UNIQUE (mch_id, out_trade_no)
);
CREATE INDEX IF NOT EXISTS ix_wx_trades_paid ON wx_trades(mch_id, paid_at);
CREATE TABLE IF NOT EXISTS wx_refunds (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    trade_id INTEGER NOT NULL REFERENCES wx_trades(id),
    mch_id TEXT NOT NULL,
    out_refund_no TEXT NOT NULL,
    refund_id TEXT NOT NULL UNIQUE,
    refund_fee INTEGER NOT NULL,
    refund_desc TEXT NOT NULL DEFAULT '',
    notify_url TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    due_at REAL NOT NULL,
    success_at REAL,
    notified_at REAL,
    UNIQUE (mch_id, out_refund_no)
);
CREATE INDEX IF NOT EXISTS ix_wx_refunds_trade ON wx_refunds(trade_id);
CREATE INDEX IF NOT EXISTS ix_wx_refunds_success ON wx_refunds(mch_id, success_at);
CREATE INDEX IF NOT EXISTS ix_wx_refunds_due ON wx_refunds(status, due_at);
"""

# Stored states; REFUND is derived (a paid trade with refunds), as WeChat reports it.
NOTPAY, SUCCESS, CLOSED, PAYERROR, REFUND = "NOTPAY", "SUCCESS", "CLOSED", "PAYERROR", "REFUND"
TRADE_STATE_DESC = {
    SUCCESS: "支付成功",
    REFUND: "转入退款",
    NOTPAY: "订单未支付",
    CLOSED: "已关闭",
    PAYERROR: "支付失败(其他原因，如银行返回失败)",
}
DEFAULT_EXPIRY_S = 2 * 3600
BANK_TYPE = "OTHERS"

# What a repeated unifiedorder must repeat unchanged to be answered with the same prepay_id.
_ORDER_IDENTITY = ("appid", "total_fee", "body", "openid", "trade_type", "attach", "notify_url", "fee_type")


class Refusal(Exception):
    """A business refusal, answered as result_code=FAIL with this err_code."""

    def __init__(self, err_code: str, message: str):
        super().__init__(message)
        self.err_code = err_code
        self.message = message


class PaymentConflict(Exception):
    """The simulated patient cannot pay (or fail) this trade in its current state."""


def install(world: World) -> None:
    world.execute_script(SCHEMA)


def _one(conn: sqlite3.Connection, sql: str, params: tuple) -> dict | None:
    row = conn.execute(sql, params).fetchone()
    return dict(row) if row else None


def refund_count(world: World, trade_id: int) -> int:
    return world.query_one("SELECT COUNT(*) AS n FROM wx_refunds WHERE trade_id = ?", (trade_id,))["n"]


def trade_state(world: World, trade: dict) -> str:
    if trade["state"] == SUCCESS and refund_count(world, trade["id"]):
        return REFUND
    return trade["state"]


def is_expired(world: World, trade: dict) -> bool:
    return trade["state"] in (NOTPAY, PAYERROR) and world.now().timestamp() >= trade["expire_at"]


def create_trade(world: World, order: dict) -> tuple[dict, bool]:
    """Insert a NOTPAY trade, or answer a repeat of the same order with the trade already made.

    `order` holds the unifiedorder fields with `total_fee` as int; returns (trade, created).
    """
    now = world.now().timestamp()
    time_start = order.get("time_start") or wire.compact_time(now)
    if order.get("time_expire"):
        expire_at = wire.parse_compact_time(order["time_expire"])
    else:
        expire_at = now + DEFAULT_EXPIRY_S
    with world.tx() as conn:
        existing = _one(conn, "SELECT * FROM wx_trades WHERE mch_id = ? AND out_trade_no = ?",
                        (order["mch_id"], order["out_trade_no"]))
        if existing:
            _check_repeat(existing, order)
            return existing, False
        prepay_id = "wx" + wire.compact_time(now) + wire.nonce(20).lower()
        conn.execute(
            "INSERT INTO wx_trades(appid, mch_id, out_trade_no, prepay_id, body, attach, total_fee, fee_type,"
            " openid, trade_type, notify_url, spbill_create_ip, time_start, time_expire, expire_at, created_at,"
            " state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (order["appid"], order["mch_id"], order["out_trade_no"], prepay_id, order["body"],
             order.get("attach", ""), order["total_fee"], order["fee_type"], order["openid"], order["trade_type"],
             order["notify_url"], order["spbill_create_ip"], time_start, wire.compact_time(expire_at), expire_at,
             now, NOTPAY),
        )
        return _one(conn, "SELECT * FROM wx_trades WHERE prepay_id = ?", (prepay_id,)), True


def _check_repeat(existing: dict, order: dict) -> None:
    if existing["state"] == SUCCESS:
        raise Refusal("ORDERPAID", "该订单已支付")
    if existing["state"] == CLOSED:
        raise Refusal("ORDERCLOSED", "该订单已关闭")
    changed = [f for f in _ORDER_IDENTITY if str(existing[f] or "") != str(order.get(f) or "")]
    if changed:
        raise Refusal("OUT_TRADE_NO_USED", f"商户订单号重复 (参数不一致: {', '.join(changed)})")


def find_trade(world: World, mch_id: str, out_trade_no: str = "", transaction_id: str = "") -> dict | None:
    """Look a trade up as the API does: transaction_id first, else out_trade_no, within one merchant."""
    if transaction_id:
        row = world.query_one("SELECT * FROM wx_trades WHERE mch_id = ? AND transaction_id = ?",
                              (mch_id, transaction_id))
    elif out_trade_no:
        row = world.query_one("SELECT * FROM wx_trades WHERE mch_id = ? AND out_trade_no = ?",
                              (mch_id, out_trade_no))
    else:
        return None
    return dict(row) if row else None


def trade_by_prepay(world: World, prepay_id: str) -> dict | None:
    row = world.query_one("SELECT * FROM wx_trades WHERE prepay_id = ?", (prepay_id,))
    return dict(row) if row else None


def trade_by_id(world: World, trade_id: int) -> dict:
    return dict(world.query_one("SELECT * FROM wx_trades WHERE id = ?", (trade_id,)))


def close_trade(world: World, trade: dict) -> None:
    with world.tx() as conn:
        state = conn.execute("SELECT state FROM wx_trades WHERE id = ?", (trade["id"],)).fetchone()["state"]
        if state == SUCCESS:
            raise Refusal("ORDERPAID", "订单已支付，不能发起关单")
        if state == CLOSED:
            raise Refusal("ORDERCLOSED", "订单已关闭，无法重复关闭")
        conn.execute("UPDATE wx_trades SET state = ?, closed_at = ? WHERE id = ?",
                     (CLOSED, world.now().timestamp(), trade["id"]))


def settle_payment(world: World, prepay_id: str, outcome: str, ignore_close: bool = False) -> dict:
    """The patient's payment: SUCCESS (recorded with a transaction id) or PAYERROR.

    Raises LookupError for an unknown prepay_id and PaymentConflict when the trade cannot
    take this outcome. `ignore_close` pays a closed or expired trade anyway: a payment that
    raced the platform's close.
    """
    with world.tx() as conn:
        trade = _one(conn, "SELECT * FROM wx_trades WHERE prepay_id = ?", (prepay_id,))
        if trade is None:
            raise LookupError(f"no trade has prepay_id {prepay_id}")
        now = world.now().timestamp()
        if trade["state"] == SUCCESS:
            raise PaymentConflict(f"trade {trade['out_trade_no']} is already paid")
        closed = trade["state"] == CLOSED
        expired = now >= trade["expire_at"]
        if (closed or expired) and not (ignore_close and outcome == "success"):
            why = "closed" if closed else f"expired at {trade['time_expire']}"
            raise PaymentConflict(f"trade {trade['out_trade_no']} is {why}")
        if outcome == "fail":
            conn.execute("UPDATE wx_trades SET state = ? WHERE id = ?", (PAYERROR, trade["id"]))
        else:
            transaction_id = "4200" + wire.digits(6) + wire.compact_time(now)[:8] + wire.digits(10)
            conn.execute(
                "UPDATE wx_trades SET state = ?, paid_at = ?, time_end = ?, transaction_id = ?, bank_type = ?,"
                " cash_fee = total_fee WHERE id = ?",
                (SUCCESS, now, wire.compact_time(now), transaction_id, BANK_TYPE, trade["id"]),
            )
        return _one(conn, "SELECT * FROM wx_trades WHERE id = ?", (trade["id"],))


def payments_between(world: World, mch_id: str, start: float, end: float) -> list[dict]:
    rows = world.query(
        "SELECT * FROM wx_trades WHERE mch_id = ? AND paid_at >= ? AND paid_at < ? ORDER BY paid_at, id",
        (mch_id, start, end),
    )
    return [dict(r) for r in rows]
