"""Payment channels behind one interface; adapters return our own dataclasses, never SDK objects."""
from __future__ import annotations

from .alipay import AlipayChannel
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
from .wechat_pay import WeChatPayChannel


def channel_for(config: MerchantConfig, timeout_s: float = 10.0) -> PaymentChannel:
    """The production adapter of a merchant account; `timeout_s` bounds every call to the channel."""
    if config.channel == "wechat":
        return WeChatPayChannel(config, timeout_s)
    if config.channel == "alipay":
        return AlipayChannel(config, timeout_s)
    raise ValueError(f"unknown payment channel {config.channel!r}")


__all__ = [
    "AlipayChannel", "AlreadyPaid", "BadAnswerSignature", "ChannelError", "ChannelRejected", "ChannelUnavailable",
    "InvalidNotification", "InvalidResponse", "LoginIdentity", "MerchantConfig", "NotificationKind",
    "PaymentChannel", "PaymentNotification", "PrepayResult", "RefundNotification", "RefundQueryResult",
    "RefundResult", "RefundState", "TradeQueryResult", "TradeState", "WeChatPayChannel", "channel_for",
]
