"""Refunds in the sandbox WeChat Pay ledger: the channel's rules, and PROCESSING -> SUCCESS settlement.

A refund's due time is stored, so settlement survives a restart: every read settles what is
due (lazily), and the settler thread settles and notifies even when nobody reads.
"""
from __future__ import annotations

from ..world import World
from . import wire
from .ledger import SUCCESS, Refusal

REFUND_LIMIT_PER_TRADE = 50
REFUND_WINDOW_S = 365 * 86400
SETTLE_DELAY_S = 5.0
PROCESSING = "PROCESSING"


def apply_refund(world: World, trade: dict, request: dict) -> tuple[dict, bool]:
    """Record a refund of a paid trade, or return the refund already made under this out_refund_no.

    `request` holds out_refund_no, total_fee and refund_fee (ints), refund_desc, notify_url.
    Returns (refund, created).
    """
    now = world.now().timestamp()
    with world.tx() as conn:
        existing = conn.execute("SELECT * FROM wx_refunds WHERE mch_id = ? AND out_refund_no = ?",
                                (trade["mch_id"], request["out_refund_no"])).fetchone()
        if existing:
            if existing["trade_id"] != trade["id"] or existing["refund_fee"] != request["refund_fee"]:
                raise Refusal("INVALID_REQUEST", "订单金额或退款金额与之前请求不一致，请核实后再试")
            return dict(existing), False
        state = conn.execute("SELECT state, paid_at, total_fee FROM wx_trades WHERE id = ?",
                             (trade["id"],)).fetchone()
        if state["state"] != SUCCESS:
            raise Refusal("TRADE_STATE_ERROR", "订单状态错误，未支付的订单不能退款")
        if request["total_fee"] != state["total_fee"]:
            raise Refusal("PARAM_ERROR", "订单金额total_fee与原订单金额不一致")
        if now - state["paid_at"] > REFUND_WINDOW_S:
            raise Refusal("ERROR", "订单已经超过退款期限（支付后一年）")
        taken = conn.execute("SELECT COUNT(*) AS n, COALESCE(SUM(refund_fee), 0) AS fee FROM wx_refunds"
                             " WHERE trade_id = ?", (trade["id"],)).fetchone()
        if taken["n"] >= REFUND_LIMIT_PER_TRADE:
            raise Refusal("ERROR", f"一笔订单最多退款{REFUND_LIMIT_PER_TRADE}次")
        if taken["fee"] >= state["total_fee"]:
            raise Refusal("ERROR", "订单已全额退款")
        if taken["fee"] + request["refund_fee"] > state["total_fee"]:
            left = state["total_fee"] - taken["fee"]
            raise Refusal("ERROR", f"累计退款金额大于支付金额（可退 {left} 分）")
        refund_id = "5030" + wire.digits(6) + wire.compact_time(now)[:8] + wire.digits(11)
        conn.execute(
            "INSERT INTO wx_refunds(trade_id, mch_id, out_refund_no, refund_id, refund_fee, refund_desc,"
            " notify_url, status, created_at, due_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (trade["id"], trade["mch_id"], request["out_refund_no"], refund_id, request["refund_fee"],
             request.get("refund_desc", ""), request.get("notify_url", ""), PROCESSING, now,
             now + world.scaled(SETTLE_DELAY_S)),
        )
        return dict(conn.execute("SELECT * FROM wx_refunds WHERE refund_id = ?", (refund_id,)).fetchone()), True


def settle_due(world: World) -> None:
    """PROCESSING refunds whose due time has passed become SUCCESS, dated at their due time."""
    now = world.now().timestamp()
    if not world.query_one("SELECT 1 FROM wx_refunds WHERE status = ? AND due_at <= ? LIMIT 1", (PROCESSING, now)):
        return
    with world.tx() as conn:
        conn.execute("UPDATE wx_refunds SET status = ?, success_at = due_at WHERE status = ? AND due_at <= ?",
                     (SUCCESS, PROCESSING, now))


def next_due_at(world: World) -> float | None:
    row = world.query_one("SELECT MIN(due_at) AS due FROM wx_refunds WHERE status = ?", (PROCESSING,))
    return row["due"]


def refunds_of_trade(world: World, trade_id: int) -> list[dict]:
    settle_due(world)
    rows = world.query("SELECT * FROM wx_refunds WHERE trade_id = ? ORDER BY id", (trade_id,))
    return [dict(r) for r in rows]


def find_refund(world: World, mch_id: str, out_refund_no: str = "", refund_id: str = "") -> dict | None:
    settle_due(world)
    if refund_id:
        row = world.query_one("SELECT * FROM wx_refunds WHERE mch_id = ? AND refund_id = ?", (mch_id, refund_id))
    else:
        row = world.query_one("SELECT * FROM wx_refunds WHERE mch_id = ? AND out_refund_no = ?",
                              (mch_id, out_refund_no))
    return dict(row) if row else None


def refunds_succeeded_between(world: World, mch_id: str, start: float, end: float) -> list[dict]:
    settle_due(world)
    rows = world.query(
        "SELECT * FROM wx_refunds WHERE mch_id = ? AND status = ? AND success_at >= ? AND success_at < ?"
        " ORDER BY success_at, id",
        (mch_id, SUCCESS, start, end),
    )
    return [dict(r) for r in rows]


def unnotified(world: World) -> list[dict]:
    """Settled refunds with a notify_url whose notification has not been handed to the notifier yet."""
    rows = world.query("SELECT * FROM wx_refunds WHERE status = ? AND notified_at IS NULL AND notify_url != ''"
                       " ORDER BY id LIMIT 100", (SUCCESS,))
    return [dict(r) for r in rows]


def mark_notified(world: World, refund_row_id: int) -> None:
    with world.tx() as conn:
        conn.execute("UPDATE wx_refunds SET notified_at = ? WHERE id = ?", (world.now().timestamp(), refund_row_id))
