"""What a channel bill says, in our own terms."""
from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from ..money import yuan_to_fen

# Bills repeat the same few amounts ("0.00", item prices) on most of their rows.
bill_fen = lru_cache(maxsize=8192)(yuan_to_fen)


class BillKind(enum.StrEnum):
    PAYMENT = "payment"
    REFUND = "refund"


# Not frozen: a bill builds up to a million of these, and a frozen dataclass costs five times as much to build.
@dataclass(slots=True)
class BillRow:
    kind: BillKind
    channel_trade_no: str
    out_trade_no: str
    channel_refund_no: str | None
    """WeChat refund id; Alipay refunds have none."""
    out_refund_no: str | None
    amount_fen: int
    """Payments: the order amount. Refunds: the refunded amount, positive."""
    fee_fen: int
    """The channel's fee: positive when charged, negative when handed back on a refund."""
    status: str
    """The channel's own status word (WeChat SUCCESS…; Alipay TRADE_SUCCESS / REFUND_SUCCESS)."""
    occurred_at: datetime
    """Aware, Asia/Shanghai: payment time, or refund time for refunds."""


@dataclass(frozen=True)
class BillTotals:
    """WeChat's trailer: 总交易单数, 应结订单总金额, 退款总金额, 手续费总金额, 订单总金额."""

    count: int
    settlement_total_fen: int
    refund_total_fen: int
    fee_total_fen: int
    order_total_fen: int


@dataclass(frozen=True)
class AlipayBillTotals:
    """Alipay's `#交易合计` and `#退款合计` lines: row counts and 商家实收 sums (refunds negative)."""

    trade_count: int
    trade_total_fen: int
    refund_count: int
    refund_total_fen: int


class BillError(ValueError):
    """The bill cannot be trusted as given."""


class BillFormatError(BillError):
    """The bill is not in the channel's format: missing columns, a malformed line or amount."""


class BillIntegrityError(BillError):
    """The bill's own totals do not add up to its rows, or the bill is truncated."""


def shanghai_time(text: str) -> datetime:
    """"2024-07-09 10:06:33" (Asia/Shanghai) as an aware datetime."""
    if len(text) != 19 or text[10] != " ":
        raise ValueError(f"not a yyyy-MM-dd HH:mm:ss time: {text!r}")
    return datetime.fromisoformat(text + "+08:00")  # ~7 times faster than .replace(tzinfo=…)
