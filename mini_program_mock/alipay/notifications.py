"""Alipay's asynchronous trade_status_sync notifications, queued on the shared durable notifier.

The body is form-urlencoded; the signature (Alipay private key, RSA2) covers
every field except `sign` and `sign_type`, which is how merchants verify it.
"""
from __future__ import annotations

import json
import secrets
import sqlite3
from urllib.parse import urlencode

from ..notifier import ALIPAY_RETRY_SCHEDULE
from .protocol import alipay_time, fen_to_yuan, rsa_sign, signed_string
from .state import AlipaySandbox

NOTIFY_TYPE = "trade_status_sync"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded; charset=utf-8"


def trade_notification_fields(sandbox: AlipaySandbox, trade: sqlite3.Row,
                              refund: sqlite3.Row | None = None) -> dict[str, str]:
    """The notification's fields (unsigned) for the trade's current state, or for the refund just made."""
    total = fen_to_yuan(trade["total_fen"])
    fields = {
        "notify_time": alipay_time(sandbox.world.now_shanghai()),
        "notify_type": NOTIFY_TYPE,
        "notify_id": secrets.token_hex(18),
        "app_id": trade["app_id"],
        "charset": "utf-8",
        "version": "1.0",
        "sign_type": "RSA2",
        "trade_no": trade["trade_no"],
        "out_trade_no": trade["out_trade_no"],
        "buyer_id": trade["buyer_id"],
        "trade_status": trade["status"],
        "total_amount": total,
        "receipt_amount": total,
        "buyer_pay_amount": total,
        "gmt_create": trade["gmt_create"],
        "gmt_payment": trade["gmt_payment"],
        "fund_bill_list": json.dumps([{"amount": total, "fundChannel": "ALIPAYACCOUNT"}], separators=(",", ":")),
        "subject": trade["subject"],
    }
    if trade["buyer_open_id"]:
        fields["buyer_open_id"] = trade["buyer_open_id"]
    if refund is not None:
        fields["out_biz_no"] = refund["out_request_no"]
        fields["refund_fee"] = fen_to_yuan(trade["refunded_fen"])
        fields["gmt_refund"] = refund["gmt_refund"]
    if trade["gmt_close"]:
        fields["gmt_close"] = trade["gmt_close"]
    return fields


def send_trade_notification(sandbox: AlipaySandbox, trade: sqlite3.Row, refund: sqlite3.Row | None = None) -> None:
    """Sign and queue the notification to the notify_url given at trade.create (none given: nothing to send)."""
    ref = trade["trade_no"] if refund is None else f"{trade['trade_no']}:{refund['out_request_no']}"
    if not trade["notify_url"]:
        sandbox.world.log("alipay_notify_skipped", ref=ref, reason="no notify_url at trade.create")
        return
    merchant = sandbox.merchant(trade["app_id"])
    fields = trade_notification_fields(sandbox, trade, refund)
    fields["sign"] = rsa_sign(merchant["alipay_private_key"], signed_string(fields, exclude=("sign", "sign_type")))
    sandbox.notifier.enqueue(channel="alipay", kind=NOTIFY_TYPE, ref=ref, url=trade["notify_url"],
                             body=urlencode(fields), content_type=FORM_CONTENT_TYPE, schedule=ALIPAY_RETRY_SCHEDULE)
    sandbox.world.log("alipay_notify_queued", ref=ref, trade_status=fields["trade_status"], url=trade["notify_url"])
