"""`/sandbox/alipay/…`: what the patient's Alipay app and the test harness do to the sandbox Alipay.

- POST /sandbox/alipay/codes {app_id, user_id?} -> {code, user_id, open_id} (my.getAuthCode)
- POST /sandbox/alipay/pay {trade_no, outcome: success|fail, ignore_close?} -> the trade (my.tradePay)
- GET /sandbox/alipay/trades/<out_trade_no>?app_id= -> the ledger's view of a trade and its refunds
- GET, POST /sandbox/alipay/settings {refund_window_days} -> the settings
"""
from __future__ import annotations

import math
import sqlite3

from flask import Blueprint, jsonify, request

from .accounts import is_user_id
from .ledger import PaymentRefused
from .notifications import send_trade_notification
from .protocol import fen_to_yuan
from .state import AlipaySandbox, current_alipay

MAX_REFUND_WINDOW_DAYS = 36500

bp = Blueprint("sandbox_alipay_control", __name__, url_prefix="/sandbox/alipay")


def _bad(message: str, status: int = 422):
    return jsonify(message=message), status


def trade_view(sandbox: AlipaySandbox, trade: sqlite3.Row) -> dict:
    refunds = sandbox.ledger.refunds_of(trade["trade_no"])
    return {
        "app_id": trade["app_id"],
        "trade_no": trade["trade_no"],
        "out_trade_no": trade["out_trade_no"],
        "trade_status": sandbox.ledger.effective_status(trade),
        "total_fen": trade["total_fen"],
        "total_amount": fen_to_yuan(trade["total_fen"]),
        "refunded_fen": trade["refunded_fen"],
        "subject": trade["subject"],
        "buyer_id": trade["buyer_id"],
        "buyer_open_id": trade["buyer_open_id"],
        "product_code": trade["product_code"],
        "notify_url": trade["notify_url"],
        "time_expire": trade["time_expire"],
        "gmt_create": trade["gmt_create"],
        "gmt_payment": trade["gmt_payment"],
        "gmt_close": trade["gmt_close"],
        "refunds": [{"out_request_no": r["out_request_no"], "refund_fen": r["refund_fen"],
                     "refund_amount": fen_to_yuan(r["refund_fen"]), "gmt_refund": r["gmt_refund"]} for r in refunds],
    }


@bp.post("/codes")
def issue_code():
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _bad("a JSON object is required")
    sandbox = current_alipay()
    app_id, user_id = body.get("app_id"), body.get("user_id")
    if not isinstance(app_id, str) or not app_id:
        return _bad("app_id is required")
    if sandbox.merchant(app_id) is None:
        return _bad(f"no sandbox Alipay app {app_id}", 404)
    if user_id is not None and not is_user_id(user_id):
        return _bad("user_id must be 16 digits starting with 2088")
    issued = sandbox.accounts.issue_code(app_id, user_id)
    sandbox.world.log("alipay_auth_code", app_id=app_id, user_id=issued["user_id"])
    return jsonify(issued), 201


@bp.post("/pay")
def pay():
    """The patient confirms (or fails) my.tradePay; success sends the TRADE_SUCCESS notification."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _bad("a JSON object is required")
    trade_no, outcome, ignore_close = body.get("trade_no"), body.get("outcome"), body.get("ignore_close", False)
    if not isinstance(trade_no, str) or not trade_no:
        return _bad("trade_no is required")
    if outcome not in ("success", "fail"):
        return _bad("outcome must be success or fail")
    if not isinstance(ignore_close, bool):
        return _bad("ignore_close must be a boolean")
    sandbox = current_alipay()
    trade = sandbox.ledger.trade_by_no(trade_no)
    if trade is None:
        return _bad(f"no trade {trade_no}", 404)
    if outcome == "fail":
        sandbox.world.log("alipay_pay_failed", trade_no=trade_no)
        return jsonify(trade_view(sandbox, trade))
    try:
        trade = sandbox.ledger.record_payment(trade_no, ignore_close=ignore_close)
    except PaymentRefused as refusal:
        return _bad(str(refusal), 409)
    sandbox.world.log("alipay_paid", trade_no=trade_no, ignore_close=ignore_close)
    send_trade_notification(sandbox, trade)
    return jsonify(trade_view(sandbox, trade))


@bp.get("/trades/<out_trade_no>")
def show_trade(out_trade_no: str):
    app_id = request.args.get("app_id")
    if not app_id:
        return _bad("app_id is required")
    sandbox = current_alipay()
    trade = sandbox.ledger.find_trade(app_id, out_trade_no=out_trade_no)
    if trade is None:
        return _bad(f"no trade {out_trade_no} for app {app_id}", 404)
    return jsonify(trade_view(sandbox, trade))


@bp.route("/settings", methods=["GET", "POST"])
def settings():
    sandbox = current_alipay()
    if request.method == "POST":
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or set(body) - {"refund_window_days"}:
            return _bad("a JSON object with refund_window_days is required")
        days = body.get("refund_window_days")
        if days is not None:
            if (isinstance(days, bool) or not isinstance(days, (int, float)) or not math.isfinite(days)
                    or not 0 <= days <= MAX_REFUND_WINDOW_DAYS):
                return _bad(f"refund_window_days must be a number from 0 to {MAX_REFUND_WINDOW_DAYS}")
            sandbox.ledger.set_refund_window_days(days)
    return jsonify(refund_window_days=sandbox.ledger.refund_window_days())
