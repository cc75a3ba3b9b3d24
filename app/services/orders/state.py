"""An order's status changes: conditional updates through its type's state machine, each with an order event.

`move` refuses an illegal move (InvalidTransition), and when another process has moved the order first it
changes nothing and returns False: duplicate and concurrent callers never apply a change twice. A booking
that leaves the statuses that hold a place gives its slot and inventory place back in the same transaction.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, or_, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from app.admission_gate import note_returned
from app.db.models import ItemInventory, Order, OrderEvent, Slot
from app.db.types import utcnow
from app.domain.orders import BOOKING, HOLDS_PLACE, transition
from app.services.common.status import ACTOR_MAX, REASON_MAX


def move(session: Session, order: Order, to_status: str, reason: str, actor: str = "system", **fields) -> bool:
    step = transition(order.type, order.status, to_status, reason)
    now = utcnow()
    values = {"status": str(step.to_status), "updated_at": now, **fields}
    result = session.execute(
        update(Order)
        .where(Order.id == order.id, Order.status == str(step.from_status))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return False
    for name, value in values.items():
        set_committed_value(order, name, value)
    session.add(OrderEvent(order_id=order.id, from_status=str(step.from_status), to_status=str(step.to_status),
                           reason=reason[:REASON_MAX], actor=actor[:ACTOR_MAX], at=now))
    if step.from_status in HOLDS_PLACE and step.to_status not in HOLDS_PLACE:
        release_place(session, order)
    # The one move back into a place-holding status (a late payment honoured on a closed booking)
    # takes its place back through take_place() first, in the caller.
    return True


def take_place(session: Session, slot_id: int, item_id: int, channel: str) -> str | None:
    """Reserve one place in the slot and the channel's inventory; None on success, else what is full."""
    if not take_slot_place(session, slot_id):
        return "slot"
    if not take_inventory_place(session, item_id, channel):
        session.execute(update(Slot).where(Slot.id == slot_id).values(reserved=Slot.reserved - 1)
                        .execution_options(synchronize_session=False))
        return "inventory"
    return None


def take_slot_place(session: Session, slot_id: int) -> bool:
    """One place of the slot, if it has one."""
    return session.execute(update(Slot).where(Slot.id == slot_id, Slot.reserved < Slot.capacity)
                           .values(reserved=Slot.reserved + 1)
                           .execution_options(synchronize_session=False)).rowcount == 1


# A booking's two conditional updates, built once with bound parameters: building them per request cost each
# booking about 0.25 ms of CPU. (Parameter names differ from the columns': an UPDATE's parameters named like a
# column would set it.)
_CLAIM_OPEN_SLOT_PLACE = (
    update(Slot)
    .where(Slot.id == bindparam("p_slot"), Slot.reserved < Slot.capacity, Slot.item_id == bindparam("p_item"),
           Slot.closed.is_(False), Slot.starts_at > bindparam("p_open_at"),
           or_(Slot.release_at.is_(None), Slot.release_at <= bindparam("p_open_at")))
    .values(reserved=Slot.reserved + 1).returning(Slot))
_TAKE_INVENTORY_PLACE = (
    update(ItemInventory)
    .where(ItemInventory.item_id == bindparam("p_item"), ItemInventory.channel == bindparam("p_channel"),
           ItemInventory.reserved < ItemInventory.quantity)
    .values(reserved=ItemInventory.reserved + 1))
_UNSYNCHRONIZED = {"synchronize_session": False}


def claim_open_slot_place(session: Session, slot_id: int, item_id: int, open_at: datetime) -> Slot | None:
    """One place of a slot of this item that is open to patients at `open_at` (released, not closed, not
    started) and has one: the slot as it is now, or None. A booking tries this first and looks up why only when
    it fails; the slot comes back with the update (RETURNING), so the booking reads it no second time."""
    return session.scalars(_CLAIM_OPEN_SLOT_PLACE, {"p_slot": slot_id, "p_item": item_id, "p_open_at": open_at},
                           execution_options=_UNSYNCHRONIZED).one_or_none()


def take_inventory_place(session: Session, item_id: int, channel: str) -> bool:
    """One place of the item's stock on this channel. Every booking of the item waits for this row's lock until
    its transaction ends: a booking takes it last, just before its order is written."""
    return session.execute(_TAKE_INVENTORY_PLACE, {"p_item": item_id, "p_channel": channel},
                           execution_options=_UNSYNCHRONIZED).rowcount == 1


def release_place(session: Session, order: Order) -> None:
    if order.type != BOOKING or order.slot_id is None:
        return
    session.execute(update(Slot).where(Slot.id == order.slot_id, Slot.reserved > 0)
                    .values(reserved=Slot.reserved - 1).execution_options(synchronize_session=False))
    session.execute(update(ItemInventory)
                    .where(ItemInventory.item_id == order.item_id, ItemInventory.channel == order.channel,
                           ItemInventory.reserved > 0)
                    .values(reserved=ItemInventory.reserved - 1).execution_options(synchronize_session=False))
    session.execute(update(Order).where(Order.id == order.id, Order.active_booking_key.is_not(None))
                    .values(active_booking_key=None).execution_options(synchronize_session=False))
    set_committed_value(order, "active_booking_key", None)
    note_returned(session, order.slot_id, order.item_id, order.channel)
