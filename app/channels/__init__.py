"""Payment channels behind one interface; adapters return our own dataclasses, never SDK objects."""
from __future__ import annotations

from .alipay import AlipayChannel
from .alipay_messages import AlipayMessenger
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
from .messaging import MessageRefused, MessageSender, MessageSent, MessengerUnavailable
from .wechat_messages import WeChatMessenger
from .wechat_pay import WeChatPayChannel


def channel_for(config: MerchantConfig, timeout_s: float = 10.0) -> PaymentChannel:
    """The production adapter of a merchant account; `timeout_s` bounds every call to the channel."""
    if config.channel == "wechat":
        return WeChatPayChannel(config, timeout_s)
    if config.channel == "alipay":
        return AlipayChannel(config, timeout_s)
    raise ValueError(f"unknown payment channel {config.channel!r}")


def messenger_for(config: MerchantConfig, redis, token_prefix: str, timeout_s: float = 10.0) -> MessageSender:
    """The production sender of a channel app's template messages; WeChat keeps its access token in `redis`
    under `token_prefix`, shared by every process."""
    if config.channel == "wechat":
        return WeChatMessenger(config, redis, token_prefix, timeout_s)
    if config.channel == "alipay":
        return AlipayMessenger(config, timeout_s)
    raise ValueError(f"unknown channel {config.channel!r}")


__all__ = [
    "AlipayChannel", "AlipayMessenger", "AlreadyPaid", "BadAnswerSignature", "channel_for", "ChannelError",
    "ChannelRejected", "ChannelUnavailable", "InvalidNotification", "InvalidResponse", "LoginIdentity",
    "MerchantConfig", "MessageRefused", "MessageSender", "MessageSent", "messenger_for", "MessengerUnavailable",
    "NotificationKind", "PaymentChannel", "PaymentNotification", "PrepayResult", "RefundNotification",
    "RefundQueryResult", "RefundResult", "RefundState", "TradeQueryResult", "TradeState", "WeChatMessenger",
    "WeChatPayChannel",
]
