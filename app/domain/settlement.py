"""Statement months, settlement windows, invoice amounts and coupon expiry.

Business months are Asia/Shanghai months (China keeps no daylight saving, so a
fixed +08:00 offset is exact). A statement covers one month that has ended;
settlement of checked statements opens only in the configured months.
"""
from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from enum import StrEnum

from app.domain.errors import Conflict, InvalidInput
from app.domain.money import divide_half_up
from app.domain.state_machine import StateMachine

SHANGHAI = timezone(timedelta(hours=8))



class StatementStatus(StrEnum):
    GENERATED = "generated"
    CHECKED = "checked"
    """Finance compared it with the report (核对)."""
    SETTLED = "settled"


GENERATED, CHECKED, SETTLED = StatementStatus.GENERATED, StatementStatus.CHECKED, StatementStatus.SETTLED
STATEMENT_STATUSES = tuple(StatementStatus)
STATEMENT = StateMachine("statement", StatementStatus, {
    GENERATED: {CHECKED},
    # Regenerating a checked statement (its content may have changed) sends it back to be checked again.
    CHECKED: {SETTLED, GENERATED},
})

CASH, COUPON = "cash", "coupon"
SETTLEMENT_METHODS = (CASH, COUPON)


class SettlementStatus(StrEnum):
    # Cash: the clinic sends its invoice and the operator pays by bank transfer (`paid`, with the bank's serial
    # number); a coupon settlement is complete at once.
    PENDING_PAYMENT = "pending_payment"
    PAID = "paid"
    COMPLETED = "completed"


PENDING_PAYMENT, PAID, COMPLETED = SettlementStatus.PENDING_PAYMENT, SettlementStatus.PAID, SettlementStatus.COMPLETED
SETTLEMENT = StateMachine("settlement", SettlementStatus, {PENDING_PAYMENT: {PAID}})


class InvoiceStatus(StrEnum):
    """The clinic's invoice for a cash settlement: awaited until the operator records that it arrived."""

    AWAITING = "awaiting"
    RECEIVED = "received"


INVOICE_MACHINE = StateMachine("settlement_invoice", InvoiceStatus, {InvoiceStatus.AWAITING: {InvoiceStatus.RECEIVED}})


class CouponStatus(StrEnum):
    UNUSED = "unused"
    USED = "used"
    EXPIRED = "expired"


COUPON_MACHINE = StateMachine("coupon", CouponStatus,
                              {CouponStatus.UNUSED: {CouponStatus.USED, CouponStatus.EXPIRED}})

NORMAL_INVOICE, SPECIAL_INVOICE = "normal", "special"
INVOICE_TYPES = (NORMAL_INVOICE, SPECIAL_INVOICE)
# An ordinary invoice carries no deductible VAT, so it is made out for the amount net of 6 %.
ORDINARY_INVOICE_DIVISOR = "1.06"
COUPON_VALIDITY_YEARS = 3

_MONTH = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")


def parse_month(text: str) -> date:
    """'2024-03' -> date(2024, 3, 1); anything else is refused."""
    match = _MONTH.fullmatch(text or "")
    if not match or int(match.group(1)) < 1:
        raise InvalidInput(f"month must be YYYY-MM, not {text!r}", "invalid_month")
    return date(int(match.group(1)), int(match.group(2)), 1)


def format_month(month_start: date) -> str:
    return f"{month_start.year:04d}-{month_start.month:02d}"


def add_months(month_start: date, count: int) -> date:
    index = month_start.year * 12 + month_start.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def shanghai_month_of(moment: datetime) -> date:
    """The first day of the Asia/Shanghai month `moment` (aware) falls in."""
    local = moment.astimezone(SHANGHAI)
    return date(local.year, local.month, 1)


def month_has_ended(month_start: date, now: datetime) -> bool:
    return month_start < shanghai_month_of(now)


def ended_month(text: str, now: datetime) -> date:
    """The month a statement may be made for: well formed and over (in Asia/Shanghai) at `now`."""
    month_start = parse_month(text)
    if not month_has_ended(month_start, now):
        raise InvalidInput(f"{text} has not ended yet; a statement covers a month that is over",
                           "month_not_ended")
    return month_start


def month_bounds_utc(month_start: date) -> tuple[datetime, datetime]:
    """[start, end) of the Asia/Shanghai month, as UTC instants."""
    start = datetime(month_start.year, month_start.month, 1, tzinfo=SHANGHAI)
    end_day = add_months(month_start, 1)
    end = datetime(end_day.year, end_day.month, 1, tzinfo=SHANGHAI)
    return start.astimezone(UTC), end.astimezone(UTC)


def parse_settlement_months(spec: str) -> frozenset[int]:
    """'1,4,7,10' -> {1, 4, 7, 10}; raises ValueError for anything that is not a list of months."""
    parts = [part.strip() for part in (spec or "").split(",") if part.strip()]
    if not parts or not all(part.isascii() and part.isdigit() and 1 <= int(part) <= 12 for part in parts):
        raise ValueError(f"settlement months must be a comma list of 1..12, not {spec!r}")
    return frozenset(int(part) for part in parts)


def settlement_window_open(now: datetime, months: frozenset[int]) -> bool:
    return now.astimezone(SHANGHAI).month in months


def require_settlement_window(now: datetime, months: frozenset[int]) -> None:
    if settlement_window_open(now, months):
        return
    current = shanghai_month_of(now)
    next_open = next(add_months(current, step) for step in range(1, 13)
                     if add_months(current, step).month in months)
    raise Conflict(f"settlement is open only in months {', '.join(str(m) for m in sorted(months))}; "
                   f"the next window opens in {format_month(next_open)}", "settlement_window_closed")


def invoice_amount_fen(amount_fen: int, invoice_type: str) -> int:
    """The amount the clinic's invoice is made out for (100.00 -> 94.34 on an ordinary invoice)."""
    if not isinstance(amount_fen, int) or isinstance(amount_fen, bool) or amount_fen < 0:
        raise ValueError("amounts are non-negative integer fen")
    if invoice_type == NORMAL_INVOICE:
        return divide_half_up(amount_fen, ORDINARY_INVOICE_DIVISOR)
    if invoice_type == SPECIAL_INVOICE:
        return amount_fen
    raise InvalidInput(f"invoice_type must be one of {', '.join(INVOICE_TYPES)}", "invalid_invoice_type")


def coupon_state(stored: str, expires_on: date, today: date) -> str:
    """What a coupon is on `today` (an Asia/Shanghai date): an unused one past its last valid day is expired,
    whether or not a job has written that down yet."""
    if stored == CouponStatus.UNUSED and today > expires_on:
        return str(CouponStatus.EXPIRED)
    return stored


def coupon_expiry(settled_on: date) -> date:
    """The settlement date three years on; 29 February falls back to 28 February."""
    year = settled_on.year + COUPON_VALIDITY_YEARS
    try:
        return settled_on.replace(year=year)
    except ValueError:
        return date(year, 2, 28)
