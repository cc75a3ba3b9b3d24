"""An in-memory payment channel for the service tests: the PaymentChannel interface over a ledger of trades and
refunds kept in this process, with outcomes and failures a test scripts. It never reaches a network.

The Runtime is given a `FakeChannels` as its channel factory (app.runtime); every merchant account then gets
a `FakeChannel` over the same ledger, so a test can act as the payer (`pay`), as the channel's support desk
(`refund_outside`), or as an outage (`fail_next`, `refuse_refunds`). Notifications are JSON bodies signed with
the account's API key (HMAC-SHA256), made by `payment_notification` and `refund_notification`. `FakeMessages`
is the Runtime's messenger factory: it keeps the template messages delivered.
"""
from __future__ import annotations

import hashlib
import hmac
import itertools
import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from app.channels.base import (
    AlreadyPaid,
    ChannelError,
    ChannelRejected,
    InvalidNotification,
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
from app.channels.messaging import MessageError, MessageSender, MessageSent


@dataclass
class FakeTrade:
    app_id: str
    out_trade_no: str
    amount_fen: int
    state: TradeState = TradeState.PENDING
    trade_no: str = ""
    paid_at: datetime | None = None


@dataclass
class FakeRefund:
    out_trade_no: str
    out_refund_no: str
    amount_fen: int
    state: RefundState
    refund_id: str
    succeeded_at: datetime | None = None


@dataclass
class FakeChannels:
    """The channels' side of the world, shared by every fake adapter built from it."""

    trades: dict[str, FakeTrade] = field(default_factory=dict)
    refunds: dict[str, FakeRefund] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    """(operation, out_trade_no or code) of every call, in order."""
    refund_state: RefundState = RefundState.SUCCEEDED
    """What a new refund answers: SUCCEEDED at once (Alipay), or PROCESSING (WeChat, settled by a query)."""
    _failures: dict[str, list[ChannelError]] = field(default_factory=lambda: defaultdict(list))
    _refusal: str | None = None
    _numbers: itertools.count = field(default_factory=lambda: itertools.count(1))

    def __call__(self, config: MerchantConfig, _settings=None) -> FakeChannel:
        return FakeChannel(self, config)

    # --- what a test does -------------------------------------------------------------------------------------
    def pay(self, out_trade_no: str, at: datetime | None = None) -> str:
        """The payer pays the trade (even one we closed: a late payment); returns the channel's trade number."""
        trade = self.trades[out_trade_no]
        trade.state, trade.paid_at = TradeState.PAID, at or datetime.now(UTC)
        trade.trade_no = trade.trade_no or self._trade_no()
        return trade.trade_no

    def fail_next(self, operation: str, error: ChannelError, times: int = 1) -> None:
        """The next `times` calls of `operation` (create_payment, query_payment, refund, …) raise `error`."""
        self._failures[operation].extend([error] * times)

    def refuse_refunds(self, code: str | None) -> None:
        """Every refund is refused with the channel's `code` from now on (None: accepted again)."""
        self._refusal = code

    def refunds_of(self, out_trade_no: str) -> list[FakeRefund]:
        return [r for r in self.refunds.values() if r.out_trade_no == out_trade_no]

    def settle_refund(self, out_refund_no: str, state: RefundState = RefundState.SUCCEEDED) -> None:
        refund = self.refunds[out_refund_no]
        refund.state = state
        refund.succeeded_at = datetime.now(UTC) if state == RefundState.SUCCEEDED else None

    def payment_notification(self, config: MerchantConfig, out_trade_no: str) -> bytes:
        trade = self.trades[out_trade_no]
        return _signed(config, {"kind": "payment", "app_id": config.app_id, "out_trade_no": out_trade_no,
                                "trade_no": trade.trade_no, "amount_fen": trade.amount_fen,
                                "paid_at": trade.paid_at.isoformat() if trade.paid_at else None})

    def refund_notification(self, config: MerchantConfig, out_refund_no: str) -> bytes:
        refund = self.refunds[out_refund_no]
        trade = self.trades[refund.out_trade_no]
        return _signed(config, {"kind": "refund", "app_id": config.app_id, "out_trade_no": refund.out_trade_no,
                                "trade_no": trade.trade_no, "out_refund_no": out_refund_no,
                                "refund_id": refund.refund_id, "amount_fen": refund.amount_fen,
                                "total_fen": trade.amount_fen, "state": refund.state.value,
                                "succeeded_at": refund.succeeded_at.isoformat() if refund.succeeded_at else None})

    # --- what the adapters use --------------------------------------------------------------------------------
    def _call(self, operation: str, subject: str) -> None:
        self.calls.append((operation, subject))
        if self._failures[operation]:
            raise self._failures[operation].pop(0)

    def _trade_no(self) -> str:
        """Shaped like a WeChat transaction id (28 digits, 42…), unique within this world."""
        return f"42{id(self) % 10**8:08d}{next(self._numbers):018d}"


def _signature(config: MerchantConfig, payload: bytes) -> str:
    return hmac.new((config.api_key or config.app_private_key or "").encode(), payload, hashlib.sha256).hexdigest()


def _signed(config: MerchantConfig, document: dict) -> bytes:
    payload = json.dumps(document, sort_keys=True).encode()
    return json.dumps({"payload": payload.decode(), "sign": _signature(config, payload)}).encode()


class FakeChannel(PaymentChannel):
    def __init__(self, world: FakeChannels, config: MerchantConfig) -> None:
        self.world = world
        self.config = config

    def login(self, code: str) -> LoginIdentity:
        self.world._call("login", code)
        if not code:
            raise ChannelRejected("invalid_code", "the login code is empty")
        return LoginIdentity(openid=f"{self.config.channel}-{code}")

    def create_payment(self, out_trade_no: str, amount_fen: int, description: str, payer_id: str,
                       notify_url: str, expires_at: datetime, client_ip: str) -> PrepayResult:
        self.world._call("create_payment", out_trade_no)
        trade = self.world.trades.setdefault(out_trade_no, FakeTrade(self.config.app_id, out_trade_no, amount_fen))
        if trade.state == TradeState.PAID:
            raise ChannelRejected("ORDERPAID", "the trade is paid")
        return PrepayResult(out_trade_no, prepay_id=f"prepay-{out_trade_no}", pay_params={"fake": out_trade_no},
                            trade_no=trade.trade_no or None)

    def query_payment(self, out_trade_no: str) -> TradeQueryResult:
        self.world._call("query_payment", out_trade_no)
        trade = self.world.trades.get(out_trade_no)
        if trade is None:
            return TradeQueryResult(out_trade_no, TradeState.NOT_FOUND, "NOTEXIST")
        return TradeQueryResult(out_trade_no, trade.state, trade.state.value.upper(), trade.amount_fen,
                                trade.trade_no or None, trade.paid_at)

    def find_payment(self, channel_trade_no: str) -> TradeQueryResult | None:
        self.world._call("find_payment", channel_trade_no)
        trade = next((t for t in self.world.trades.values()
                      if t.trade_no == channel_trade_no and t.app_id == self.config.app_id), None)
        return None if trade is None else self.query_payment(trade.out_trade_no)

    def close_payment(self, out_trade_no: str) -> None:
        self.world._call("close_payment", out_trade_no)
        trade = self.world.trades.get(out_trade_no)
        if trade is not None and trade.state == TradeState.PAID:
            raise AlreadyPaid("ORDERPAID", "the payer paid this trade")
        if trade is not None:
            trade.state = TradeState.CLOSED

    def refund(self, out_trade_no: str, out_refund_no: str, total_fen: int, refund_fen: int, reason: str,
               notify_url: str | None) -> RefundResult:
        self.world._call("refund", out_trade_no)
        known = self.world.refunds.get(out_refund_no)
        if known is not None:
            return RefundResult(out_refund_no, known.refund_id, known.amount_fen, known.state)
        if self.world._refusal:
            raise ChannelRejected(self.world._refusal, "the channel refused the refund")
        trade = self.world.trades.get(out_trade_no)
        if trade is None or trade.state not in (TradeState.PAID, TradeState.REFUNDED):
            raise ChannelRejected("TRADE_NOT_PAID", f"{out_trade_no} is not a paid trade")
        refunded = sum(r.amount_fen for r in self.world.refunds_of(out_trade_no) if r.state != RefundState.FAILED)
        if total_fen != trade.amount_fen or refunded + refund_fen > trade.amount_fen:
            raise ChannelRejected("NOTENOUGH", "more than the trade's amount")
        state = self.world.refund_state
        refund = FakeRefund(out_trade_no, out_refund_no, refund_fen, state, f"RF{self.world._trade_no()}",
                            datetime.now(UTC) if state == RefundState.SUCCEEDED else None)
        self.world.refunds[out_refund_no] = refund
        return RefundResult(out_refund_no, refund.refund_id, refund_fen, state)

    def query_refund(self, out_trade_no: str, out_refund_no: str) -> RefundQueryResult:
        self.world._call("query_refund", out_refund_no)
        refund = self.world.refunds.get(out_refund_no)
        if refund is None or refund.out_trade_no != out_trade_no:
            return RefundQueryResult(out_trade_no, out_refund_no, RefundState.NOT_FOUND, "NOTEXIST")
        return RefundQueryResult(out_trade_no, out_refund_no, refund.state, refund.state.value.upper(),
                                 refund.refund_id, refund.amount_fen, refund.succeeded_at)

    # --- notifications ----------------------------------------------------------------------------------------
    def _verified(self, body: bytes) -> dict:
        try:
            envelope = json.loads(body)
            payload = envelope["payload"].encode()
            document = json.loads(payload)
        except (ValueError, KeyError, TypeError, AttributeError):
            raise InvalidNotification("not a fake notification") from None
        if not hmac.compare_digest(_signature(self.config, payload), str(envelope.get("sign"))):
            raise InvalidNotification("bad signature")
        if document.get("app_id") != self.config.app_id:
            raise InvalidNotification("another merchant's notification")
        return document

    def notification_kind(self, body: bytes, content_type: str | None = None) -> NotificationKind:
        try:
            kind = json.loads(json.loads(body)["payload"])["kind"]
        except (ValueError, KeyError, TypeError):
            raise InvalidNotification("not a fake notification") from None
        return NotificationKind.PAYMENT if kind == "payment" else NotificationKind.REFUND

    def verify_notification(self, body: bytes, content_type: str | None = None) -> None:
        self._verified(body)

    def parse_payment_notification(self, body: bytes, content_type: str | None = None) -> PaymentNotification:
        note = self._verified(body)
        paid_at = datetime.fromisoformat(note["paid_at"]) if note.get("paid_at") else None
        return PaymentNotification(note["out_trade_no"], note["trade_no"], note["amount_fen"], paid_at,
                                   note["app_id"], None, None, note)

    def parse_refund_notification(self, body: bytes, content_type: str | None = None) -> RefundNotification:
        note = self._verified(body)
        succeeded_at = datetime.fromisoformat(note["succeeded_at"]) if note.get("succeeded_at") else None
        return RefundNotification(note["out_trade_no"], note["out_refund_no"], note["trade_no"], note["refund_id"],
                                  note["amount_fen"], None, RefundState(note["state"]), note["state"].upper(),
                                  succeeded_at, note, payment_total_fen=note["total_fen"])

    def notification_ack(self, ok: bool) -> tuple[bytes, str]:
        return (b"success" if ok else b"fail"), "text/plain"

    def download_bill(self, bill_date: date, dest: str | Path) -> Path | None:
        self.world._call("download_bill", bill_date.isoformat())
        return None


# --- template messages ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FakeMessage:
    app_id: str
    to: str
    template_id: str
    page: str | None
    data: dict


@dataclass
class FakeMessages:
    """The channels' message delivery, shared by every fake sender built from it: what was delivered, and the
    failures a test scripts (`fail_next`: an outage, or a refusal such as no subscription left)."""

    delivered: list[FakeMessage] = field(default_factory=list)
    attempts: int = 0
    _failures: list[MessageError] = field(default_factory=list)

    def __call__(self, config: MerchantConfig, _settings=None, _redis=None) -> FakeMessenger:
        return FakeMessenger(self, config)

    def fail_next(self, error: MessageError, times: int = 1) -> None:
        self._failures.extend([error] * times)

    def to(self, user: str) -> list[FakeMessage]:
        return [m for m in self.delivered if m.to == user]


class FakeMessenger(MessageSender):
    def __init__(self, world: FakeMessages, config: MerchantConfig) -> None:
        self.world = world
        self.config = config

    def send(self, to: str, template_id: str, page: str | None, data: dict[str, dict[str, str]]) -> MessageSent:
        self.world.attempts += 1
        if self.world._failures:
            raise self.world._failures.pop(0)
        self.world.delivered.append(FakeMessage(self.config.app_id, to, template_id, page, data))
        return MessageSent(f"FAKEMSG{len(self.world.delivered):06d}")
