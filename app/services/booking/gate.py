"""The admission gate as the booking path uses it: ask it first, build it from the database when Redis lost it,
load a slot it does not know yet (made since the build), and correct it when the database disagrees.

The gate may only under-admit: PostgreSQL's conditional update decides every booking it lets through, so a
stale or lost gate costs time, never a place. When the gate admitted and the database then refused for a rule
of the request (a patient's second booking, a lookup that failed), its place goes back; when the database
refused because the slot or the inventory is full, the gate was ahead of the truth and is drained to zero
(giving the place back would let the next request in to be refused again).
"""
from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta

from redis.exceptions import RedisError
from sqlalchemy import select

from app.admission_gate import ADMITTED, DOWN, UNBUILT, UNKNOWN, Admission, SlotPlaces
from app.db.models import Item, ItemInventory, Slot
from app.db.types import utcnow
from app.runtime import Runtime
from app.services.common.staff_scope import MAX_ROW_ID

log = logging.getLogger("hpay.gate")

# Slots starting within this many days are loaded at a rebuild; later ones load on their first request.
REBUILD_DAYS = 31
REBUILD_LOCK_S = 30
OFF = Admission(DOWN)


def admit(rt: Runtime, clinic_id: int, item_id: int, slot_id: int, channel: str) -> Admission:
    """The gate's answer for one booking request. ADMITTED: a place is held at the gate; SLOT_FULL /
    INVENTORY_FULL: sold out, no database work; anything else: the database decides alone."""
    if not rt.settings.BOOKING_GATE_ENABLED:
        return OFF
    gate = rt.booking_gate
    admission = gate.take(clinic_id, item_id, slot_id, channel)
    if admission.answer == UNBUILT and rebuild(rt) is not None:
        admission = gate.take(clinic_id, item_id, slot_id, channel)  # built from the database just now
    elif admission.answer == UNKNOWN and _load(rt, admission.generation, slot_id, item_id, channel):
        admission = gate.take(clinic_id, item_id, slot_id, channel)  # a slot made since the build, now known
    return admission


def give_back(rt: Runtime, admission: Admission, slot_id: int, item_id: int, channel: str) -> None:
    if admission.answer == ADMITTED:
        rt.booking_gate.give_back(slot_id, item_id, channel, admission.generation)


def drain(rt: Runtime, admission: Admission, slot_id: int, item_id: int, channel: str, full: str) -> None:
    """The database found the slot (`slot`) or the inventory full although the gate admitted: no places there."""
    if admission.answer == ADMITTED:
        gate = rt.booking_gate
        key = gate.slot_key(slot_id) if full == "slot" else gate.inventory_key(item_id, channel)
        gate.drain(admission.generation, key)


def _load(rt: Runtime, generation: str, slot_id: int, item_id: int, channel: str) -> bool:
    """Put a slot the gate does not know yet (made since the build) into it, when it is open to bookings: the
    first requests after a slot appears each read it once, the rest are answered by the gate."""
    if not generation or not 0 < slot_id <= MAX_ROW_ID:
        return False
    with rt.db.session() as session:
        row = session.execute(_open_slots(utcnow()).where(Slot.id == slot_id, Slot.item_id == item_id,
                                                          ItemInventory.channel == channel)).first()
    if row is not None:
        rt.booking_gate.load(generation, _places(*row))
    return row is not None


def rebuild(rt: Runtime) -> str | None:
    """Build the gate from the database when it is unbuilt, by one process at a time (a Redis lock); others
    keep using the database meanwhile. The new generation, or None when another process is at it."""
    gate, owner = rt.booking_gate, secrets.token_hex(8)
    try:
        if not gate.try_lock(owner, REBUILD_LOCK_S):
            return None
        try:
            if gate.generation() is not None:
                return None  # built by another process since this one looked
            generation = secrets.token_hex(8)
            now = utcnow()
            with rt.db.session() as session:
                rows = session.execute(_open_slots(now).where(Slot.starts_at < now + timedelta(days=REBUILD_DAYS)))
                everything = [_places(*row) for row in rows]
            gate.publish(generation, everything)
            log.info("booking gate built: generation %s, %d slot places", generation, len(everything))
            return generation
        finally:
            gate.unlock(owner)
    except (RedisError, OSError) as exc:
        log.warning("booking gate not rebuilt (bookings use the database meanwhile): %s", exc)
        return None


def _open_slots(now: datetime):
    """Each open, not yet started slot with its item's clinic and each channel's inventory of the item."""
    return (select(Slot, Item.clinic_id, ItemInventory)
            .join(Item, Item.id == Slot.item_id)
            .join(ItemInventory, ItemInventory.item_id == Slot.item_id)
            .where(Slot.closed.is_(False), Slot.starts_at > now, Item.active.is_(True)))


def _places(slot: Slot, clinic_id: int, inventory: ItemInventory) -> SlotPlaces:
    return SlotPlaces(slot_id=slot.id, clinic_id=clinic_id, item_id=slot.item_id, channel=inventory.channel,
                      slot_left=max(slot.capacity - slot.reserved, 0), slot_capacity=slot.capacity,
                      release_at=int(slot.release_at.timestamp()) if slot.release_at else 0,
                      starts_at=int(slot.starts_at.timestamp()),
                      inventory_left=max(inventory.quantity - inventory.reserved, 0),
                      inventory_quantity=inventory.quantity)
