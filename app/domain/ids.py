"""Order, payment and refund numbers: short, unique, and readable by a person at the counter."""
from __future__ import annotations

import secrets
from datetime import datetime, timedelta, timezone

SHANGHAI = timezone(timedelta(hours=8))
_PREFIX = {"booking": "B", "topup": "T", "visit_bill": "V", "refund": "R"}


def new_business_no(kind: str, now: datetime) -> str:
    """B20261122103000 + 6 random digits: the Shanghai time it was made, then entropy (21 chars)."""
    stamp = now.astimezone(SHANGHAI).strftime("%Y%m%d%H%M%S")
    return f"{_PREFIX[kind]}{stamp}{secrets.randbelow(10**6):06d}"


def out_trade_no(order_no: str, attempt_seq: int) -> str:
    """What the channel sees for the n-th payment attempt of an order (at most 32 characters)."""
    return f"{order_no}P{attempt_seq:02d}"


def refund_no(out_trade_no_: str, refund_seq: int) -> str:
    """Deterministic per payment: the n-th refund of a payment always has the same number."""
    return f"{out_trade_no_}R{refund_seq:02d}"
