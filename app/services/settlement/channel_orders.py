"""The clinic's own report of its redeemed channel orders, and the statement check against it.

The report is the clinic's side of the monthly check: built straight from the orders (platform-collected
bookings redeemed in the month, each with the channel's trade number and the purchase price the order kept),
never from a statement's lines, so comparing the two finds a statement line that is wrong, missing or extra.
The check compares them line by line by the channel order number and the purchase price, and lists every
difference; only a statement that agrees is marked checked.
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db.models import Item, MerchantAccount, Order, PaymentAttempt, StatementLine
from app.db.types import utcnow
from app.domain.errors import InvalidInput
from app.domain.orders import BOOKING, REDEEMED
from app.domain.settlement import ended_month, format_month, month_bounds_utc, parse_month
from app.runtime import Runtime
from app.services.clinics import CHANNELS, PLATFORM
from app.services.common.principals import StaffPrincipal
from app.services.common.staff_scope import one_clinic

READ_BATCH = 1000
# The check lists this many differences; the count says how many there are in all.
DIFFERENCES_SHOWN = 200
MISSING_IN_STATEMENT, MISSING_IN_REPORT, PRICE_DIFFERS = "missing_in_statement", "missing_in_report", "price_differs"


def _redeemed_platform_orders(clinic_id: int, channel: str, start: datetime, end: datetime):
    return (select(Order.id, Order.order_no, Order.redeemed_at, Order.amount_fen, Order.purchase_price_fen,
                   PaymentAttempt.out_trade_no, PaymentAttempt.channel_trade_no, Item.name.label("item_name"))
            .join(PaymentAttempt, PaymentAttempt.id == Order.paid_attempt_id)
            .join(MerchantAccount, MerchantAccount.id == PaymentAttempt.merchant_account_id)
            .outerjoin(Item, Item.id == Order.item_id)
            .where(Order.clinic_id == clinic_id, Order.channel == channel, Order.type == BOOKING,
                   Order.status == REDEEMED, Order.redeemed_at >= start, Order.redeemed_at < end,
                   MerchantAccount.owner == PLATFORM, Order.purchase_price_fen.is_not(None)))


def _row_view(row) -> dict:
    return {"order_no": row.order_no, "out_trade_no": row.out_trade_no, "channel_trade_no": row.channel_trade_no,
            "item_name": row.item_name or "", "redeemed_at": row.redeemed_at,
            "purchase_price_fen": row.purchase_price_fen, "amount_fen": row.amount_fen}


def channel_orders_report(rt: Runtime, principal: StaffPrincipal, month: str, channel: str,
                          clinic_code: str | None = None, limit: int = 100, offset: int = 0,
                          now: datetime | None = None) -> dict:
    """A page of the clinic's redeemed platform-collected orders of `channel` in `month`, with the count and
    the total purchase price of the whole month."""
    month_start = ended_month(month, now or utcnow())
    if channel not in CHANNELS:
        raise InvalidInput(f"channel must be one of {', '.join(CHANNELS)}", "invalid_channel")
    start, end = month_bounds_utc(month_start)
    with rt.db.session() as session:
        clinic = one_clinic(session, principal.clinic_ids, clinic_code)
        query = _redeemed_platform_orders(clinic.id, channel, start, end).subquery()
        count, total = session.execute(select(func.count(), func.coalesce(func.sum(query.c.purchase_price_fen), 0))
                                       .select_from(query)).one()
        rows = session.execute(_redeemed_platform_orders(clinic.id, channel, start, end)
                               .order_by(Order.redeemed_at, Order.id).limit(limit).offset(offset)).all()
        return {"clinic_code": clinic.code, "month": format_month(month_start), "channel": channel,
                "count": count, "total_purchase_fen": int(total), "items": [_row_view(row) for row in rows],
                "limit": limit, "offset": offset}


def _report_rows(session: Session, clinic_id: int, channel: str, month_start) -> Iterator:
    start, end = month_bounds_utc(month_start)
    query = _redeemed_platform_orders(clinic_id, channel, start, end).order_by(Order.id).limit(READ_BATCH)
    last_id = 0
    while True:
        rows = session.execute(query.where(Order.id > last_id)).all()
        if not rows:
            return
        yield from rows
        last_id = rows[-1].id


def _key(channel_trade_no: str | None, out_trade_no: str | None) -> str:
    """The channel order number a line is matched by: the channel's trade number, else our out_trade_no."""
    return channel_trade_no or out_trade_no or ""


def statement_differences(session: Session, statement) -> tuple[list[dict], int]:
    """The differences between the statement's lines and the clinic's report of the same month and channel:
    (the first DIFFERENCES_SHOWN of them, how many in all)."""
    report = {_key(row.channel_trade_no, row.out_trade_no): row
              for row in _report_rows(session, statement.clinic_id, statement.channel, parse_month(statement.month))}
    differences: list[dict] = []
    lines = session.execute(select(StatementLine.order_no, StatementLine.out_trade_no, StatementLine.channel_trade_no,
                                   StatementLine.purchase_price_fen)
                            .where(StatementLine.statement_id == statement.id).order_by(StatementLine.id))
    for line in lines:
        key = _key(line.channel_trade_no, line.out_trade_no)
        row = report.pop(key, None)
        if row is None:
            differences.append({"kind": MISSING_IN_REPORT, "channel_trade_no": key, "order_no": line.order_no,
                                "statement_price_fen": line.purchase_price_fen, "report_price_fen": None})
        elif row.purchase_price_fen != line.purchase_price_fen:
            differences.append({"kind": PRICE_DIFFERS, "channel_trade_no": key, "order_no": line.order_no,
                                "statement_price_fen": line.purchase_price_fen,
                                "report_price_fen": row.purchase_price_fen})
    for key, row in report.items():
        differences.append({"kind": MISSING_IN_STATEMENT, "channel_trade_no": key, "order_no": row.order_no,
                            "statement_price_fen": None, "report_price_fen": row.purchase_price_fen})
    return differences[:DIFFERENCES_SHOWN], len(differences)
