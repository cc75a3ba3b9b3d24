"""Alipay mini-program template messages (`alipay.open.app.mini.templatemessage.send`) through
python-alipay-sdk's generic signed call (the same RSA2 request and verified answer as the trade methods)."""
from __future__ import annotations

import json

from .alipay import AlipayChannel
from .base import ChannelError, ChannelRejected, ChannelUnavailable, InvalidResponse, MerchantConfig
from .messaging import MessageRefused, MessageSender, MessageSent, MessengerUnavailable

METHOD = "alipay.open.app.mini.templatemessage.send"
NO_SUBSCRIPTION = "REQUEST_IS_OUT_OF_SUBSCRIBE_LIMIT"


def _is_user_id(value: str) -> bool:
    """An Alipay user_id is 16 digits starting 2088; anything else is the newer per-app open_id."""
    return len(value) == 16 and value.startswith("2088") and value.isdigit()


class AlipayMessenger(MessageSender):
    def __init__(self, config: MerchantConfig, timeout_s: float) -> None:
        self.config = config
        self._channel = AlipayChannel(config, timeout_s)

    def send(self, to: str, template_id: str, page: str | None, data: dict[str, dict[str, str]]) -> MessageSent:
        biz = {"to_user_id" if _is_user_id(to) else "to_open_id": to, "user_template_id": template_id,
               "page": page or "", "data": json.dumps(data, ensure_ascii=False, separators=(",", ":"))}
        try:
            self._channel.call_method(METHOD, biz)
        except (ChannelUnavailable, InvalidResponse) as exc:
            # InvalidResponse: an answer we cannot trust; whether it was delivered is unknown, so try again.
            raise MessengerUnavailable(str(exc)) from exc
        except ChannelRejected as exc:
            raise MessageRefused(exc.code, exc.message, no_subscription=exc.code == NO_SUBSCRIPTION) from exc
        except ChannelError as exc:  # a 4xx from the gateway
            raise MessengerUnavailable(str(exc)) from exc
        return MessageSent(None)
