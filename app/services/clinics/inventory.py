"""Per-item, per-channel inventory as the clinic sets it.

`reserved` counts the places held by unpaid orders and sold; a new quantity
below it is refused. The check is part of the conditional UPDATE itself, so a
booking taking a place at the same moment can never leave reserved > quantity.
"""
from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from app.admission_gate import note_inventory_changed
from app.db.models import ItemInventory
from app.domain.errors import Conflict
from app.runtime import Runtime
from app.services.clinics.settlement_types import CHANNELS
from app.services.common.audit import record_staff_event
from app.services.common.principals import StaffPrincipal
from app.services.common.staff_scope import scoped_item


def _levels(session, item_id: int) -> list[dict]:
    rows = {row.channel: row for row in session.scalars(select(ItemInventory)
                                                          .where(ItemInventory.item_id == item_id))}
    return [{"channel": channel, "quantity": rows[channel].quantity if channel in rows else 0,
             "reserved": rows[channel].reserved if channel in rows else 0} for channel in CHANNELS]


def get_inventory(rt: Runtime, scope: tuple[int, ...], item_id: int) -> list[dict]:
    """`[{channel, quantity, reserved}]` for every channel (0 where none was ever set)."""
    with rt.db.session() as session:
        return _levels(session, scoped_item(session, scope, item_id).id)


def set_inventory(rt: Runtime, principal: StaffPrincipal, item_id: int, entries: list[dict]) -> list[dict]:
    """Set the named channels' quantities; returns every channel's level."""
    try:
        return _set_levels(rt, principal, item_id, entries)
    except IntegrityError:
        # Another request created the same channel's row at the same moment.
        raise Conflict("the inventory changed meanwhile; reload it and try again", "concurrent_update") from None


def _set_levels(rt: Runtime, principal: StaffPrincipal, item_id: int, entries: list[dict]) -> list[dict]:
    with rt.db.session() as session:
        item = scoped_item(session, principal.clinic_ids, item_id)
        before = _levels(session, item.id)
        for entry in entries:
            channel, quantity = entry["channel"], entry["quantity"]
            note_inventory_changed(session, item.id, channel)
            exists = session.scalar(select(ItemInventory.id).where(ItemInventory.item_id == item.id,
                                                                   ItemInventory.channel == channel))
            if exists is None:
                session.add(ItemInventory(item_id=item.id, channel=channel, quantity=quantity, reserved=0))
                session.flush()
                continue
            changed = session.execute(
                update(ItemInventory).where(ItemInventory.id == exists, ItemInventory.reserved <= quantity)
                .values(quantity=quantity).execution_options(synchronize_session=False)).rowcount
            if changed != 1:
                reserved = session.scalar(select(ItemInventory.reserved).where(ItemInventory.id == exists))
                raise Conflict(f"{reserved} {channel} places are already sold or held; the quantity cannot be "
                               f"{quantity}", "inventory_below_reserved",
                               details={"channel": channel, "reserved": reserved})
        after = _levels(session, item.id)
        record_staff_event(session, principal, item.clinic_id, "inventory_set", "item", item.id,
                           before={"inventory": before}, after={"inventory": after})
        return after
