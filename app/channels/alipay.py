"""Alipay open platform (mini-program JSAPI payment) through python-alipay-sdk 3.4.0."""
from __future__ import annotations

import http.client
import json
import urllib.error
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import requests
from alipay import AliPay
from alipay.exceptions import AliPayException, AliPayValidationError
from alipay.utils import AliPayConfig
from Cryptodome.PublicKey import RSA

from app.domain.money import fen_to_yuan, yuan_to_fen
from app.domain.secrets import RSA_KEY_MIN_BITS, RSA_KEY_MIN_LENGTH, WeakSecret, require_secret

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
from .wire import SHANGHAI, http_error, reading_answer, shanghai_to_utc, stream_to_file

# Seconds to wait for Alipay (HPAY_CHANNEL_TIMEOUT_S, passed in by the Runtime).
DEFAULT_TIMEOUT_S = 10.0
BILL_CHUNK = 1 << 16
ALIPAY_TIME = "%Y-%m-%d %H:%M:%S"

_PAID_STATUSES = ("TRADE_SUCCESS", "TRADE_FINISHED")
_RETRYABLE_SUB_CODES = {"ACQ.SYSTEM_ERROR", "aop.ACQ.SYSTEM_ERROR", "isp.unknow-error", "isp.unknown-error"}
_INVALID_LOGIN_SUB_CODES = {"isv.code-invalid"}


class _ShanghaiAliPay(AliPay):
    """The SDK stamps `timestamp` with the host's local time, but Alipay reads it as GMT+8."""

    def build_body(self, method, biz_content=None, **kwargs):
        kwargs.setdefault("timestamp", datetime.now(SHANGHAI).strftime(ALIPAY_TIME))
        return super().build_body(method, biz_content, **kwargs)


def _failure(code: str, sub_code: str | None, message: str) -> ChannelError:
    if code == "20000" or sub_code in _RETRYABLE_SUB_CODES:
        return ChannelUnavailable(f"Alipay {sub_code or code}: {message}")
    return ChannelRejected(sub_code or code or "unknown", message)


def _unsigned_failure(exc: AliPayException) -> ChannelError:
    """The SDK raises AliPayException, unverified, for error_response envelopes and unsigned answers;
    it keeps the raw answer only in a name-mangled attribute."""
    raw = getattr(exc, "_AliPayException__message", "") or ""
    try:
        document = json.loads(raw)
    except ValueError:
        document = None
    payload = next((value for value in document.values() if isinstance(value, dict)), {}) if isinstance(
        document, dict) else {}
    return _failure(str(payload.get("code") or ""), payload.get("sub_code"),
                    payload.get("sub_msg") or payload.get("msg") or raw[:200])


def _call(operation: Callable[..., Any], *args, **kwargs) -> dict:
    """Run one SDK call; a verified answer with code other than 10000 becomes our error."""
    try:
        answer = operation(*args, **kwargs)
    except AliPayValidationError as exc:
        raise BadAnswerSignature("Alipay answer failed signature verification") from exc
    except AliPayException as exc:
        raise _unsigned_failure(exc) from exc
    except urllib.error.HTTPError as exc:
        raise http_error(exc.code, "Alipay") from exc
    except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts, resets
        raise ChannelUnavailable(f"Alipay unreachable: {exc}") from exc
    except ValueError as exc:  # not JSON, not UTF-8, a signature that is not base64
        raise InvalidResponse(f"Alipay answered something unreadable: {exc}") from exc
    if not isinstance(answer, dict):
        raise InvalidResponse("Alipay answered no response object")
    code = answer.get("code")
    if code is None or code == "10000":  # oauth.token answers carry no code
        return answer
    raise _failure(code, answer.get("sub_code"), answer.get("sub_msg") or answer.get("msg") or "")


def _fen(value: str | None) -> int | None:
    return yuan_to_fen(value) if value else None


def _time(value: str | None) -> datetime | None:
    """Alipay's `yyyy-MM-dd HH:mm:ss` (refund times add `.SSS`), Asia/Shanghai, as aware UTC."""
    return shanghai_to_utc(value[:19], ALIPAY_TIME) if value else None


def _rsa_key(name: str, pem: str | None) -> None:
    """MerchantMisconfigured unless `pem` is an RSA key of at least 2048 bits."""
    try:
        key = RSA.import_key(require_secret(name, pem, RSA_KEY_MIN_LENGTH))
    except WeakSecret as exc:
        raise MerchantMisconfigured(exc.message) from None
    except (ValueError, IndexError, TypeError):
        raise MerchantMisconfigured(f"{name} is not a readable RSA key") from None
    if key.size_in_bits() < RSA_KEY_MIN_BITS:
        raise MerchantMisconfigured(f"{name} is shorter than {RSA_KEY_MIN_BITS} bits")


class AlipayChannel(PaymentChannel):
    def __init__(self, config: MerchantConfig, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        if config.channel != "alipay":
            raise ValueError(f"not an Alipay merchant: {config.channel}")
        if config.sign_type != "RSA2":
            raise ValueError(f"Alipay merchants sign with RSA2, not {config.sign_type}")
        self.config = config
        self.timeout_s = timeout_s
        self._client: AliPay | None = None

    @property
    def _ali(self) -> AliPay:
        """The SDK client, built on first use: a merchant whose keys are missing or weak still has an adapter
        (its notifications are answered `fail`), but nothing is signed or verified with those keys."""
        if self._client is None:
            _rsa_key(f"Alipay app {self.config.app_id}: the Alipay public key", self.config.alipay_public_key)
            _rsa_key(f"Alipay app {self.config.app_id}: the app private key", self.config.app_private_key)
            client = _ShanghaiAliPay(self.config.app_id, app_notify_url=None,
                                     app_private_key_string=self.config.app_private_key,
                                     alipay_public_key_string=self.config.alipay_public_key, sign_type="RSA2",
                                     config=AliPayConfig(timeout=self.timeout_s))
            client._gateway = self.config.api_base_url
            self._client = client
        return self._client

    def _previous_key_verifies(self, signed: dict[str, str], signature: str) -> bool:
        """Whether the Alipay public key being rotated out (set only within its grace period) verifies it."""
        previous = self.config.previous_alipay_public_key
        if not previous:
            return False
        try:
            _rsa_key(f"Alipay app {self.config.app_id}: the previous Alipay public key", previous)
        except MerchantMisconfigured:
            return False
        verifier = _ShanghaiAliPay(self.config.app_id, app_notify_url=None,
                                   app_private_key_string=self.config.app_private_key,
                                   alipay_public_key_string=previous, sign_type="RSA2")
        return verifier.verify(dict(signed), signature)

    def call_method(self, method: str, biz_content: dict) -> dict:
        """A gateway method without a helper of its own (signed request, verified answer), e.g. a template
        message; a code other than 10000 raises ChannelRejected or ChannelUnavailable."""
        return _call(self._ali.server_api, method, biz_content)

    # --- login ------------------------------------------------------------
    def login(self, code: str) -> LoginIdentity:
        try:
            answer = _call(self._ali.server_api, "alipay.system.oauth.token", grant_type="authorization_code",
                           code=code)
        except ChannelRejected as exc:
            if exc.code in _INVALID_LOGIN_SUB_CODES:
                raise ChannelRejected("invalid_code", exc.message) from exc
            raise
        user = answer.get("user_id") or answer.get("open_id")
        if not user:
            raise InvalidResponse("oauth.token answered without user_id or open_id")
        return LoginIdentity(openid=user, unionid=None)

    # --- payments ---------------------------------------------------------
    def create_payment(self, out_trade_no: str, amount_fen: int, description: str, payer_id: str,
                       notify_url: str, expires_at: datetime, client_ip: str) -> PrepayResult:
        if expires_at.tzinfo is None:
            raise ValueError("expires_at must be an aware datetime")
        # A user_id is 16 digits starting 2088; anything else is the newer per-app open_id.
        payer = {"buyer_id": payer_id} if payer_id.startswith("2088") and len(payer_id) == 16 else {
            "buyer_open_id": payer_id}
        answer = _call(self._ali.api_alipay_trade_create, subject=description, out_trade_no=out_trade_no,
                       total_amount=fen_to_yuan(amount_fen), notify_url=notify_url, product_code="JSAPI_PAY",
                       time_expire=expires_at.astimezone(SHANGHAI).strftime(ALIPAY_TIME), **payer)
        if not answer.get("trade_no"):
            raise InvalidResponse("trade.create answered without a trade_no")
        return PrepayResult(out_trade_no=out_trade_no, trade_no=answer["trade_no"])

    def query_payment(self, out_trade_no: str) -> TradeQueryResult:
        try:
            answer = _call(self._ali.api_alipay_trade_query, out_trade_no=out_trade_no)
        except ChannelRejected as exc:
            if exc.code == "ACQ.TRADE_NOT_EXIST":
                return TradeQueryResult(out_trade_no, TradeState.NOT_FOUND, raw_state=exc.code)
            raise
        return _trade_result(answer, out_trade_no)

    def find_payment(self, channel_trade_no: str) -> TradeQueryResult | None:
        try:
            answer = _call(self._ali.api_alipay_trade_query, trade_no=channel_trade_no)
        except ChannelRejected as exc:
            if exc.code == "ACQ.TRADE_NOT_EXIST":
                return None
            raise
        if not answer.get("out_trade_no"):
            raise InvalidResponse("trade.query answered without an out_trade_no")
        return _trade_result(answer, answer["out_trade_no"])

    def close_payment(self, out_trade_no: str) -> None:
        try:
            _call(self._ali.api_alipay_trade_close, out_trade_no=out_trade_no)
        except ChannelRejected as exc:
            # TRADE_STATUS_ERROR is Alipay's only answer for "cannot close"; the trade's state says why.
            if exc.code == "ACQ.TRADE_STATUS_ERROR" and self.query_payment(out_trade_no).state in (
                    TradeState.PAID, TradeState.REFUNDED):
                raise AlreadyPaid(exc.code, exc.message) from exc
            raise

    # --- refunds ----------------------------------------------------------
    def refund(self, out_trade_no: str, out_refund_no: str, total_fen: int, refund_fen: int, reason: str,
               notify_url: str | None) -> RefundResult:
        """Alipay refunds synchronously and notifies the trade's own notify_url; `notify_url` is not used."""
        answer = _call(self._ali.api_alipay_trade_refund, refund_amount=fen_to_yuan(refund_fen),
                       out_trade_no=out_trade_no, out_request_no=out_refund_no, refund_reason=reason or None)
        if answer.get("fund_change") == "Y":
            state = RefundState.SUCCEEDED
        else:
            # N: no money moved by this call, as on a repeat. Alipay's advice: ask whether the refund exists.
            found = self.query_refund(out_trade_no, out_refund_no).state
            state = RefundState.PROCESSING if found is RefundState.NOT_FOUND else found
        with reading_answer("trade.refund"):
            refund_total_fen = _fen(answer.get("refund_fee"))
        return RefundResult(out_refund_no=out_refund_no, channel_refund_id=None, amount_fen=refund_fen, state=state,
                            refund_total_fen=refund_total_fen)

    def query_refund(self, out_trade_no: str, out_refund_no: str) -> RefundQueryResult:
        try:
            answer = _call(self._ali.server_api, "alipay.trade.fastpay.refund.query",
                           {"out_trade_no": out_trade_no, "out_request_no": out_refund_no,
                            "query_options": ["gmt_refund_pay"]})
        except ChannelRejected as exc:
            if exc.code == "ACQ.TRADE_NOT_EXIST":
                return RefundQueryResult(out_trade_no, out_refund_no, RefundState.NOT_FOUND, raw_status=exc.code)
            raise
        raw_status = answer.get("refund_status") or ""
        # Alipay: no refund_amount means no such refund; refund_status empty or REFUND_SUCCESS means refunded.
        if not answer.get("refund_amount"):
            state = RefundState.NOT_FOUND
        elif raw_status in ("", "REFUND_SUCCESS"):
            state = RefundState.SUCCEEDED
        else:
            state = RefundState.PROCESSING
        with reading_answer("fastpay.refund.query"):
            return RefundQueryResult(out_trade_no=out_trade_no, out_refund_no=out_refund_no, state=state,
                                     raw_status=raw_status, amount_fen=_fen(answer.get("refund_amount")),
                                     succeeded_at=_time(answer.get("gmt_refund_pay")))

    # --- notifications ----------------------------------------------------
    @staticmethod
    def _form(body: bytes) -> dict[str, str]:
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
        except (UnicodeDecodeError, ValueError) as exc:
            raise InvalidNotification(f"malformed Alipay notification: {exc}") from exc
        fields = dict(pairs)
        if len(fields) != len(pairs):
            raise InvalidNotification("malformed Alipay notification: repeated fields")
        return fields

    @staticmethod
    def _is_refund(fields: dict[str, str]) -> bool:
        return bool(fields.get("out_biz_no") or fields.get("gmt_refund"))

    def notification_kind(self, body: bytes, content_type: str | None = None) -> NotificationKind:
        fields = self._form(body)
        if self._is_refund(fields):
            return NotificationKind.REFUND
        if fields.get("trade_status") in _PAID_STATUSES:
            return NotificationKind.PAYMENT
        return NotificationKind.OTHER

    def verify_notification(self, body: bytes, content_type: str | None = None) -> None:
        self._verified(body)

    def _verified(self, body: bytes) -> dict[str, str]:
        fields = self._form(body)
        signature = fields.get("sign")
        if not signature:
            raise InvalidNotification("unsigned notification")
        if fields.get("sign_type", "RSA2") != "RSA2":
            raise InvalidNotification(f"unexpected sign_type {fields['sign_type']!r}")
        signed = {key: value for key, value in fields.items() if key not in ("sign", "sign_type")}
        try:
            client = self._ali
        except MerchantMisconfigured as exc:
            raise InvalidNotification(f"refusing to verify: {exc}") from None
        try:
            valid = client.verify(signed, signature) or self._previous_key_verifies(signed, signature)
        except (ValueError, TypeError) as exc:
            raise InvalidNotification(f"unreadable signature: {exc}") from exc
        if not valid:
            raise InvalidNotification("bad signature")
        if fields.get("app_id") != self.config.app_id:
            raise InvalidNotification(f"app_id {fields.get('app_id')!r} is not this merchant's")
        return fields

    def parse_payment_notification(self, body: bytes, content_type: str | None = None) -> PaymentNotification:
        fields = self._verified(body)
        if fields.get("trade_status") not in _PAID_STATUSES or self._is_refund(fields):
            raise InvalidNotification(f"not a payment notification (trade_status {fields.get('trade_status')!r})")
        try:
            amount_fen = yuan_to_fen(fields["total_amount"])
            paid_at = _time(fields.get("gmt_payment"))
            out_trade_no, trade_no = fields["out_trade_no"], fields["trade_no"]
        except (KeyError, ValueError) as exc:
            raise InvalidNotification(f"malformed payment notification: {exc!r}") from exc
        return PaymentNotification(out_trade_no=out_trade_no, channel_trade_no=trade_no, amount_fen=amount_fen,
                                   paid_at=paid_at, app_id=fields["app_id"], mch_id=None,
                                   payer_id=fields.get("buyer_id") or fields.get("buyer_open_id"), raw=fields)

    def parse_refund_notification(self, body: bytes, content_type: str | None = None) -> RefundNotification:
        fields = self._verified(body)
        if not self._is_refund(fields):
            raise InvalidNotification("not a refund notification")
        try:
            refund_total_fen = yuan_to_fen(fields["refund_fee"])
            payment_total_fen = _fen(fields.get("total_amount"))
            succeeded_at = _time(fields.get("gmt_refund"))
            out_trade_no = fields["out_trade_no"]
        except (KeyError, ValueError) as exc:
            raise InvalidNotification(f"malformed refund notification: {exc!r}") from exc
        return RefundNotification(out_trade_no=out_trade_no, out_refund_no=fields.get("out_biz_no") or None,
                                  channel_trade_no=fields.get("trade_no"), channel_refund_id=None, amount_fen=None,
                                  refund_total_fen=refund_total_fen, state=RefundState.SUCCEEDED,
                                  raw_status=fields.get("trade_status", ""), succeeded_at=succeeded_at, raw=fields,
                                  payment_total_fen=payment_total_fen)

    def notification_ack(self, ok: bool) -> tuple[bytes, str]:
        return (b"success" if ok else b"fail"), "text/plain; charset=utf-8"

    # --- bills ------------------------------------------------------------
    def download_bill(self, bill_date: date, dest: str | Path) -> Path | None:
        try:
            answer = _call(self._ali.server_api, "alipay.data.dataservice.bill.downloadurl.query",
                           {"bill_type": "trade", "bill_date": bill_date.isoformat()})
        except ChannelRejected as exc:
            if exc.code == "isp.bill_not_exist":
                return None
            raise
        url = answer.get("bill_download_url")
        if not url:
            raise InvalidResponse("downloadurl.query answered without a bill_download_url")
        try:
            with requests.get(url, stream=True, timeout=self.timeout_s) as res:
                if res.status_code >= 400:
                    raise http_error(res.status_code, "the bill download")
                return stream_to_file(res.iter_content(BILL_CHUNK), Path(dest))
        except requests.RequestException as exc:
            raise ChannelUnavailable(f"bill download failed: {exc}") from exc


def _trade_result(answer: dict, out_trade_no: str) -> TradeQueryResult:
    raw_state = answer.get("trade_status") or ""
    with reading_answer("trade.query"):
        paid_at, amount_fen = _time(answer.get("send_pay_date")), _fen(answer.get("total_amount"))
    if raw_state in _PAID_STATUSES:
        state = TradeState.PAID
    elif raw_state == "WAIT_BUYER_PAY":
        state = TradeState.PENDING
    elif raw_state == "TRADE_CLOSED":
        # A full refund closes a trade too; only a paid trade has a send_pay_date.
        state = TradeState.REFUNDED if paid_at else TradeState.CLOSED
    else:
        raise InvalidResponse(f"trade.query answered an unknown trade_status {raw_state!r}")
    return TradeQueryResult(out_trade_no=out_trade_no, state=state, raw_state=raw_state, amount_fen=amount_fen,
                            channel_trade_no=answer.get("trade_no"), paid_at=paid_at,
                            payer_id=answer.get("buyer_user_id") or answer.get("buyer_open_id"))
