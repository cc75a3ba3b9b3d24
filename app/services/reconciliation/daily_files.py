"""Daily files for whoever reconciles against the platform from outside it: the platform's bill for the HIS
(its writes of the day, as the HIS API lists them), and the card top-ups one channel app took on a day (a
third-party app operator checks its own bill against them).

Top-ups paid through the app that Asia/Shanghai day, each with our out_trade_no, the channel's trade number,
the amount, the card, when it was paid, and what has been refunded of it so far (succeeded refunds, any day).
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date

from sqlalchemy import and_, func, select

from app.db.models import Clinic, MerchantAccount, Order, PaymentAttempt, Refund
from app.domain.errors import NotFound
from app.domain.orders import TOPUP
from app.domain.payments import PaymentStatus
from app.domain.refunds import RefundStatus
from app.runtime import Runtime
from app.services.common.principals import StaffPrincipal
from app.services.common.staff_scope import SHANGHAI, one_clinic
from app.services.common.table_export import TableFile, require_format, table_file
from app.services.his import ledger_file
from app.services.reconciliation.findings import day_bounds

READ_BATCH = 2000
TOPUP_HEADERS = ["平台订单号", "商户订单号", "渠道交易号", "金额", "就诊卡号", "支付时间", "已退款金额", "退款笔数",
                 "订单状态"]
TOPUP_MONEY = [header in ("金额", "已退款金额") for header in TOPUP_HEADERS]


def channel_apps(rt: Runtime, principal: StaffPrincipal) -> list[dict]:
    """The user's clinics' own channel apps (the ones a top-up file is made for)."""
    with rt.db.session() as session:
        rows = session.execute(select(MerchantAccount.app_id, MerchantAccount.channel, MerchantAccount.name,
                                      MerchantAccount.active, Clinic.code)
                               .join(Clinic, Clinic.id == MerchantAccount.clinic_id)
                               .where(MerchantAccount.clinic_id.in_(principal.clinic_ids))
                               .order_by(Clinic.code, MerchantAccount.channel, MerchantAccount.id))
        return [{"app_id": app_id, "channel": channel, "name": name, "active": active, "clinic_code": code}
                for app_id, channel, name, active, code in rows]


def his_ledger_file(rt: Runtime, principal: StaffPrincipal, day: date, file_format: str,
                    clinic_code: str | None = None) -> TableFile:
    """The day's platform bill for the HIS of one of the user's clinics, as a file."""
    with rt.db.session() as session:
        clinic = one_clinic(session, principal.clinic_ids, clinic_code)
        clinic_id, code = clinic.id, clinic.code
    return ledger_file(rt, clinic_id, code, day, file_format)


def topups_file(rt: Runtime, principal: StaffPrincipal, day: date, app_id: str, file_format: str) -> TableFile:
    """The top-ups of `day` paid through the app `app_id` of one of the user's clinics, as a file."""
    require_format(file_format)
    with rt.db.session() as session:
        account = session.execute(
            select(MerchantAccount.id, MerchantAccount.channel, Clinic.code)
            .join(Clinic, Clinic.id == MerchantAccount.clinic_id)
            .where(MerchantAccount.app_id == app_id, MerchantAccount.clinic_id.in_(principal.clinic_ids))
            .order_by(MerchantAccount.id)).first()
    if account is None:
        raise NotFound(f"no channel app {app_id} of your clinics", "channel_app_not_found")
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", f"{account.code}-{account.channel}-{app_id}")
    return table_file(f"topups-{safe}-{day.isoformat()}", file_format, TOPUP_HEADERS, TOPUP_MONEY,
                      _rows(rt, account.id, day))


def _rows(rt: Runtime, account_id: int, day: date) -> Iterator[list]:
    start, end = day_bounds(day)
    refunded = (select(Refund.payment_attempt_id, func.sum(Refund.amount_fen).label("fen"),
                       func.count(Refund.id).label("count"))
                .where(Refund.status == RefundStatus.SUCCEEDED).group_by(Refund.payment_attempt_id).subquery())
    with rt.db.session() as session:
        result = session.execute(
            select(Order.order_no, PaymentAttempt.out_trade_no, PaymentAttempt.channel_trade_no,
                   PaymentAttempt.amount_fen, Order.card_no, PaymentAttempt.paid_at,
                   func.coalesce(refunded.c.fen, 0), func.coalesce(refunded.c.count, 0), Order.status)
            .join(Order, and_(Order.id == PaymentAttempt.order_id, Order.type == TOPUP))
            .outerjoin(refunded, refunded.c.payment_attempt_id == PaymentAttempt.id)
            .where(PaymentAttempt.merchant_account_id == account_id, PaymentAttempt.status == PaymentStatus.PAID,
                   PaymentAttempt.paid_at >= start, PaymentAttempt.paid_at < end)
            .order_by(PaymentAttempt.paid_at, PaymentAttempt.id).execution_options(yield_per=READ_BATCH))
        for (order_no, out_trade_no, channel_trade_no, amount_fen, card_no, paid_at, refunded_fen, refund_count,
             status) in result:
            yield [order_no, out_trade_no, channel_trade_no or "", amount_fen, card_no or "",
                   paid_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S"), int(refunded_fen), refund_count, status]
