"""Channel notify endpoints: no auth, signatures only. Thin: the body goes to the notifications service.

When the database does not answer, the channel gets its FAIL form with a 503 and Retry-After: it sends the
notification again (WeChat Pay and Alipay retry anything but their success answer)."""
from __future__ import annotations

from flask import Response, request
from flask_smorest import Blueprint

from app.channels.base import NotificationKind
from app.errors import DATABASE_RETRY_AFTER_S
from app.extensions import runtime
from app.services.payments import notifications

blp = Blueprint("notify", __name__, url_prefix="/notify", description="Channel notifications (signed)")

_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}
# What each channel sends (PROTOCOLS.md), shortened: the signature and trade numbers are illustrations.
WECHAT_PAY_EXAMPLE = (
    "<xml><appid>wx1234567890abcdef</appid><mch_id>1900000109</mch_id><nonce_str>5K8264ILTKCH16CQ</nonce_str>"
    "<result_code>SUCCESS</result_code><return_code>SUCCESS</return_code><openid>oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
    "</openid><trade_type>JSAPI</trade_type><bank_type>CMC</bank_type><total_fee>19900</total_fee><cash_fee>19900"
    "</cash_fee><transaction_id>4200000000202612050000000001</transaction_id><out_trade_no>P20261205093000000001"
    "</out_trade_no><time_end>20261205093012</time_end><sign_type>HMAC-SHA256</sign_type>"
    "<sign>9A0A8659F005D6984697E2CA0A9CF3B79A0A8659F005D6984697E2CA0A9CF3B7</sign></xml>")
WECHAT_REFUND_EXAMPLE = (
    "<xml><return_code>SUCCESS</return_code><appid>wx1234567890abcdef</appid><mch_id>1900000109</mch_id>"
    "<nonce_str>TeqClE3i0mvn3DrK</nonce_str><req_info>T87GAHG17TGAHG1TGHAHAHA1Y1CIOA9UGJH1GAHV871HAGAGQYQQPOOJMXNBCXBVN"
    "MNMAJAA</req_info></xml>")
ALIPAY_EXAMPLE = {
    "notify_time": "2026-12-05 09:30:12", "notify_type": "trade_status_sync", "notify_id": "ac05099524730693a8b3",
    "app_id": "2021000000000001", "charset": "utf-8", "version": "1.0", "sign_type": "RSA2",
    "sign": "base64 RSA2 signature", "trade_no": "2026120522001400000000000001",
    "out_trade_no": "P20261205093000000001", "buyer_id": "2088102000000000", "trade_status": "TRADE_SUCCESS",
    "total_amount": "199.00", "receipt_amount": "199.00", "gmt_payment": "2026-12-05 09:30:10",
}


def _xml_body(example: str) -> dict:
    return {"requestBody": {"required": True, "content": {"text/xml": {"schema": {"type": "string"},
                                                                        "example": example}}},
            "responses": {"200": {"description": "SUCCESS or FAIL, as the channel expects",
                                  "content": {"text/xml": {"schema": {"type": "string"}}}},
                          "503": {"description": "`database_unavailable`: FAIL, the channel sends it again",
                                  "headers": _RETRY_AFTER, "content": {"text/xml": {"schema": {"type": "string"}}}}}}


_FORM_BODY = {"requestBody": {"required": True, "content": {
    "application/x-www-form-urlencoded": {"schema": {"type": "object", "additionalProperties": {"type": "string"}},
                                          "example": ALIPAY_EXAMPLE}}},
    "responses": {"200": {"description": "`success`, or `fail` to be sent again",
                          "content": {"text/plain": {"schema": {"type": "string"}}}},
                  "503": {"description": "`database_unavailable`: `fail`, Alipay sends it again",
                          "headers": _RETRY_AFTER, "content": {"text/plain": {"schema": {"type": "string"}}}}}}

MAX_BODY = 64 * 1024


def _answer(channel: str, clinic_code: str, kind: NotificationKind | None) -> Response:
    body = request.get_data(cache=False)[:MAX_BODY]
    result = notifications.ingest(runtime(), channel, clinic_code, body, request.content_type, kind)
    response = Response(result.reply, status=result.status, content_type=result.content_type)
    if result.status == 503:
        response.headers["Retry-After"] = str(DATABASE_RETRY_AFTER_S)
    return response


@blp.route("/wechat/<string:clinic_code>/pay", methods=["POST"])
@blp.doc(**_xml_body(WECHAT_PAY_EXAMPLE))
def wechat_pay(clinic_code):
    """WeChat Pay v2 payment notification."""
    return _answer("wechat", clinic_code, NotificationKind.PAYMENT)


@blp.route("/wechat/<string:clinic_code>/refund", methods=["POST"])
@blp.doc(**_xml_body(WECHAT_REFUND_EXAMPLE))
def wechat_refund(clinic_code):
    """WeChat Pay v2 refund notification (encrypted req_info)."""
    return _answer("wechat", clinic_code, NotificationKind.REFUND)


@blp.route("/alipay/<string:clinic_code>", methods=["POST"])
@blp.doc(**_FORM_BODY)
def alipay(clinic_code):
    """Alipay asynchronous notification (payments and refunds)."""
    return _answer("alipay", clinic_code, None)
