"""Finance's dashboard: money received and refunded today, this month and per day, and where reconciliation stands.

What is counted, so that the figures agree with the channels' bills and the reconciliation:
- income: payment attempts in status `paid`, by the Asia/Shanghai day of their `paid_at` (the money the
  channel took, whatever happened to the order later: a late or second payment that was refunded still
  came in, and its refund is counted as a refund);
- refunds: refunds in status `succeeded`, by the Asia/Shanghai day of their `succeeded_at`.
Both are split by channel and by the order's type (booking, topup, visit_bill), in fen, over the clinics the
user may see (or the one named).
"""
from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session

from app.db.models import (
    Clinic,
    MerchantAccount,
    Order,
    PaymentAttempt,
    ReconciliationDiscrepancy,
    ReconciliationRun,
    Refund,
)
from app.db.types import utcnow
from app.domain.orders import ORDER_TYPES
from app.domain.payments import PaymentStatus
from app.domain.refunds import RefundStatus
from app.runtime import Runtime
from app.services.common.staff_scope import SHANGHAI, clinic_ids_in_scope
from app.services.reconciliation import OPEN, SOURCES

CHANNELS = ("wechat", "alipay")
DEFAULT_DAYS = 30
PAID = PaymentStatus.PAID
SUCCEEDED = RefundStatus.SUCCEEDED


def dashboard(rt: Runtime, scope: tuple[int, ...], clinic_code: str | None = None, days: int = DEFAULT_DAYS,
              now: datetime | None = None) -> dict:
    now = now or utcnow()
    today = now.astimezone(SHANGHAI).date()
    first_day = today - timedelta(days=days - 1)
    month_start = today.replace(day=1)
    with rt.db.session() as session:
        clinic_ids = clinic_ids_in_scope(session, scope, clinic_code)
        window_start = min(first_day, month_start)
        income = _income(session, clinic_ids, window_start, today)
        refunds = _refunds(session, clinic_ids, window_start, today)
        return {
            "today": today.isoformat(),
            "month": today.strftime("%Y-%m"),
            "clinic_codes": list(session.scalars(select(Clinic.code).where(Clinic.id.in_(clinic_ids))
                                                 .order_by(Clinic.code))),
            "income": {"today": _totals(income, today, today), "month": _totals(income, month_start, today)},
            "refunds": {"today": _totals(refunds, today, today), "month": _totals(refunds, month_start, today)},
            "daily": [{"date": day.isoformat(), "channel": channel,
                       "income_fen": sum(amount for (_t, amount, _n) in income[day].get(channel, [])),
                       "refund_fen": sum(amount for (_t, amount, _n) in refunds[day].get(channel, []))}
                      for day in (first_day + timedelta(days=i) for i in range(days)) for channel in CHANNELS],
            "reconciliation": _last_runs(session, clinic_ids),
        }


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The Asia/Shanghai day as a half-open UTC interval."""
    start = datetime.combine(day, time(0), SHANGHAI)
    return start.astimezone(UTC), (start + timedelta(days=1)).astimezone(UTC)


def _day_index(column, first: date, last: date):
    """The Asia/Shanghai day of a UTC timestamp as a number of days after `first`, in SQL that both SQLite and
    PostgreSQL run (a CASE over the day boundaries: portable, and the database does the grouping)."""
    bounds = [day_bounds(first + timedelta(days=i))[1] for i in range((last - first).days + 1)]
    return case(*[(column < bound, index) for index, bound in enumerate(bounds)], else_=None)


def _grouped(session: Session, rows: Select, first: date) -> dict[date, dict[str, list[tuple[str, int, int]]]]:
    """day -> channel -> [(order type, fen, count)] of `rows` (day index, channel, order type, fen). Grouped over
    a subquery: PostgreSQL cannot tell that a CASE with bound parameters in GROUP BY is the selected one."""
    inner = rows.subquery()
    day, channel, order_type, amount = inner.c
    grouped: dict[date, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for index, channel_name, type_name, total, count in session.execute(
            select(day, channel, order_type, func.sum(amount), func.count())
            .where(day.is_not(None)).group_by(day, channel, order_type)):
        grouped[first + timedelta(days=int(index))][channel_name].append((type_name, int(total or 0), int(count)))
    return grouped


def _income(session: Session, clinic_ids, first: date, last: date):
    start, end = day_bounds(first)[0], day_bounds(last)[1]
    return _grouped(session, select(
        _day_index(PaymentAttempt.paid_at, first, last).label("day"), PaymentAttempt.channel.label("channel"),
        Order.type.label("order_type"), PaymentAttempt.amount_fen.label("amount_fen"))
        .join(Order, Order.id == PaymentAttempt.order_id)
        .where(Order.clinic_id.in_(clinic_ids), PaymentAttempt.status == PAID, PaymentAttempt.paid_at >= start,
               PaymentAttempt.paid_at < end), first)


def _refunds(session: Session, clinic_ids, first: date, last: date):
    start, end = day_bounds(first)[0], day_bounds(last)[1]
    return _grouped(session, select(
        _day_index(Refund.succeeded_at, first, last).label("day"), PaymentAttempt.channel.label("channel"),
        Order.type.label("order_type"), Refund.amount_fen.label("amount_fen"))
        .join(PaymentAttempt, PaymentAttempt.id == Refund.payment_attempt_id)
        .join(Order, Order.id == Refund.order_id)
        .where(Order.clinic_id.in_(clinic_ids), Refund.status == SUCCEEDED, Refund.succeeded_at >= start,
               Refund.succeeded_at < end), first)


def _totals(grouped, first: date, last: date) -> dict:
    by_channel: dict[str, list[int]] = {channel: [0, 0] for channel in CHANNELS}
    by_type: dict[str, list[int]] = {order_type: [0, 0] for order_type in ORDER_TYPES}
    for day, channels in grouped.items():
        if not first <= day <= last:
            continue
        for channel, entries in channels.items():
            for order_type, amount, count in entries:
                for bucket in (by_channel.setdefault(channel, [0, 0]), by_type.setdefault(order_type, [0, 0])):
                    bucket[0] += amount
                    bucket[1] += count
    return {"amount_fen": sum(v[0] for v in by_channel.values()), "count": sum(v[1] for v in by_channel.values()),
            "by_channel": [{"key": k, "amount_fen": v[0], "count": v[1]} for k, v in by_channel.items()],
            "by_order_type": [{"key": k, "amount_fen": v[0], "count": v[1]} for k, v in by_type.items()]}


def _last_runs(session: Session, clinic_ids) -> list[dict]:
    """For each clinic and source (the HIS, and each active channel app): its latest run by business day."""
    latest = (select(ReconciliationRun.clinic_id, ReconciliationRun.source, ReconciliationRun.merchant_account_id,
                     func.max(ReconciliationRun.business_date).label("day"))
              .where(ReconciliationRun.clinic_id.in_(clinic_ids))
              .group_by(ReconciliationRun.clinic_id, ReconciliationRun.source,
                        ReconciliationRun.merchant_account_id).subquery())
    runs = {(run.clinic_id, run.source, run.merchant_account_id): run for run in session.scalars(
        select(ReconciliationRun).join(latest, (latest.c.clinic_id == ReconciliationRun.clinic_id)
                                       & (latest.c.source == ReconciliationRun.source)
                                       & (latest.c.day == ReconciliationRun.business_date)
                                       & (func.coalesce(latest.c.merchant_account_id, 0)
                                          == func.coalesce(ReconciliationRun.merchant_account_id, 0))))}
    open_counts = dict(session.execute(
        select(ReconciliationDiscrepancy.run_id, func.count())
        .where(ReconciliationDiscrepancy.run_id.in_([run.id for run in runs.values()]),
               ReconciliationDiscrepancy.status == OPEN)
        .group_by(ReconciliationDiscrepancy.run_id)).all()) if runs else {}
    sources = []
    for clinic in session.scalars(select(Clinic).where(Clinic.id.in_(clinic_ids)).order_by(Clinic.code)):
        targets: list[tuple[str, int | None, str | None]] = [("his", None, None)]
        accounts = session.execute(select(MerchantAccount.channel, MerchantAccount.id, MerchantAccount.app_id)
                                   .where(MerchantAccount.clinic_id == clinic.id, MerchantAccount.active.is_(True))
                                   .order_by(MerchantAccount.channel, MerchantAccount.id)).all()
        targets += [(channel, account_id, app_id) for channel, account_id, app_id in accounts]
        for source, account_id, app_id in sorted(targets, key=lambda t: (SOURCES.index(t[0]), t[1] or 0)):
            run = runs.get((clinic.id, source, account_id))
            sources.append({"clinic_code": clinic.code, "source": source, "app_id": app_id,
                            "last_run": None if run is None else {
                                "id": run.id, "date": run.business_date.isoformat(), "status": run.status,
                                "provisional": run.provisional, "finished_at": run.finished_at,
                                "matched": run.matched_count, "discrepancies": run.discrepancy_count,
                                "repaired": run.repaired_count, "held": run.held_count,
                                "open": open_counts.get(run.id, 0)}})
    return sources
