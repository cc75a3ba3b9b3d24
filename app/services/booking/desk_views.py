"""A booking as clinic staff see it: the order, its clinic, patient and cards, redemption, extra
charges, where its HIS registration stands, and its attachments. Phones stay masked."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Card, Clinic, ExtraCharge, HisOutbox, Item, Order, OrderAttachment, RegistrationSync
from app.domain.his_writes import EXTRA_CHARGE_STATUS, ExtraChargeStatus
from app.services.booking.attachments import attachment_view
from app.services.orders import describe


def staff_booking_view(session: Session, order: Order) -> dict:
    view = describe(session, order)
    view["clinic_code"] = session.get(Clinic, order.clinic_id).code
    view["redeemed_at"] = order.redeemed_at
    if order.patient_id:
        view["patient"]["card_nos"] = list(session.scalars(select(Card.card_no).where(
            Card.patient_id == order.patient_id).order_by(Card.id)))
    # An extra charge's status is its bill's HIS write's (pending, created, rejected, flagged).
    view["extra_charges"] = [
        {"name": c.name, "amount_fen": c.amount_fen, "card_no": c.card_no, "bill_id": c.bill_id,
         "status": EXTRA_CHARGE_STATUS[write_status] if write_status else ExtraChargeStatus.PENDING}
        for c, write_status in session.execute(
            select(ExtraCharge, HisOutbox.status)
            .outerjoin(HisOutbox, HisOutbox.idempotency_key == ExtraCharge.idempotency_key)
            .where(ExtraCharge.order_id == order.id).order_by(ExtraCharge.seq))]
    sync = session.scalar(select(RegistrationSync).where(RegistrationSync.order_id == order.id))
    view["registration_sync"] = {"status": sync.status, "note": sync.note} if sync else None
    item = session.get(Item, order.item_id) if order.item_id else None
    view["attachment_required"] = bool(item and item.requires_attachment)
    view["attachments"] = [attachment_view(session, row) for row in session.scalars(
        select(OrderAttachment).where(OrderAttachment.order_id == order.id).order_by(OrderAttachment.id))]
    return view
