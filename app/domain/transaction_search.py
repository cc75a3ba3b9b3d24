"""What a person typed into the transaction search, recognised by its shape.

Our own numbers have fixed patterns (app.domain.ids): an order number is a capital letter and 20 digits
(`T20261122103000123456`; `R` + 20 digits is a refund request), a payment's out_trade_no is the order number
and `P` + 2 digits, a refund number the out_trade_no and `R` + 2 digits. Four digits are the last four of a
patient's phone, eleven digits starting 1[3-9] a whole mobile number. Anything else is a number someone else
chose: the channel's trade number (WeChat's 28 digits starting 42…, Alipay's starting with the date), the
channel's refund id, or a HIS card number. Those cannot be told apart by shape alone (a card number may be
all digits too), so one query looks for each; every lookup is an indexed equality.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class SearchShape(StrEnum):
    ORDER_NO = "order_no"
    REFUND_REQUEST_NO = "refund_request_no"
    OUT_TRADE_NO = "out_trade_no"
    REFUND_NO = "refund_no"
    PHONE_LAST4 = "phone_last4"
    PHONE = "phone"
    REFERENCE = "reference"
    """A channel trade or refund number, or a card number."""


_PATTERNS = (
    (SearchShape.REFUND_NO, re.compile(r"[A-Z][0-9]{20}P[0-9]{2}R[0-9]{2}")),
    (SearchShape.OUT_TRADE_NO, re.compile(r"[A-Z][0-9]{20}P[0-9]{2}")),
    (SearchShape.REFUND_REQUEST_NO, re.compile(r"R[0-9]{20}")),
    (SearchShape.ORDER_NO, re.compile(r"[A-Z][0-9]{20}")),
)
_PHONE_LAST4 = re.compile(r"[0-9]{4}")
_PHONE = re.compile(r"1[3-9][0-9]{9}")
# What a reference may be: printable ASCII without spaces, as the HIS's and the channels' numbers are.
_REFERENCE = re.compile(r"[!-~]{1,64}")


@dataclass(frozen=True)
class SearchTerm:
    shape: SearchShape
    value: str


def recognise(text: str) -> SearchTerm | None:
    """The term `text` is (our numbers in capitals, whatever case was typed), or None when it cannot be any."""
    value = text.strip()
    upper = value.upper()
    for shape, pattern in _PATTERNS:
        if pattern.fullmatch(upper):
            return SearchTerm(shape, upper)
    if _PHONE_LAST4.fullmatch(value):
        return SearchTerm(SearchShape.PHONE_LAST4, value)
    if _PHONE.fullmatch(value):
        return SearchTerm(SearchShape.PHONE, value)
    if _REFERENCE.fullmatch(value):
        return SearchTerm(SearchShape.REFERENCE, value)
    return None


_TRADE_NO = re.compile(r"[0-9]{16,32}")


def channels_of_trade_no(value: str) -> tuple[str, ...]:
    """The channels whose trade number `value` may be, most likely first (none: not a trade number's shape).
    WeChat's transaction ids begin with 4 (4200…), Alipay's trade numbers with the date (20…)."""
    if not _TRADE_NO.fullmatch(value):
        return ()
    if value.startswith("4"):
        return ("wechat",)
    if value.startswith("20"):
        return ("alipay",)
    return ("wechat", "alipay")
