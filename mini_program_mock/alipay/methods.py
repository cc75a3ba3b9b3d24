"""The gateway's trade and login methods: each takes a GatewayCall and returns the `*_response` value.

Bad business input is a signed 40004 ACQ.INVALID_PARAMETER, as Alipay answers it.
"""
from __future__ import annotations

import re
from datetime import datetime

from .accounts import is_user_id
from .notifications import send_trade_notification
from .protocol import (
    ALIPAY_TIME,
    business_failure,
    fen_to_yuan,
    invalid_argument,
    invalid_parameter,
    success,
    yuan_to_fen,
)
from .state import GatewayCall

OUT_TRADE_NO = re.compile(r"[A-Za-z0-9_]{1,64}")
PRODUCT_CODES = ("JSAPI_PAY", "FACE_TO_FACE_PAYMENT")
DEFAULT_PRODUCT_CODE = "FACE_TO_FACE_PAYMENT"


def _text(biz: dict, name: str, *, required: bool = True, max_len: int = 64) -> str | None:
    value = biz.get(name)
    if value is None or value == "":
        if required:
            raise invalid_parameter(f"缺少必选参数{name}")
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise invalid_parameter(f"参数{name}格式错误")
    value = str(value)
    if len(value) > max_len:
        raise invalid_parameter(f"参数{name}超过{max_len}个字符")
    return value


def _amount_fen(biz: dict, name: str) -> int:
    try:
        return yuan_to_fen(biz.get(name))
    except ValueError:
        raise invalid_parameter(f"参数{name}无效，应为大于0且最多两位小数的金额") from None


def _is_alipay_time(text: str) -> bool:
    try:
        datetime.strptime(text, ALIPAY_TIME)
    except ValueError:
        return False
    return len(text) == 19


def _trade_ref(biz: dict) -> tuple[str | None, str | None]:
    trade_no = _text(biz, "trade_no", required=False)
    out_trade_no = _text(biz, "out_trade_no", required=False)
    if not (trade_no or out_trade_no):
        raise invalid_parameter("trade_no和out_trade_no不能同时为空")
    return trade_no, out_trade_no


def _existing_trade(call: GatewayCall):
    trade = call.sandbox.ledger.find_trade(call.app_id, *_trade_ref(call.biz))
    if trade is None:
        raise business_failure("ACQ.TRADE_NOT_EXIST", "交易不存在")
    return trade


def trade_create(call: GatewayCall) -> dict:
    biz = call.biz
    out_trade_no = _text(biz, "out_trade_no")
    if not OUT_TRADE_NO.fullmatch(out_trade_no):
        raise invalid_parameter("out_trade_no只能由字母、数字、下划线组成，最长64位")
    total_fen = _amount_fen(biz, "total_amount")
    subject = _text(biz, "subject", max_len=256)
    buyer_id = _text(biz, "buyer_id", required=False, max_len=28)
    buyer_open_id = _text(biz, "buyer_open_id", required=False, max_len=128)
    if buyer_id and not is_user_id(buyer_id):
        raise invalid_parameter("buyer_id应为2088开头的16位数字")
    if not (buyer_id or buyer_open_id):
        raise invalid_parameter("buyer_id和buyer_open_id不能同时为空")
    time_expire = _text(biz, "time_expire", required=False, max_len=19)
    if time_expire and not _is_alipay_time(time_expire):
        raise invalid_parameter("time_expire格式应为yyyy-MM-dd HH:mm:ss")
    product_code = _text(biz, "product_code", required=False) or DEFAULT_PRODUCT_CODE
    if product_code not in PRODUCT_CODES:
        raise invalid_parameter(f"不支持的product_code，应为{'或'.join(PRODUCT_CODES)}")
    trade = call.sandbox.ledger.create_trade(
        app_id=call.app_id, out_trade_no=out_trade_no, total_fen=total_fen, subject=subject,
        buyer_id=call.sandbox.accounts.resolve_buyer(call.app_id, buyer_id, buyer_open_id),
        buyer_open_id=buyer_open_id, product_code=product_code, notify_url=call.params.get("notify_url") or None,
        time_expire=time_expire,
    )
    return success(out_trade_no=trade["out_trade_no"], trade_no=trade["trade_no"])


def trade_query(call: GatewayCall) -> dict:
    trade = _existing_trade(call)
    total = fen_to_yuan(trade["total_fen"])
    paid = total if trade["gmt_payment"] else "0.00"
    fields = success(trade_no=trade["trade_no"], out_trade_no=trade["out_trade_no"],
                     buyer_user_id=trade["buyer_id"])
    if trade["buyer_open_id"]:
        fields["buyer_open_id"] = trade["buyer_open_id"]
    fields.update(trade_status=call.sandbox.ledger.effective_status(trade), total_amount=total,
                  receipt_amount=paid, buyer_pay_amount=paid, invoice_amount=paid, point_amount="0.00")
    if trade["gmt_payment"]:
        fields["send_pay_date"] = trade["gmt_payment"]
        fields["fund_bill_list"] = [{"amount": total, "fund_channel": "ALIPAYACCOUNT"}]
    return fields


def trade_close(call: GatewayCall) -> dict:
    trade = call.sandbox.ledger.close_trade(call.app_id, *_trade_ref(call.biz))
    return success(trade_no=trade["trade_no"], out_trade_no=trade["out_trade_no"])


def trade_refund(call: GatewayCall) -> dict:
    trade_no, out_trade_no = _trade_ref(call.biz)
    refund_fen = _amount_fen(call.biz, "refund_amount")
    trade, refund, fund_change = call.sandbox.ledger.refund(
        app_id=call.app_id, trade_no=trade_no, out_trade_no=out_trade_no,
        out_request_no=_text(call.biz, "out_request_no", required=False),
        refund_fen=refund_fen, reason=_text(call.biz, "refund_reason", required=False, max_len=256),
    )
    if fund_change:
        send_trade_notification(call.sandbox, trade, refund)
    return success(trade_no=trade["trade_no"], out_trade_no=trade["out_trade_no"], buyer_user_id=trade["buyer_id"],
                   fund_change="Y" if fund_change else "N", refund_fee=fen_to_yuan(trade["refunded_fen"]),
                   gmt_refund_pay=refund["gmt_refund"][:19])


def refund_query(call: GatewayCall) -> dict:
    """An unknown out_request_no is a bare success without refund_status: Alipay's "no such refund"."""
    trade = _existing_trade(call)
    out_request_no = _text(call.biz, "out_request_no")
    refund = call.sandbox.ledger.refund_of(trade["trade_no"], out_request_no)
    if refund is None:
        return success()
    fields = success(trade_no=trade["trade_no"], out_trade_no=trade["out_trade_no"], out_request_no=out_request_no,
                     total_amount=fen_to_yuan(trade["total_fen"]), refund_amount=fen_to_yuan(refund["refund_fen"]),
                     refund_status="REFUND_SUCCESS")
    query_options = call.biz.get("query_options")
    if isinstance(query_options, list) and "gmt_refund_pay" in query_options:
        fields["gmt_refund_pay"] = refund["gmt_refund"]
    return fields


def oauth_token(call: GatewayCall) -> dict:
    """Top-level grant_type/code; the answer has no code field, and failures come as error_response."""
    if call.params.get("grant_type") != "authorization_code":
        raise invalid_argument("isv.grant-type-invalid", "grant_type参数不正确", envelope="error_response")
    token = call.sandbox.accounts.redeem_code(call.app_id, call.params.get("code") or "")
    if token is None:
        raise invalid_argument("isv.code-invalid", "授权码code无效", envelope="error_response")
    return token
