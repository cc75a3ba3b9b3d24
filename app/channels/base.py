"""The payment channel interface: our own value types and errors, never SDK objects.

Every adapter speaks integer fen and aware datetimes; the channel's own codes are kept
(`raw_state`, `raw_status`, `ChannelRejected.code`) so that services and finance can see
exactly what the channel said.
"""
from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path


@dataclass(frozen=True)
class MerchantConfig:
    """One merchant account on one channel.

    WeChat: `app_id` is the mini-program appid, `api_base_url` is `<host>/wxpay/` (trailing slash)
    and `login_base_url` the code2session host `<host>/wxlogin/`.
    Alipay: `api_base_url` is the full gateway URL `<host>/alipay/gateway.do`.
    `clinic_code` is the notify path's segment: the clinic's code, or `platform` for the platform's own apps.
    WeChat's refund certificate comes as PEM text (`cert_pem`, `key_pem`; written to private files when the
    adapter is built) or as paths. `previous_api_key` / `previous_alipay_public_key` are keys being rotated out:
    notifications that the current key does not verify are tried with them (set only within the grace period).
    """

    channel: str
    clinic_code: str
    app_id: str
    mch_id: str | None
    api_key: str | None = field(repr=False)
    app_secret: str | None = field(repr=False)
    sign_type: str
    app_private_key: str | None = field(repr=False)
    alipay_public_key: str | None = field(repr=False)
    api_base_url: str
    login_base_url: str | None
    mch_cert_path: str | None = None
    mch_key_path: str | None = None
    cert_pem: str | None = field(default=None, repr=False)
    key_pem: str | None = field(default=None, repr=False)
    previous_api_key: str | None = field(default=None, repr=False)
    previous_alipay_public_key: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class LoginIdentity:
    openid: str
    """WeChat openid; Alipay user_id (2088…) or open_id."""
    unionid: str | None = None


@dataclass(frozen=True)
class PrepayResult:
    out_trade_no: str
    prepay_id: str | None = None
    """WeChat only."""
    pay_params: dict | None = None
    """WeChat only: the wx.requestPayment arguments timeStamp, nonceStr, package, signType, paySign."""
    trade_no: str | None = None
    """Alipay only: the tradeNO for my.tradePay."""


class TradeState(enum.Enum):
    PENDING = "pending"
    PAID = "paid"
    CLOSED = "closed"
    REFUNDED = "refunded"
    """Paid, then refunded (WeChat REFUND; Alipay TRADE_CLOSED after a payment)."""
    FAILED = "failed"
    NOT_FOUND = "not_found"


class RefundState(enum.Enum):
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    NOT_FOUND = "not_found"
    """The channel has no refund under this number: retrying with the same number is safe."""


class NotificationKind(enum.Enum):
    PAYMENT = "payment"
    REFUND = "refund"
    OTHER = "other"
    """Signed but carrying nothing to act on (e.g. Alipay's TRADE_CLOSED of an unpaid trade)."""


@dataclass(frozen=True)
class TradeQueryResult:
    out_trade_no: str
    state: TradeState
    raw_state: str
    amount_fen: int | None = None
    channel_trade_no: str | None = None
    paid_at: datetime | None = None
    """Aware, UTC."""
    payer_id: str | None = None


@dataclass(frozen=True)
class RefundResult:
    out_refund_no: str
    channel_refund_id: str | None
    """WeChat refund_id; Alipay has none (a refund is its trade plus out_request_no)."""
    amount_fen: int
    state: RefundState
    refund_total_fen: int | None = None
    """Alipay only: the trade's cumulative refunded amount after this refund."""


@dataclass(frozen=True)
class RefundQueryResult:
    out_trade_no: str
    out_refund_no: str
    state: RefundState
    raw_status: str
    channel_refund_id: str | None = None
    amount_fen: int | None = None
    succeeded_at: datetime | None = None


@dataclass(frozen=True)
class PaymentNotification:
    out_trade_no: str
    channel_trade_no: str
    amount_fen: int
    paid_at: datetime | None
    app_id: str
    mch_id: str | None
    payer_id: str | None
    raw: dict


@dataclass(frozen=True)
class RefundNotification:
    out_trade_no: str
    out_refund_no: str | None
    """Alipay sends it as out_biz_no, which may be absent: query the refunds then."""
    channel_trade_no: str | None
    channel_refund_id: str | None
    amount_fen: int | None
    """WeChat: this refund's amount. Alipay does not say (only the cumulative refund_fee)."""
    refund_total_fen: int | None
    """Alipay: the trade's cumulative refunded amount. WeChat does not say."""
    state: RefundState
    raw_status: str
    succeeded_at: datetime | None
    raw: dict
    payment_total_fen: int | None = None
    """The refunded payment's amount, as the channel states it (WeChat total_fee, Alipay total_amount)."""


class ChannelError(Exception):
    """Something went wrong talking to a channel."""


class ChannelUnavailable(ChannelError):
    """Network error, timeout, 5xx or the channel's SYSTEMERROR: send the same request again later."""


class MerchantMisconfigured(ChannelUnavailable):
    """The merchant account's key is missing, short or unreadable: nothing is signed with it and nothing it
    would verify is trusted. Retried like an outage, since nothing left for the channel and a corrected
    key lets the same request go."""


class InvalidResponse(ChannelError):
    """The channel's answer failed signature verification or could not be read: its outcome is unknown,
    so query before acting on it."""


class BadAnswerSignature(InvalidResponse):
    """The channel's answer does not verify with the key we hold for it (the WeChat API key or sign type, the
    Alipay public key): we cannot trust it."""


class ChannelRejected(ChannelError):
    """A definitive refusal, with the channel's own code (NOTENOUGH, ACQ.TRADE_HAS_FINISHED, invalid_code…)."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message


class AlreadyPaid(ChannelRejected):
    """close_payment on a trade the payer has paid: never treat it as closed."""


class InvalidNotification(ChannelError):
    """A notification that must not be trusted: bad signature, another merchant's, or malformed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PaymentChannel(ABC):
    config: MerchantConfig

    @abstractmethod
    def login(self, code: str) -> LoginIdentity:
        """Exchange a mini-program login code; ChannelRejected('invalid_code') when the code is bad."""

    @abstractmethod
    def create_payment(self, out_trade_no: str, amount_fen: int, description: str, payer_id: str,
                       notify_url: str, expires_at: datetime, client_ip: str) -> PrepayResult:
        ...

    @abstractmethod
    def query_payment(self, out_trade_no: str) -> TradeQueryResult:
        ...

    @abstractmethod
    def find_payment(self, channel_trade_no: str) -> TradeQueryResult | None:
        """The trade the channel numbered `channel_trade_no` on this merchant account (its out_trade_no, state,
        amount), or None when it has none: what support asks when a patient reads out the number on their bill
        and we have not heard of it yet."""

    @abstractmethod
    def close_payment(self, out_trade_no: str) -> None:
        """Close an unpaid trade (closing a closed one is fine); AlreadyPaid if the payer paid."""

    @abstractmethod
    def refund(self, out_trade_no: str, out_refund_no: str, total_fen: int, refund_fen: int, reason: str,
               notify_url: str | None) -> RefundResult:
        """Idempotent per out_refund_no: repeating it never refunds twice."""

    @abstractmethod
    def query_refund(self, out_trade_no: str, out_refund_no: str) -> RefundQueryResult:
        ...

    @abstractmethod
    def notification_kind(self, body: bytes, content_type: str | None = None) -> NotificationKind:
        """Which parse_* method fits this body. Unverified: the parse_* methods verify."""

    @abstractmethod
    def verify_notification(self, body: bytes, content_type: str | None = None) -> None:
        """Verify the signature and merchant of any notification, whatever it carries; InvalidNotification
        when it must not be trusted (also when this merchant's key is missing or short)."""

    @abstractmethod
    def parse_payment_notification(self, body: bytes, content_type: str | None = None) -> PaymentNotification:
        """Verify the signature and that the notification is for this merchant; the caller checks the amount
        against its own record."""

    @abstractmethod
    def parse_refund_notification(self, body: bytes, content_type: str | None = None) -> RefundNotification:
        ...

    @abstractmethod
    def notification_ack(self, ok: bool) -> tuple[bytes, str]:
        """The reply body and content type the channel expects; ok=False asks it to send again."""

    @abstractmethod
    def download_bill(self, bill_date: date, dest: str | Path) -> Path | None:
        """Stream the day's raw bill to `dest` (WeChat ALL bill text; Alipay zip); None when there is no bill."""
