"""Messages to a mini-program user through their channel: our own interface, results and errors.

WeChat sends subscribe messages (`subscribeMessage.send`, app/channels/wechat_messages.py), Alipay
mini-program template messages (`alipay.open.app.mini.templatemessage.send`, app/channels/alipay_messages.py).
A sender is built by the Runtime (`rt.messenger(config)`) from a channel app's MerchantConfig.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass


@dataclass(frozen=True)
class MessageSent:
    msg_id: str | None
    """The channel's id of the message (WeChat msgid); Alipay gives none."""


class MessageError(Exception):
    """Something went wrong sending a message."""


class MessengerUnavailable(MessageError):
    """Network error, timeout, 5xx, a busy or rate-limited channel, or an app whose secret or keys do not work
    (fixing them lets the same message go): send it again later."""


class MessageRefused(MessageError):
    """The channel will not deliver this message, now or later, with the channel's own code."""

    def __init__(self, code: str, message: str = "", *, no_subscription: bool = False) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message
        self.no_subscription = no_subscription
        """The user has no subscription left for the template (WeChat 43101, Alipay
        REQUEST_IS_OUT_OF_SUBSCRIBE_LIMIT): our count of their allowance is wrong and becomes 0."""


class MessageSender(ABC):
    @abstractmethod
    def send(self, to: str, template_id: str, page: str | None, data: dict[str, dict[str, str]]) -> MessageSent:
        """Send one template message to the user `to` (WeChat openid; Alipay user_id or open_id).

        `data` is `{keyword: {"value": text}}`. Raises MessageRefused or MessengerUnavailable."""
