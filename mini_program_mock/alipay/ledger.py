"""The sandbox Alipay's books: trades, refunds and bill download tokens, in the world's SQLite file.

Times are stored as Alipay writes them, Asia/Shanghai wall-clock text
("yyyy-MM-dd HH:mm:ss", refunds with milliseconds), so a bill day is a prefix
match. Every state change is one write transaction that re-reads the trade
first, so a refund racing another refund or a close cannot both win.
"""
from __future__ import annotations

import secrets
import sqlite3
from datetime import datetime, timedelta

from ..world import SHANGHAI, World
from .protocol import ALIPAY_TIME, alipay_time, alipay_time_ms, business_failure

WAIT_BUYER_PAY = "WAIT_BUYER_PAY"
TRADE_SUCCESS = "TRADE_SUCCESS"
TRADE_CLOSED = "TRADE_CLOSED"
TRADE_FINISHED = "TRADE_FINISHED"

REFUND_WINDOW_SETTING = "alipay_refund_window_days"
DEFAULT_REFUND_WINDOW_DAYS = 365
BILL_URL_TTL_S = 30

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ali_trades (
    trade_no TEXT PRIMARY KEY,
    app_id TEXT NOT NULL,
    out_trade_no TEXT NOT NULL,
    total_fen INTEGER NOT NULL,
    subject TEXT NOT NULL,
    buyer_id TEXT NOT NULL,
    buyer_open_id TEXT,
    product_code TEXT NOT NULL,
    notify_url TEXT,
    time_expire TEXT,
    status TEXT NOT NULL,
    refunded_fen INTEGER NOT NULL DEFAULT 0,
    gmt_create TEXT NOT NULL,
    gmt_payment TEXT,
    gmt_close TEXT,
    UNIQUE (app_id, out_trade_no)
);
CREATE INDEX IF NOT EXISTS ix_ali_trades_payment ON ali_trades(app_id, gmt_payment);
CREATE INDEX IF NOT EXISTS ix_ali_trades_expiry ON ali_trades(status, time_expire);
CREATE TABLE IF NOT EXISTS ali_refunds (
    trade_no TEXT NOT NULL REFERENCES ali_trades(trade_no),
    out_request_no TEXT NOT NULL,
    refund_fen INTEGER NOT NULL,
    refund_reason TEXT,
    gmt_refund TEXT NOT NULL,
    PRIMARY KEY (trade_no, out_request_no)
);
CREATE INDEX IF NOT EXISTS ix_ali_refunds_time ON ali_refunds(gmt_refund);
CREATE TABLE IF NOT EXISTS ali_bill_tokens (
    token TEXT PRIMARY KEY,
    app_id TEXT NOT NULL,
    bill_date TEXT NOT NULL,
    expires_at REAL NOT NULL
);
"""


class PaymentRefused(Exception):
    """The sandbox patient cannot pay this trade (already paid, or closed without ignore_close)."""


def _not_exist() -> Exception:
    return business_failure("ACQ.TRADE_NOT_EXIST", "交易不存在")


def _parse_shanghai(text: str) -> datetime:
    return datetime.strptime(text[:19], ALIPAY_TIME).replace(tzinfo=SHANGHAI)


class AlipayLedger:
    def __init__(self, world: World):
        self.world = world
        world.execute_script(_SCHEMA)

    # --- settings ------------------------------------------------------------
    def refund_window_days(self) -> float:
        return float(self.world.get_setting(REFUND_WINDOW_SETTING, DEFAULT_REFUND_WINDOW_DAYS))

    def set_refund_window_days(self, days: float) -> None:
        self.world.set_setting(REFUND_WINDOW_SETTING, days)

    def refund_window_passed(self, trade: sqlite3.Row) -> bool:
        if not trade["gmt_payment"]:
            return False
        deadline = _parse_shanghai(trade["gmt_payment"]) + timedelta(days=self.refund_window_days())
        return self.world.now() > deadline

    def _expired(self, trade: sqlite3.Row) -> bool:
        return (trade["status"] == WAIT_BUYER_PAY and bool(trade["time_expire"])
                and self.world.now() > _parse_shanghai(trade["time_expire"]))

    def close_expired(self) -> None:
        """Alipay closes an unpaid trade at its time_expire; the sandbox does so before any trade changes.

        Its own transaction, so the closing stands even when the change that follows is refused.
        """
        with self.world.tx() as conn:
            conn.execute("UPDATE ali_trades SET status = ?, gmt_close = time_expire"
                         " WHERE status = ? AND time_expire IS NOT NULL AND time_expire < ?",
                         (TRADE_CLOSED, WAIT_BUYER_PAY, alipay_time(self.world.now_shanghai())))

    def effective_status(self, trade: sqlite3.Row) -> str:
        """The status on the sandbox clock: unpaid past time_expire is TRADE_CLOSED, and TRADE_SUCCESS
        turns TRADE_FINISHED once the refund window has passed."""
        if self._expired(trade):
            return TRADE_CLOSED
        if trade["status"] == TRADE_SUCCESS and self.refund_window_passed(trade):
            return TRADE_FINISHED
        return trade["status"]

    # --- reads ---------------------------------------------------------------
    def find_trade(self, app_id: str, trade_no: str | None = None, out_trade_no: str | None = None,
                   conn: sqlite3.Connection | None = None) -> sqlite3.Row | None:
        """By trade_no when given (Alipay's precedence), else by out_trade_no, within one app."""
        conn = conn or self.world.conn()
        if trade_no:
            sql, key = "SELECT * FROM ali_trades WHERE app_id = ? AND trade_no = ?", trade_no
        else:
            sql, key = "SELECT * FROM ali_trades WHERE app_id = ? AND out_trade_no = ?", out_trade_no
        return conn.execute(sql, (app_id, key)).fetchone()

    def trade_by_no(self, trade_no: str) -> sqlite3.Row | None:
        return self.world.query_one("SELECT * FROM ali_trades WHERE trade_no = ?", (trade_no,))

    def refunds_of(self, trade_no: str) -> list[sqlite3.Row]:
        return self.world.query("SELECT * FROM ali_refunds WHERE trade_no = ? ORDER BY gmt_refund", (trade_no,))

    def refund_of(self, trade_no: str, out_request_no: str) -> sqlite3.Row | None:
        return self.world.query_one("SELECT * FROM ali_refunds WHERE trade_no = ? AND out_request_no = ?",
                                    (trade_no, out_request_no))

    # --- trade lifecycle -----------------------------------------------------
    def create_trade(self, *, app_id: str, out_trade_no: str, total_fen: int, subject: str, buyer_id: str,
                     buyer_open_id: str | None, product_code: str, notify_url: str | None,
                     time_expire: str | None) -> sqlite3.Row:
        """Create once per out_trade_no; a repeat with the same amount and buyer returns the same trade."""
        self.close_expired()
        now = self.world.now_shanghai()
        with self.world.tx() as conn:
            existing = self.find_trade(app_id, out_trade_no=out_trade_no, conn=conn)
            if existing:
                if existing["total_fen"] != total_fen or existing["buyer_id"] != buyer_id:
                    raise business_failure("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改")
                if existing["gmt_payment"]:
                    raise business_failure("ACQ.TRADE_HAS_SUCCESS", "交易已被支付")
                if existing["status"] == TRADE_CLOSED:
                    raise business_failure("ACQ.TRADE_HAS_CLOSE", "交易已经关闭")
                return existing
            trade_no = now.strftime("%Y%m%d") + "22001" + f"{secrets.randbelow(10**15):015d}"
            conn.execute(
                "INSERT INTO ali_trades(trade_no, app_id, out_trade_no, total_fen, subject, buyer_id, buyer_open_id,"
                " product_code, notify_url, time_expire, status, gmt_create)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (trade_no, app_id, out_trade_no, total_fen, subject, buyer_id, buyer_open_id, product_code,
                 notify_url, time_expire, WAIT_BUYER_PAY, alipay_time(now)),
            )
            return self.find_trade(app_id, trade_no=trade_no, conn=conn)

    def close_trade(self, app_id: str, trade_no: str | None, out_trade_no: str | None) -> sqlite3.Row:
        self.close_expired()
        now = self.world.now_shanghai()
        with self.world.tx() as conn:
            trade = self.find_trade(app_id, trade_no, out_trade_no, conn=conn)
            if trade is None:
                raise _not_exist()
            if trade["gmt_payment"]:
                raise business_failure("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
            if trade["status"] == WAIT_BUYER_PAY:
                conn.execute("UPDATE ali_trades SET status = ?, gmt_close = ? WHERE trade_no = ?",
                             (TRADE_CLOSED, alipay_time(now), trade["trade_no"]))
            return self.find_trade(app_id, trade["trade_no"], conn=conn)

    def record_payment(self, trade_no: str, ignore_close: bool = False) -> sqlite3.Row:
        """The patient paid: TRADE_SUCCESS now (Asia/Shanghai). Raises LookupError or PaymentRefused."""
        self.close_expired()
        now = self.world.now_shanghai()
        with self.world.tx() as conn:
            trade = conn.execute("SELECT * FROM ali_trades WHERE trade_no = ?", (trade_no,)).fetchone()
            if trade is None:
                raise LookupError(trade_no)
            if trade["gmt_payment"]:
                raise PaymentRefused("the trade is already paid")
            if trade["status"] == TRADE_CLOSED and not ignore_close:
                raise PaymentRefused("the trade is closed; pass ignore_close to pay it anyway")
            conn.execute("UPDATE ali_trades SET status = ?, gmt_payment = ?, gmt_close = NULL WHERE trade_no = ?",
                         (TRADE_SUCCESS, alipay_time(now), trade_no))
            return conn.execute("SELECT * FROM ali_trades WHERE trade_no = ?", (trade_no,)).fetchone()

    def refund(self, *, app_id: str, trade_no: str | None, out_trade_no: str | None, out_request_no: str | None,
               refund_fen: int, reason: str | None) -> tuple[sqlite3.Row, sqlite3.Row, bool]:
        """Refund synchronously; returns (trade, refund, fund_change). A repeated request changes nothing.

        Without out_request_no Alipay takes the trade's out_trade_no, which allows one refund only.
        """
        now = self.world.now_shanghai()
        with self.world.tx() as conn:
            trade = self.find_trade(app_id, trade_no, out_trade_no, conn=conn)
            if trade is None:
                raise _not_exist()
            key = (trade["trade_no"], out_request_no or trade["out_trade_no"])
            earlier = conn.execute("SELECT * FROM ali_refunds WHERE trade_no = ? AND out_request_no = ?",
                                   key).fetchone()
            if earlier:
                if earlier["refund_fen"] != refund_fen:
                    raise business_failure("ACQ.DISCORDANT_REPEAT_REQUEST", "请求信息不一致")
                return trade, earlier, False
            if not trade["gmt_payment"]:
                raise business_failure("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
            if self.refund_window_passed(trade):
                raise business_failure("ACQ.TRADE_HAS_FINISHED", "交易已完结")
            refunded = trade["refunded_fen"] + refund_fen
            if refunded > trade["total_fen"]:
                raise business_failure("ACQ.REASON_TRADE_REFUND_FEE_ERR", "退款金额无效")
            conn.execute("INSERT INTO ali_refunds(trade_no, out_request_no, refund_fen, refund_reason, gmt_refund)"
                         " VALUES (?, ?, ?, ?, ?)", (*key, refund_fen, reason, alipay_time_ms(now)))
            if refunded == trade["total_fen"]:
                conn.execute("UPDATE ali_trades SET refunded_fen = ?, status = ?, gmt_close = ? WHERE trade_no = ?",
                             (refunded, TRADE_CLOSED, alipay_time(now), trade["trade_no"]))
            else:
                conn.execute("UPDATE ali_trades SET refunded_fen = ? WHERE trade_no = ?",
                             (refunded, trade["trade_no"]))
            refund = conn.execute("SELECT * FROM ali_refunds WHERE trade_no = ? AND out_request_no = ?",
                                  key).fetchone()
            return self.find_trade(app_id, trade["trade_no"], conn=conn), refund, True

    # --- bills ---------------------------------------------------------------
    def issue_bill_token(self, app_id: str, bill_date: str) -> str:
        token = secrets.token_urlsafe(24)
        expires_at = self.world.now().timestamp() + BILL_URL_TTL_S
        with self.world.tx() as conn:
            conn.execute("DELETE FROM ali_bill_tokens WHERE expires_at < ?", (self.world.now().timestamp(),))
            conn.execute("INSERT INTO ali_bill_tokens(token, app_id, bill_date, expires_at) VALUES (?, ?, ?, ?)",
                         (token, app_id, bill_date, expires_at))
        return token

    def live_bill_token(self, token: str) -> sqlite3.Row | None:
        return self.world.query_one("SELECT * FROM ali_bill_tokens WHERE token = ? AND expires_at >= ?",
                                    (token, self.world.now().timestamp()))

    def payments_on(self, app_id: str, day: str) -> list[sqlite3.Row]:
        """Trades of one app paid on `day` (yyyy-MM-dd, Asia/Shanghai) up to the sandbox's now."""
        return self.world.query(
            "SELECT * FROM ali_trades WHERE app_id = ? AND gmt_payment LIKE ? AND gmt_payment <= ?"
            " ORDER BY gmt_payment, trade_no", (app_id, f"{day} %", alipay_time(self.world.now_shanghai())))

    def refunds_on(self, app_id: str, day: str) -> list[sqlite3.Row]:
        return self.world.query(
            "SELECT r.*, t.out_trade_no, t.subject, t.buyer_id, t.gmt_create FROM ali_refunds r"
            " JOIN ali_trades t ON t.trade_no = r.trade_no"
            " WHERE t.app_id = ? AND r.gmt_refund LIKE ? AND r.gmt_refund <= ? ORDER BY r.gmt_refund, r.trade_no",
            (app_id, f"{day} %", alipay_time_ms(self.world.now_shanghai())))
