"""The clinic's bookable items and their time slots, as the mini-program sees them.

A user sees the items their app sells: a clinic's own app the clinic-collected ones, the platform's app the
platform-collected ones (each item is paid through the apps of whoever collects its money). A slot is on offer
once released (`release_at` passed, or none) and while not closed.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta

from sqlalchemy import BindParameter, ColumnElement, false, or_, select
from sqlalchemy.orm import Session

from app.db.models import Item, ItemInventory, Slot
from app.db.types import utcnow
from app.domain.errors import NotFound
from app.runtime import Runtime
from app.services.clinics.merchants import CLINIC, user_account
from app.services.common.presentation import catalog_item, catalog_slot
from app.services.common.principals import MpPrincipal

# Business dates are Asia/Shanghai dates; China keeps no daylight saving time.
from app.services.common.staff_scope import MAX_ROW_ID, SHANGHAI


def require_clinic_item(session: Session, clinic_id: int, item_id: int) -> Item:
    """An active item of this clinic, or NotFound `item_not_found` (inactive items are off the catalog)."""
    return clinic_item_or_refusal(session.scalar(select(Item).where(*clinic_item_criteria(clinic_id, item_id))),
                                  item_id)


def clinic_item_criteria(clinic_id: int | BindParameter, item_id: int | BindParameter) -> list[ColumnElement[bool]]:
    """What makes `item_id` an active item of this clinic, for a query of the caller's (or `require_clinic_item`).
    The ids may be bound parameters of a statement built once; a value passed with it is then the caller's to
    keep in range."""
    if isinstance(item_id, int) and not 0 < item_id <= MAX_ROW_ID:
        return [false()]
    return [Item.id == item_id, Item.clinic_id == clinic_id, Item.active.is_(True)]


def clinic_item_or_refusal(item: Item | None, item_id: int) -> Item:
    if item is None:
        raise NotFound(f"this clinic has no item {item_id}", "item_not_found")
    return item


def _collector(session: Session, principal: MpPrincipal) -> str:
    account = user_account(session, principal.user_id)
    return account.owner if account is not None else CLINIC


def list_items(rt: Runtime, principal: MpPrincipal) -> list[dict]:
    """`[{id, code, kind, name, description, price_fen, channels[]}]`: the items this user's app sells, with the
    channels they are offered on and have stock for."""
    with rt.db.session() as session:
        items = session.scalars(select(Item).where(Item.clinic_id == principal.clinic_id, Item.active.is_(True),
                                                   Item.collected_by == _collector(session, principal))
                                .order_by(Item.id)).all()
        stocked: dict[int, set[str]] = defaultdict(set)
        rows = (select(ItemInventory.item_id, ItemInventory.channel)
                .join(Item, Item.id == ItemInventory.item_id)
                .where(Item.clinic_id == principal.clinic_id, ItemInventory.quantity > 0))
        for item_id, channel in session.execute(rows):
            stocked[item_id].add(channel)
        return [catalog_item(item, sorted(set(item.channels) & stocked[item.id])) for item in items]


def list_slots(rt: Runtime, principal: MpPrincipal, item_id: int, day: date) -> list[dict]:
    """The item's slots on offer starting on that Asia/Shanghai date: `[{id, starts_at, ends_at, remaining}]`,
    times as aware Asia/Shanghai datetimes."""
    starts = datetime.combine(day, time.min, SHANGHAI)
    with rt.db.session() as session:
        item = require_clinic_item(session, principal.clinic_id, item_id)
        slots = session.scalars(select(Slot).where(Slot.item_id == item.id, Slot.starts_at >= starts,
                                                   Slot.starts_at < starts + timedelta(days=1),
                                                   Slot.closed.is_(False),
                                                   or_(Slot.release_at.is_(None), Slot.release_at <= utcnow()))
                                .order_by(Slot.starts_at))
        return [catalog_slot(slot) for slot in slots]
