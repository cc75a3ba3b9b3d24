"""`/alipay/gateway.do`: authenticate the app's RSA signature, dispatch the method, sign the answer.

python-alipay-sdk sends GET with every parameter in the query string; a POSTed
form (or a mix) is read the same way. Failures before the app is known go out
unsigned (there is no key to sign with); every later answer is signed with the
app's Alipay private key using the request's sign type.
"""
from __future__ import annotations

import json
import re

from flask import Blueprint, Response, request

from . import messages, methods
from .bills import bill_download_url
from .protocol import (
    SIGN_HASHES,
    GatewayError,
    invalid_argument,
    missing_argument,
    render_response,
    rsa_verify,
    signed_string,
)
from .state import AlipaySandbox, GatewayCall, current_alipay

bp = Blueprint("sandbox_alipay_gateway", __name__)

METHODS = {
    "alipay.trade.create": methods.trade_create,
    "alipay.trade.query": methods.trade_query,
    "alipay.trade.close": methods.trade_close,
    "alipay.trade.refund": methods.trade_refund,
    "alipay.trade.fastpay.refund.query": methods.refund_query,
    "alipay.system.oauth.token": methods.oauth_token,
    "alipay.data.dataservice.bill.downloadurl.query": bill_download_url,
    "alipay.open.app.mini.templatemessage.send": messages.template_message_send,
}

METHOD_NAME = re.compile(r"[a-z][a-z0-9]*(\.[a-z0-9]+)+")
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")


def _authenticate(merchant: dict | None, params: dict[str, str]) -> dict:
    if not params.get("app_id"):
        raise missing_argument("isv.missing-app-id", "缺少AppID参数")
    if merchant is None:
        raise invalid_argument("isv.invalid-app-id", "无效的AppID参数")
    if not params.get("method"):
        raise missing_argument("isv.missing-method", "缺少方法名参数")
    if not params.get("sign_type"):
        raise missing_argument("isv.missing-signature-type", "缺少签名类型参数")
    if params["sign_type"] not in SIGN_HASHES:
        raise invalid_argument("isv.invalid-signature-type", "无效的签名类型参数")
    if not params.get("sign"):
        raise missing_argument("isv.missing-signature", "缺少签名参数")
    if not rsa_verify(merchant["app_public_key"], signed_string(params), params["sign"], params["sign_type"]):
        raise invalid_argument("isv.invalid-signature", "验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配")
    return merchant


def _check_common_params(params: dict[str, str]) -> None:
    if not params.get("timestamp"):
        raise missing_argument("isv.missing-timestamp", "缺少时间戳参数")
    if not TIMESTAMP.fullmatch(params["timestamp"]):
        raise invalid_argument("isv.invalid-timestamp", "非法的时间戳参数")
    if not params.get("version"):
        raise missing_argument("isv.missing-version", "缺少版本参数")
    if params["version"] != "1.0":
        raise invalid_argument("isv.invalid-version", "版本号错误")
    if params.get("charset") and params["charset"].lower() != "utf-8":
        raise invalid_argument("isv.invalid-charset", "字符集错误")


def _biz_content(raw: str | None) -> dict:
    if not raw:
        return {}
    try:
        biz = json.loads(raw)
    except ValueError:
        biz = None
    if not isinstance(biz, dict):
        raise invalid_argument("isv.invalid-parameter", "biz_content不是合法的JSON对象")
    return biz


def _answer(sandbox: AlipaySandbox, merchant: dict | None, params: dict[str, str]) -> dict:
    _authenticate(merchant, params)
    handler = METHODS.get(params["method"])
    if handler is None:
        raise invalid_argument("isv.invalid-method", "不存在的方法名", envelope="error_response")
    _check_common_params(params)
    return handler(GatewayCall(sandbox, merchant, params, _biz_content(params.get("biz_content"))))


@bp.route("/alipay/gateway.do", methods=["GET", "POST"])
def gateway():
    sandbox = current_alipay()
    params = {key: request.values.get(key, "") for key in request.values.keys()}
    method = params.get("method", "")
    envelope = method.replace(".", "_") + "_response" if METHOD_NAME.fullmatch(method) else "error_response"
    sign_type = params["sign_type"] if params.get("sign_type") in SIGN_HASHES else "RSA2"
    merchant = sandbox.merchant(params.get("app_id"))
    try:
        payload = _answer(sandbox, merchant, params)
    except GatewayError as failure:
        payload, envelope = failure.payload(), failure.envelope or envelope
    body = render_response(envelope, payload, merchant["alipay_private_key"] if merchant else None, sign_type)
    sandbox.world.log("alipay_gateway", app_id=params.get("app_id"), method=method,
                      biz_content=params.get("biz_content"), code=payload.get("code", "10000"),
                      sub_code=payload.get("sub_code"))
    return Response(body, content_type="text/html;charset=utf-8")
