"""The platform's record of what it wrote to the HIS's ledger, by Asia/Shanghai day (an extra charge's bill is
not a ledger record, so it is not listed)."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import select

from app.db.models import Clinic, HisOutbox, Order
from app.domain.his_writes import LEDGER_KINDS
from app.runtime import Runtime
from app.services.common.table_export import TableFile, require_format, table_file

SHANGHAI = timezone(timedelta(hours=8))


def writes_on(rt: Runtime, clinic_id: int, day: date) -> list[dict]:
    start = datetime.combine(day, time(0), SHANGHAI)
    with rt.db.session() as session:
        rows = session.execute(
            select(HisOutbox, Order.order_no).outerjoin(Order, Order.id == HisOutbox.order_id)
            .where(HisOutbox.clinic_id == clinic_id, HisOutbox.kind.in_(LEDGER_KINDS), HisOutbox.sent_at >= start,
                   HisOutbox.sent_at < start + timedelta(days=1))
            .order_by(HisOutbox.sent_at, HisOutbox.id)).all()
        return [{"idempotency_key": row.idempotency_key, "kind": row.kind,
                 "order_no": row.payload.get("order_no", order_no), "card_no": row.payload.get("card_no"),
                 "amount_fen": row.payload.get("amount_fen"), "status": row.status, "sent_at": row.sent_at}
                for row, order_no in rows]


LEDGER_HEADERS = ["幂等键", "类型", "平台订单号", "就诊卡号", "金额", "状态", "写入时间"]
LEDGER_MONEY = [header == "金额" for header in LEDGER_HEADERS]
KIND_NAMES = {"recharge": "充值入账", "bill_settlement": "缴费结算", "registration": "挂号",
              "registration_revert": "退号", "charge": "核销记账", "refund_hold": "退款冻结",
              "refund_restore": "退款解冻"}


def ledger_file(rt: Runtime, clinic_id: int, clinic_code: str, day: date, file_format: str) -> TableFile:
    """The day's platform bill for the HIS (the writes of `writes_on`) as a CSV or XLSX file."""
    require_format(file_format)
    rows = [[write["idempotency_key"], KIND_NAMES.get(write["kind"], write["kind"]), write["order_no"] or "",
             write["card_no"] or "", write["amount_fen"], write["status"],
             write["sent_at"].astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")]
            for write in writes_on(rt, clinic_id, day)]
    return table_file(f"his-ledger-{clinic_code}-{day.isoformat()}", file_format, LEDGER_HEADERS, LEDGER_MONEY, rows)


def clinic_code(rt: Runtime, clinic_id: int) -> str:
    with rt.db.session() as session:
        return session.scalar(select(Clinic.code).where(Clinic.id == clinic_id))
