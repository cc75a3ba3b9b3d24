"""The order as the mini-program sees it (API.md's order shape), with personal data masked."""
from __future__ import annotations

from sqlalchemy.orm import Session

from app.db.models import Item, Order, Patient, Slot
from app.services.common.presentation import item_ref, patient_ref, slot_ref


def describe(session: Session, order: Order) -> dict:
    view = {
        "order_no": order.order_no, "type": order.type, "status": order.status, "amount_fen": order.amount_fen,
        "channel": order.channel, "created_at": order.created_at, "expires_at": order.expires_at,
        "paid_at": order.paid_at, "refunded_fen": order.refunded_fen, "card_no": order.card_no,
        "bill_ids": order.bill_ids, "appointment_at": order.appointment_at,
        "payments": [{"out_trade_no": p.out_trade_no, "channel": p.channel, "status": p.status,
                      "amount_fen": p.amount_fen, "channel_trade_no": p.channel_trade_no, "late": p.late}
                     for p in order.payments],
    }
    if order.item_id:
        view["item"] = item_ref(session.get(Item, order.item_id))
    if order.slot_id:
        view["slot"] = slot_ref(session.get(Slot, order.slot_id))
    if order.patient_id:
        view["patient"] = patient_ref(session.get(Patient, order.patient_id))
    return view


def describe_many(session: Session, orders: list[Order]) -> list[dict]:
    return [describe(session, order) for order in orders]
