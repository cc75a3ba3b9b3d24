"""Control routes of the sandbox WeChat Pay: the patient pays (or fails), and tests read the ledger."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from ..world import World, current_world
from . import ledger, refunds, wire
from .notifications import send_payment_notification

bp = Blueprint("sandbox_wechat_control", __name__, url_prefix="/sandbox/wechat")


def _bad(message: str, status: int = 422):
    return jsonify(message=message), status


def trade_view(world: World, trade: dict) -> dict:
    """The ledger's view of one trade, amounts in fen, times as WeChat writes them (Asia/Shanghai)."""
    listed = refunds.refunds_of_trade(world, trade["id"])
    return {
        "appid": trade["appid"], "mch_id": trade["mch_id"], "out_trade_no": trade["out_trade_no"],
        "prepay_id": trade["prepay_id"], "transaction_id": trade["transaction_id"],
        "trade_state": ledger.trade_state(world, trade), "expired": ledger.is_expired(world, trade),
        "total_fee": trade["total_fee"], "cash_fee": trade["cash_fee"],
        "refunded_fee": sum(r["refund_fee"] for r in listed),
        "body": trade["body"], "attach": trade["attach"], "openid": trade["openid"],
        "notify_url": trade["notify_url"], "time_start": trade["time_start"], "time_expire": trade["time_expire"],
        "time_end": trade["time_end"], "bank_type": trade["bank_type"],
        "refunds": [{
            "out_refund_no": r["out_refund_no"], "refund_id": r["refund_id"], "refund_fee": r["refund_fee"],
            "refund_status": r["status"], "notify_url": r["notify_url"],
            "created_time": wire.dashed_time(r["created_at"]),
            "success_time": wire.dashed_time(r["success_at"]) if r["success_at"] else None,
        } for r in listed],
    }


@bp.post("/pay")
def pay():
    """The patient's answer to wx.requestPayment.

    `{"prepay_id", "outcome": "success"|"fail", "ignore_close"?: bool}` -> the trade view; 404 unknown
    prepay_id, 409 a trade already paid, closed or expired (`ignore_close` pays a closed/expired one).
    """
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _bad("a JSON object with prepay_id and outcome is required")
    prepay_id, outcome, ignore_close = body.get("prepay_id"), body.get("outcome"), body.get("ignore_close", False)
    if not isinstance(prepay_id, str) or not prepay_id:
        return _bad("prepay_id is required")
    if outcome not in ("success", "fail"):
        return _bad("outcome must be success or fail")
    if not isinstance(ignore_close, bool):
        return _bad("ignore_close must be true or false")
    world = current_world()
    try:
        trade = ledger.settle_payment(world, prepay_id, outcome, ignore_close)
    except LookupError as exc:
        return _bad(str(exc), 404)
    except ledger.PaymentConflict as exc:
        world.log("wechat_pay_refused", prepay_id=prepay_id, outcome=outcome, reason=str(exc))
        return _bad(str(exc), 409)
    world.log("wechat_paid" if outcome == "success" else "wechat_pay_failed", prepay_id=prepay_id,
              appid=trade["appid"], mch_id=trade["mch_id"], out_trade_no=trade["out_trade_no"],
              transaction_id=trade["transaction_id"], ignore_close=ignore_close)
    if outcome == "success":
        merchant = current_app.extensions["sandbox_merchants"].get("wechat", trade["appid"])
        send_payment_notification(world, current_app.extensions["sandbox_notifier"], merchant, trade)
    return jsonify(trade_view(world, trade))


@bp.get("/trades/<out_trade_no>")
def trade(out_trade_no: str):
    appid = request.args.get("appid", "")
    if not appid:
        return _bad("appid is required")
    merchant = current_app.extensions["sandbox_merchants"].get("wechat", appid)
    if merchant is None:
        return _bad(f"no sandbox WeChat app has appid {appid}", 404)
    world = current_world()
    found = ledger.find_trade(world, merchant["mch_id"], out_trade_no=out_trade_no)
    if found is None:
        return _bad(f"no trade {out_trade_no} for appid {appid}", 404)
    return jsonify(trade_view(world, found))
