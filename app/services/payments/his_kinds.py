"""The HIS writes a paid top-up or visit-bill order owes, and what their outcome means for the order.

Recorded, the order is complete; refused (the bills were paid at the window meanwhile, the card is closed),
the payment goes back to the patient in full.
"""
from __future__ import annotations

from sqlalchemy.orm import Session

from app.db.models import HisOutbox, Order
from app.db.types import utcnow
from app.domain import orders as o
from app.domain.his_writes import HisWriteKind
from app.his.base import HisClient
from app.services.his import Performed, WriteKind, WriteRequest, register_kind
from app.services.orders import move
from app.services.payments.outcomes import refund_rejected_order


def _recharge(client: HisClient, write: WriteRequest) -> Performed:
    p = write.payload
    return Performed(client.recharge(p["card_no"], p["amount_fen"], write.order_no, write.key).record_id)


def _settle_bills(client: HisClient, write: WriteRequest) -> Performed:
    p = write.payload
    return Performed(client.settle_bills(p["card_no"], p["bill_ids"], p["amount_fen"], write.order_no,
                                         write.key).record_id)


def _order_complete(session: Session, row: HisOutbox, _performed: Performed) -> None:
    order = session.get(Order, row.order_id)
    if order.status == o.PAID:
        move(session, order, o.COMPLETED, f"HIS recorded the {row.kind}", completed_at=utcnow())


RECHARGE = register_kind(WriteKind(HisWriteKind.RECHARGE, _recharge, on_sent=_order_complete,
                                   on_rejected=refund_rejected_order))
BILL_SETTLEMENT = register_kind(WriteKind(HisWriteKind.BILL_SETTLEMENT, _settle_bills, on_sent=_order_complete,
                                          on_rejected=refund_rejected_order))
