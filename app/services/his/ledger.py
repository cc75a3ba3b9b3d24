"""The platform's record of what it wrote to the HIS's ledger, by Asia/Shanghai day (an extra charge's bill is
not a ledger record, so it is not listed)."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import select

from app.db.models import HisOutbox, Order
from app.domain.his_writes import LEDGER_KINDS
from app.runtime import Runtime

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
