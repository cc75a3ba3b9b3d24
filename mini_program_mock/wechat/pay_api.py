"""The sandbox WeChat Pay v2 API under /wxpay/: signed XML in, signed XML out.

Protocol faults (unparseable XML, unknown merchant, bad signature) answer
`return_code=FAIL` unsigned; business refusals answer `result_code=FAIL` with an
`err_code`, signed with the merchant's sign type, as WeChat does. Always HTTP 200.
"""
from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from datetime import date, datetime

from flask import Blueprint, Response, current_app, request

from ..world import current_world
from . import bill, ledger, refunds, wire
from .ledger import Refusal

bp = Blueprint("sandbox_wxpay", __name__, url_prefix="/wxpay")

_TRADE_NO = re.compile(r"^[A-Za-z0-9_\-|*@]{1,32}$")
_REFUND_NO = re.compile(r"^[A-Za-z0-9_\-|*@]{1,64}$")
_FEN = re.compile(r"^[1-9][0-9]{0,9}$")
_REFUNDQUERY_PAGE = 10
_LOGGED_FIELDS = ("appid", "mch_id", "out_trade_no", "transaction_id", "out_refund_no", "refund_id", "total_fee",
                  "refund_fee", "bill_date", "bill_type", "sign_type")
_LOGGED_OUTCOME = ("return_code", "return_msg", "result_code", "err_code", "err_code_des")


class ProtocolFail(Exception):
    """Answered as return_code=FAIL with this return_msg."""


def _xml(text: str) -> Response:
    return Response(text, status=200, content_type="text/xml; charset=utf-8")


def _authenticate(req: dict) -> dict:
    for name in ("appid", "mch_id", "nonce_str", "sign"):
        if not req.get(name):
            raise ProtocolFail(f"缺少参数{name}")
    merchant = current_app.extensions["sandbox_merchants"].wechat_by_mch(req["mch_id"])
    if merchant is None:
        raise ProtocolFail("mch_id参数错误，商户号不存在")
    if (req.get("sign_type") or "MD5") not in wire.SIGN_TYPES:
        raise ProtocolFail("sign_type参数错误")
    if not wire.signature_valid(req, merchant["api_key"]):
        raise ProtocolFail("签名错误")
    return merchant


def _endpoint(path: str):
    """Register a handler(req, merchant) -> business fields dict (or a raw Response) for POST /wxpay/<path>."""

    def decorate(handler: Callable[[dict, dict], dict | Response]):
        def view():
            req: dict = {}
            reply: dict = {}
            try:
                req = wire.parse_xml(request.get_data())
                merchant = _authenticate(req)
                try:
                    if req["appid"] != merchant["appid"]:
                        raise Refusal("APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配")
                    result = handler(req, merchant)
                except Refusal as exc:
                    result = {"result_code": "FAIL", "err_code": exc.err_code, "err_code_des": exc.message}
                if isinstance(result, Response):
                    reply = {"return_code": "SUCCESS", "result_code": "SUCCESS"}
                    return result
                reply = {"return_code": "SUCCESS", "return_msg": "OK", **_ids(merchant), "result_code": "SUCCESS",
                         **result}
                return _xml(wire.signed_xml(reply, merchant["api_key"], merchant["sign_type"]))
            except wire.XmlError as exc:
                reply = {"return_code": "FAIL", "return_msg": f"XML格式错误: {exc}"}
                return _xml(wire.to_xml(reply))
            except ProtocolFail as exc:
                reply = {"return_code": "FAIL", "return_msg": str(exc)}
                return _xml(wire.to_xml(reply))
            finally:
                current_world().log("wechat_pay_request", endpoint=path,
                                    **{k: req[k] for k in _LOGGED_FIELDS if req.get(k)},
                                    **{k: reply[k] for k in _LOGGED_OUTCOME if k in reply})

        bp.add_url_rule(f"/{path}", endpoint=path.replace("/", "_"), view_func=view, methods=["POST"])
        return handler

    return decorate


def _ids(merchant: dict) -> dict:
    return {"appid": merchant["appid"], "mch_id": merchant["mch_id"], "nonce_str": wire.nonce()}


# --- field validation ---------------------------------------------------
def _need(req: dict, name: str) -> str:
    if not req.get(name):
        raise Refusal("PARAM_ERROR", f"缺少参数{name}")
    return req[name]


def _fen(req: dict, name: str) -> int:
    if not _FEN.match(_need(req, name)):
        raise Refusal("PARAM_ERROR", f"{name}参数格式错误：应为正整数（单位分）")
    return int(req[name])


def _matching(req: dict, name: str, pattern: re.Pattern) -> str:
    if not pattern.match(_need(req, name)):
        raise Refusal("PARAM_ERROR", f"{name}参数格式错误")
    return req[name]


def _max_bytes(req: dict, name: str, limit: int) -> str:
    value = req.get(name, "")
    if len(value.encode("utf-8")) > limit:
        raise Refusal("PARAM_ERROR", f"{name}参数长度有误（最多{limit}字节）")
    return value


def _notify_url(req: dict, required: bool) -> str:
    url = req.get("notify_url", "") if not required else _need(req, "notify_url")
    if url and (not url.startswith(("http://", "https://")) or "?" in url or len(url) > 256):
        raise Refusal("PARAM_ERROR", "notify_url参数格式错误：须为不带参数的 http(s) 地址")
    return url


def _cny(req: dict, name: str) -> str:
    if req.get(name, "CNY") != "CNY":
        raise Refusal("PARAM_ERROR", f"{name}参数错误：仅支持CNY")
    return "CNY"


def _time(req: dict, name: str) -> float | None:
    if not req.get(name):
        return None
    try:
        return wire.parse_compact_time(req[name])
    except ValueError:
        raise Refusal("PARAM_ERROR", f"{name}参数格式错误：应为yyyyMMddHHmmss") from None


def _trade_of(req: dict, merchant: dict) -> dict:
    if not req.get("transaction_id") and not req.get("out_trade_no"):
        raise Refusal("PARAM_ERROR", "out_trade_no和transaction_id不能同时为空")
    trade = ledger.find_trade(current_world(), merchant["mch_id"], req.get("out_trade_no", ""),
                              req.get("transaction_id", ""))
    if trade is None:
        raise Refusal("ORDERNOTEXIST", "订单不存在")
    return trade


# --- endpoints -------------------------------------------------------------
@_endpoint("pay/unifiedorder")
def unifiedorder(req: dict, merchant: dict) -> dict:
    trade_type = _need(req, "trade_type")
    if trade_type != "JSAPI":
        raise Refusal("PARAM_ERROR", "trade_type参数错误：沙箱只支持小程序JSAPI支付")
    _need(req, "body")
    _max_bytes(req, "body", 128)
    _need(req, "openid")
    try:
        ipaddress.ip_address(_need(req, "spbill_create_ip"))
    except ValueError:
        raise Refusal("PARAM_ERROR", "spbill_create_ip参数格式错误") from None
    started, expires = _time(req, "time_start"), _time(req, "time_expire")
    if started is not None and expires is not None and expires <= started:
        raise Refusal("PARAM_ERROR", "time_expire必须晚于time_start")
    order = {
        "appid": req["appid"], "mch_id": req["mch_id"],
        "out_trade_no": _matching(req, "out_trade_no", _TRADE_NO),
        "body": req["body"], "attach": _max_bytes(req, "attach", 127), "total_fee": _fen(req, "total_fee"),
        "fee_type": _cny(req, "fee_type"), "openid": _max_bytes(req, "openid", 128),
        "trade_type": trade_type, "notify_url": _notify_url(req, required=True),
        "spbill_create_ip": req["spbill_create_ip"], "time_start": req.get("time_start", ""),
        "time_expire": req.get("time_expire", ""),
    }
    trade, _created = ledger.create_trade(current_world(), order)
    return {"trade_type": trade["trade_type"], "prepay_id": trade["prepay_id"]}


@_endpoint("pay/orderquery")
def orderquery(req: dict, merchant: dict) -> dict:
    world = current_world()
    trade = _trade_of(req, merchant)
    state = ledger.trade_state(world, trade)
    fields = {
        "openid": trade["openid"], "is_subscribe": "N", "trade_type": trade["trade_type"],
        "bank_type": trade["bank_type"], "total_fee": trade["total_fee"], "fee_type": trade["fee_type"],
        "cash_fee": trade["cash_fee"], "transaction_id": trade["transaction_id"],
        "out_trade_no": trade["out_trade_no"], "attach": trade["attach"] or None, "time_end": trade["time_end"],
        "trade_state": state, "trade_state_desc": ledger.TRADE_STATE_DESC[state],
    }
    return fields


@_endpoint("pay/closeorder")
def closeorder(req: dict, merchant: dict) -> dict:
    _matching(req, "out_trade_no", _TRADE_NO)
    trade = ledger.find_trade(current_world(), merchant["mch_id"], out_trade_no=req["out_trade_no"])
    if trade is None:
        raise Refusal("ORDERNOTEXIST", "订单不存在")
    ledger.close_trade(current_world(), trade)
    return {"result_msg": "OK"}


@_endpoint("secapi/pay/refund")
def refund(req: dict, merchant: dict) -> dict:
    world = current_world()
    refund_request = {
        "out_refund_no": _matching(req, "out_refund_no", _REFUND_NO),
        "total_fee": _fen(req, "total_fee"), "refund_fee": _fen(req, "refund_fee"),
        "refund_desc": _max_bytes(req, "refund_desc", 80), "notify_url": _notify_url(req, required=False),
    }
    _cny(req, "refund_fee_type")
    trade = _trade_of(req, merchant)
    made, created = refunds.apply_refund(world, trade, refund_request)
    if created:
        current_app.extensions["sandbox_wechat_settler"].wake()
    return {
        "transaction_id": trade["transaction_id"], "out_trade_no": trade["out_trade_no"],
        "out_refund_no": made["out_refund_no"], "refund_id": made["refund_id"],
        "refund_fee": made["refund_fee"], "total_fee": trade["total_fee"], "cash_fee": trade["cash_fee"],
        "cash_refund_fee": made["refund_fee"], "coupon_refund_fee": 0,
    }


@_endpoint("pay/refundquery")
def refundquery(req: dict, merchant: dict) -> dict:
    world = current_world()
    if req.get("refund_id") or req.get("out_refund_no"):
        found = refunds.find_refund(world, merchant["mch_id"], req.get("out_refund_no", ""), req.get("refund_id", ""))
        if found is None:
            raise Refusal("REFUNDNOTEXIST", "退款订单查询失败")
        trade, listed = ledger.trade_by_id(world, found["trade_id"]), [found]
    else:
        trade = _trade_of(req, merchant)
        listed = refunds.refunds_of_trade(world, trade["id"])
        if not listed:
            raise Refusal("REFUNDNOTEXIST", "退款订单查询失败")
    offset = req.get("offset") or "0"
    if not offset.isdigit() or (int(offset) >= len(listed) and int(offset) > 0):
        raise Refusal("PARAM_ERROR", "offset参数错误")
    page = listed[int(offset):int(offset) + _REFUNDQUERY_PAGE]
    fields = {
        "transaction_id": trade["transaction_id"], "out_trade_no": trade["out_trade_no"],
        "total_fee": trade["total_fee"], "cash_fee": trade["cash_fee"], "fee_type": trade["fee_type"],
        "refund_fee": sum(r["refund_fee"] for r in page), "total_refund_count": len(listed),
        "refund_count": len(page),
    }
    for n, item in enumerate(page):
        fields.update({
            f"out_refund_no_{n}": item["out_refund_no"], f"refund_id_{n}": item["refund_id"],
            f"refund_channel_{n}": "ORIGINAL", f"refund_fee_{n}": item["refund_fee"],
            f"settlement_refund_fee_{n}": item["refund_fee"], f"refund_status_{n}": item["status"],
            f"refund_account_{n}": "REFUND_SOURCE_UNSETTLED_FUNDS",
            f"refund_recv_accout_{n}": "支付用户零钱",
            f"refund_success_time_{n}": wire.dashed_time(item["success_at"]) if item["success_at"] else None,
        })
    return fields


@_endpoint("pay/downloadbill")
def downloadbill(req: dict, merchant: dict) -> Response:
    world = current_world()
    raw_date = req.get("bill_date", "")
    try:
        if len(raw_date) != 8 or not raw_date.isdigit():
            raise ValueError(raw_date)
        bill_date = datetime.strptime(raw_date, "%Y%m%d").date()
    except ValueError:
        raise ProtocolFail("invalid bill_date") from None
    bill_type = req.get("bill_type") or "ALL"
    if bill_type not in bill.BILL_TYPES:
        raise ProtocolFail("invalid bill_type")
    if req.get("tar_type"):
        raise ProtocolFail("the sandbox serves bills uncompressed: omit tar_type")
    today: date = world.now_shanghai().date()
    text = bill.render(world, merchant, bill_date, bill_type) if bill_date <= today else None
    if text is None:
        raise ProtocolFail("No Bill Exist")
    return Response(text, status=200, content_type="text/plain; charset=utf-8")
