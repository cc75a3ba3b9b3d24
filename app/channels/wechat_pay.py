"""WeChat Pay API v2 (JSAPI for mini-programs) and mini-program login, through wechatpy 1.8.18."""
from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any
from xml.parsers.expat import ExpatError

import requests
from wechatpy import WeChatClient
from wechatpy.crypto import WeChatRefundCrypto
from wechatpy.exceptions import APILimitedException, WeChatClientException, WeChatPayException
from wechatpy.pay import WeChatPay
from wechatpy.utils import random_string

from app.domain.secrets import WeakSecret

from . import cert_files, wechat_sign, wechat_wire
from .base import (
    AlreadyPaid,
    BadAnswerSignature,
    ChannelError,
    ChannelRejected,
    ChannelUnavailable,
    InvalidNotification,
    InvalidResponse,
    LoginIdentity,
    MerchantConfig,
    MerchantMisconfigured,
    NotificationKind,
    PaymentChannel,
    PaymentNotification,
    PrepayResult,
    RefundNotification,
    RefundQueryResult,
    RefundResult,
    RefundState,
    TradeQueryResult,
    TradeState,
)
from .wechat_wire import RETRYABLE_ERR_CODES, api_key_of, xml_fields
from .wire import SHANGHAI, http_error, reading_answer, shanghai_to_utc

# Seconds to wait for WeChat (HPAY_CHANNEL_TIMEOUT_S, passed in by the Runtime).
DEFAULT_TIMEOUT_S = 10.0
_COMPACT_TIME = "%Y%m%d%H%M%S"  # time_end, time_expire
_DASHED_TIME = "%Y-%m-%d %H:%M:%S"  # refund success times

_TRADE_STATES = {
    "SUCCESS": TradeState.PAID,
    "REFUND": TradeState.REFUNDED,
    "NOTPAY": TradeState.PENDING,
    "USERPAYING": TradeState.PENDING,
    "CLOSED": TradeState.CLOSED,
    "REVOKED": TradeState.CLOSED,
    "PAYERROR": TradeState.FAILED,
}
# CHANGE means the money could not reach the payer's account: a person must act, so it is a failure here.
_REFUND_STATES = {
    "SUCCESS": RefundState.SUCCEEDED,
    "PROCESSING": RefundState.PROCESSING,
    "REFUNDCLOSE": RefundState.FAILED,
    "CHANGE": RefundState.FAILED,
}
_INVALID_LOGIN_CODES = {40029, 40163, 40226}  # invalid, already used, blocked user
_ACK = "<xml><return_code><![CDATA[{code}]]></return_code><return_msg><![CDATA[{msg}]]></return_msg></xml>"


class _MerchantWeChatPay(WeChatPay):
    """wechatpy's client, made to sign every request with the merchant's sign type and to verify every
    signed answer: wechatpy signs HMAC-SHA256 only when the request carries `sign_type`, which most of
    its helpers never add, and it does not verify answers at all."""

    def __init__(self, config: MerchantConfig, timeout_s: float) -> None:
        cert, key = config.mch_cert_path, config.mch_key_path
        if config.cert_pem and config.key_pem:
            cert, key = cert_files.pem_paths(config.cert_pem, config.key_pem)
        super().__init__(config.app_id, config.api_key, config.mch_id, mch_cert=cert, mch_key=key,
                         timeout=timeout_s)
        self.API_BASE_URL = config.api_base_url
        self.sign_type = config.sign_type
        self._config = config

    def _request(self, method, url_or_endpoint, **kwargs):
        api_key_of(self._config)  # wechatpy signs with whatever key it holds, an empty one too
        data = kwargs.get("data")
        if isinstance(data, dict) and self.sign_type != wechat_sign.MD5:
            data["sign_type"] = self.sign_type
        return super()._request(method, url_or_endpoint, **kwargs)

    def _handle_result(self, res):
        res.encoding = "utf-8"
        try:
            fields = xml_fields(res.text)
        except ValueError as exc:
            raise InvalidResponse(f"WeChat Pay answered something that is not v2 XML: {exc}") from exc
        # Only return_code=FAIL answers are unsigned.
        if fields.get("return_code") == "SUCCESS" and not wechat_sign.verify(fields, self.api_key, self.sign_type):
            raise BadAnswerSignature("WeChat Pay answer failed signature verification")
        return super()._handle_result(res)


def _refund_plaintext_with(api_key: str, fields: dict, appid: str, mch_id: str | None):
    """req_info decrypted with this key, as wechatpy's parse_refund_notify_result does with the client's own
    (which would have to be swapped, and the adapter may serve several threads)."""
    data = WeChatRefundCrypto(api_key).decrypt_message(fields, appid, mch_id)
    for name in ("total_fee", "settlement_total_fee", "refund_fee", "settlement_refund_fee"):
        if name in data:
            data[name] = int(data[name])
    return data


def _translate(exc: WeChatPayException) -> ChannelError:
    if exc.return_code is None:
        return http_error(exc.response.status_code if exc.response is not None else None, "WeChat Pay")
    if exc.return_code != "SUCCESS":
        return ChannelRejected(exc.return_code, exc.return_msg or "")
    code = exc.errcode or exc.result_code or "FAIL"
    if code in RETRYABLE_ERR_CODES:
        return ChannelUnavailable(f"{code}: {exc.errmsg or ''}")
    if code == "ORDERPAID":
        return AlreadyPaid(code, exc.errmsg or "")
    return ChannelRejected(code, exc.errmsg or "")


def _call(operation: Callable[..., Any], *args, **kwargs) -> dict:
    try:
        return operation(*args, **kwargs)
    except WeChatPayException as exc:
        raise _translate(exc) from exc
    except requests.RequestException as exc:
        raise ChannelUnavailable(f"WeChat Pay unreachable: {exc}") from exc


def _fen(value: str | None) -> int | None:
    return int(value) if value not in (None, "") else None


def _compact_time(value: str | None) -> datetime | None:
    """WeChat's `yyyyMMddHHmmss` (Asia/Shanghai) as aware UTC."""
    return shanghai_to_utc(value, _COMPACT_TIME) if value else None


class WeChatPayChannel(PaymentChannel):
    def __init__(self, config: MerchantConfig, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        if config.channel != "wechat":
            raise ValueError(f"not a WeChat merchant: {config.channel}")
        if config.sign_type not in wechat_sign.SIGN_TYPES:
            raise ValueError(f"WeChat Pay v2 signs with MD5 or HMAC-SHA256, not {config.sign_type}")
        self.config = config
        self.timeout_s = timeout_s
        self._pay = _MerchantWeChatPay(config, timeout_s)
        # A dummy access_token keeps wechatpy from fetching one from its hard-coded host first.
        self._login = WeChatClient(config.app_id, config.app_secret, access_token="unused", timeout=timeout_s,
                                   auto_retry=False)
        self._login.wxa.API_BASE_URL = config.login_base_url

    # --- login ------------------------------------------------------------
    def login(self, code: str) -> LoginIdentity:
        try:
            session = self._login.wxa.code_to_session(code)
        except APILimitedException as exc:
            raise ChannelUnavailable(f"WeChat login rate limited: {exc.errmsg}") from exc
        except WeChatClientException as exc:
            if exc.errcode is None:
                raise http_error(exc.response.status_code if exc.response is not None else None,
                                 "WeChat login") from exc
            if exc.errcode == -1:  # "system busy"
                raise ChannelUnavailable(f"WeChat login unavailable: {exc}") from exc
            if exc.errcode in _INVALID_LOGIN_CODES:
                raise ChannelRejected("invalid_code", f"{exc.errcode} {exc.errmsg}") from exc
            raise ChannelRejected(str(exc.errcode), str(exc.errmsg)) from exc
        except requests.RequestException as exc:
            raise ChannelUnavailable(f"WeChat login unreachable: {exc}") from exc
        if not isinstance(session, dict) or not session.get("openid"):
            raise InvalidResponse("code2session answered without an openid")
        return LoginIdentity(openid=session["openid"], unionid=session.get("unionid"))

    # --- payments ---------------------------------------------------------
    def create_payment(self, out_trade_no: str, amount_fen: int, description: str, payer_id: str,
                       notify_url: str, expires_at: datetime, client_ip: str) -> PrepayResult:
        if expires_at.tzinfo is None:
            raise ValueError("expires_at must be an aware datetime")
        answer = _call(self._pay.order.create, trade_type="JSAPI", body=description, total_fee=amount_fen,
                       notify_url=notify_url, client_ip=client_ip, user_id=payer_id, out_trade_no=out_trade_no,
                       time_start=datetime.now(SHANGHAI), time_expire=expires_at.astimezone(SHANGHAI))
        prepay_id = answer.get("prepay_id")
        if not prepay_id:
            raise InvalidResponse("unifiedorder answered without a prepay_id")
        return PrepayResult(out_trade_no=out_trade_no, prepay_id=prepay_id, pay_params=self._pay_params(prepay_id))

    def _pay_params(self, prepay_id: str) -> dict:
        """wx.requestPayment arguments; wechatpy can sign them with MD5 only."""
        if self.config.sign_type == wechat_sign.MD5:
            params = self._pay.jsapi.get_jsapi_params(prepay_id)
        else:
            params = {"appId": self.config.app_id, "timeStamp": str(int(time.time())),
                      "nonceStr": random_string(32), "package": f"prepay_id={prepay_id}",
                      "signType": self.config.sign_type}
            params["paySign"] = wechat_sign.sign(params, api_key_of(self.config), self.config.sign_type)
        return {key: params[key] for key in ("timeStamp", "nonceStr", "package", "signType", "paySign")}

    def query_payment(self, out_trade_no: str) -> TradeQueryResult:
        try:
            answer = _call(self._pay.order.query, out_trade_no=out_trade_no)
        except ChannelRejected as exc:
            if exc.code == "ORDERNOTEXIST":
                return TradeQueryResult(out_trade_no, TradeState.NOT_FOUND, raw_state=exc.code)
            raise
        return _trade_result(answer, out_trade_no)

    def find_payment(self, channel_trade_no: str) -> TradeQueryResult | None:
        try:
            answer = _call(self._pay.order.query, transaction_id=channel_trade_no)
        except ChannelRejected as exc:
            if exc.code == "ORDERNOTEXIST":
                return None
            raise
        if not answer.get("out_trade_no"):
            raise InvalidResponse("orderquery answered without an out_trade_no")
        return _trade_result(answer, answer["out_trade_no"])

    def close_payment(self, out_trade_no: str) -> None:
        try:
            _call(self._pay.order.close, out_trade_no)
        except ChannelRejected as exc:
            if exc.code != "ORDERCLOSED":
                raise

    # --- refunds ----------------------------------------------------------
    def refund(self, out_trade_no: str, out_refund_no: str, total_fen: int, refund_fen: int, reason: str,
               notify_url: str | None) -> RefundResult:
        answer = _call(self._pay.refund.apply, total_fee=total_fen, refund_fee=refund_fen,
                       out_refund_no=out_refund_no, out_trade_no=out_trade_no, refund_desc=reason or None,
                       notify_url=notify_url)
        if not answer.get("refund_id"):
            raise InvalidResponse("refund answered without a refund_id")
        with reading_answer("refund"):
            return RefundResult(out_refund_no=out_refund_no, channel_refund_id=answer["refund_id"],
                                amount_fen=int(answer["refund_fee"]), state=RefundState.PROCESSING)

    def query_refund(self, out_trade_no: str, out_refund_no: str) -> RefundQueryResult:
        try:
            answer = _call(self._pay.refund.query, out_refund_no=out_refund_no, out_trade_no=out_trade_no)
        except ChannelRejected as exc:
            if exc.code == "REFUNDNOTEXIST":
                return RefundQueryResult(out_trade_no, out_refund_no, RefundState.NOT_FOUND, raw_status=exc.code)
            raise
        with reading_answer("refundquery"):
            return self._refund_in(answer, out_trade_no, out_refund_no)

    @staticmethod
    def _refund_in(answer: dict, out_trade_no: str, out_refund_no: str) -> RefundQueryResult:
        for n in range(int(answer.get("refund_count") or 0)):
            if answer.get(f"out_refund_no_{n}") != out_refund_no:
                continue
            raw_status = answer.get(f"refund_status_{n}") or ""
            if raw_status not in _REFUND_STATES:
                raise InvalidResponse(f"refundquery answered an unknown refund_status {raw_status!r}")
            success_time = answer.get(f"refund_success_time_{n}")
            return RefundQueryResult(
                out_trade_no=out_trade_no, out_refund_no=out_refund_no, state=_REFUND_STATES[raw_status],
                raw_status=raw_status, channel_refund_id=answer.get(f"refund_id_{n}"),
                amount_fen=_fen(answer.get(f"refund_fee_{n}")),
                succeeded_at=shanghai_to_utc(success_time, _DASHED_TIME) if success_time else None)
        return RefundQueryResult(out_trade_no, out_refund_no, RefundState.NOT_FOUND, raw_status="")

    # --- notifications ----------------------------------------------------
    @staticmethod
    def _notification_fields(body: bytes) -> dict[str, str | None]:
        try:
            return xml_fields(body)
        except ValueError as exc:
            raise InvalidNotification(f"malformed WeChat notification: {exc}") from exc

    def notification_kind(self, body: bytes, content_type: str | None = None) -> NotificationKind:
        fields = self._notification_fields(body)
        if fields.get("req_info"):
            return NotificationKind.REFUND
        if fields.get("return_code") == "SUCCESS" and fields.get("result_code") == "SUCCESS":
            return NotificationKind.PAYMENT
        return NotificationKind.OTHER

    def _notification_key(self) -> str:
        try:
            return api_key_of(self.config)
        except MerchantMisconfigured as exc:
            raise InvalidNotification(f"refusing to verify: {exc}") from None

    def verify_notification(self, body: bytes, content_type: str | None = None) -> None:
        fields = self._notification_fields(body)
        if fields.get("req_info"):
            self._refund_plaintext(fields)
        else:
            self._verified(fields)

    def _verified(self, fields: dict[str, str | None]) -> dict[str, str | None]:
        """The fields of a signed notification, verified with this merchant's key and sign type."""
        key = self._notification_key()
        # A notification may name its sign type; it must be the merchant's own, or a merchant configured for
        # HMAC-SHA256 would still accept MD5, the weaker of the two.
        named = fields.get("sign_type")
        if named and named != self.config.sign_type:
            raise InvalidNotification(f"signed with {named!r}, but this merchant signs with {self.config.sign_type}")
        if not any(wechat_sign.verify(fields, candidate, self.config.sign_type)
                   for candidate in self._notification_keys(key)):
            raise InvalidNotification("bad signature")
        self._check_merchant(fields.get("appid"), fields.get("mch_id"))
        return fields

    def _notification_keys(self, current: str) -> list[str]:
        """The current key, then the one being rotated out (set only while its grace period lasts)."""
        previous = self.config.previous_api_key
        try:
            return [current, wechat_sign.require_api_key(previous)] if previous else [current]
        except WeakSecret:
            return [current]

    def parse_payment_notification(self, body: bytes, content_type: str | None = None) -> PaymentNotification:
        fields = self._verified(self._notification_fields(body))
        if fields.get("return_code") != "SUCCESS" or fields.get("result_code") != "SUCCESS":
            raise InvalidNotification("not a successful payment notification")
        try:
            amount_fen = int(fields["total_fee"])
            out_trade_no, transaction_id = fields["out_trade_no"], fields["transaction_id"]
            paid_at = _compact_time(fields.get("time_end"))
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidNotification(f"malformed payment notification: {exc!r}") from exc
        if not out_trade_no or not transaction_id:
            raise InvalidNotification("payment notification without out_trade_no or transaction_id")
        return PaymentNotification(out_trade_no=out_trade_no, channel_trade_no=transaction_id, amount_fen=amount_fen,
                                   paid_at=paid_at, app_id=fields["appid"], mch_id=fields["mch_id"],
                                   payer_id=fields.get("openid"), raw=fields)

    def _check_merchant(self, appid: str | None, mch_id: str | None) -> None:
        if appid != self.config.app_id:
            raise InvalidNotification(f"appid {appid!r} is not this merchant's")
        if mch_id != self.config.mch_id:
            raise InvalidNotification(f"mch_id {mch_id!r} is not this merchant's")

    def _refund_plaintext(self, fields: dict[str, str | None]) -> dict:
        """The decrypted `req_info` of a refund notification for this merchant."""
        if fields.get("return_code") != "SUCCESS":
            raise InvalidNotification("refund notification with return_code other than SUCCESS")
        self._check_merchant(fields.get("appid"), fields.get("mch_id"))
        problem: Exception | None = None
        plain = None
        for key in self._notification_keys(self._notification_key()):
            try:
                plain = _refund_plaintext_with(key, fields, self.config.app_id, self.config.mch_id)
                break
            except (ValueError, KeyError, TypeError, IndexError, ExpatError) as exc:
                problem = exc
        if plain is None:
            # Without the API key req_info does not decrypt to XML: that is how a forgery shows.
            raise InvalidNotification(f"req_info does not decrypt with this merchant's key: {problem!r}")
        if not isinstance(plain, dict):
            raise InvalidNotification("req_info decrypted to no <root> fields")
        return plain

    def parse_refund_notification(self, body: bytes, content_type: str | None = None) -> RefundNotification:
        plain = self._refund_plaintext(self._notification_fields(body))
        raw_status = plain.get("refund_status") or ""
        if raw_status not in _REFUND_STATES or not plain.get("out_trade_no"):
            raise InvalidNotification(f"refund notification with refund_status {raw_status!r}")
        success_time = plain.get("success_time")
        try:
            succeeded_at = shanghai_to_utc(success_time, _DASHED_TIME) if success_time else None
            refund_fen, total_fen = int(plain["refund_fee"]), _fen(plain.get("total_fee"))
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidNotification(f"malformed refund notification: {exc!r}") from exc
        return RefundNotification(
            out_trade_no=plain["out_trade_no"], out_refund_no=plain.get("out_refund_no"),
            channel_trade_no=plain.get("transaction_id"), channel_refund_id=plain.get("refund_id"),
            amount_fen=refund_fen, refund_total_fen=None, state=_REFUND_STATES[raw_status],
            raw_status=raw_status, succeeded_at=succeeded_at, raw=dict(plain), payment_total_fen=total_fen)

    def notification_ack(self, ok: bool) -> tuple[bytes, str]:
        body = _ACK.format(code="SUCCESS", msg="OK") if ok else _ACK.format(code="FAIL", msg="ERROR")
        return body.encode("utf-8"), "text/xml; charset=utf-8"

    # --- bills ------------------------------------------------------------
    def download_bill(self, bill_date: date, dest: str | Path) -> Path | None:
        return wechat_wire.download_bill(self.config, self.timeout_s, bill_date, Path(dest))


def _trade_result(answer: dict, out_trade_no: str) -> TradeQueryResult:
    raw_state = answer.get("trade_state") or ""
    if raw_state not in _TRADE_STATES:
        raise InvalidResponse(f"orderquery answered an unknown trade_state {raw_state!r}")
    with reading_answer("orderquery"):
        return TradeQueryResult(
            out_trade_no=out_trade_no, state=_TRADE_STATES[raw_state], raw_state=raw_state,
            amount_fen=_fen(answer.get("total_fee")), channel_trade_no=answer.get("transaction_id"),
            paid_at=_compact_time(answer.get("time_end")), payer_id=answer.get("openid"))
