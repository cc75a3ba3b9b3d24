"""A clinic's catalog as its admins keep it: items and packages, their price, the channels they are offered on,
and who collects the money.

`collected_by` `clinic` (the default): paid through the clinic's own channel apps, as always. `platform`: paid
through the platform operator's apps (the channel-product model); the clinic redeems, and each month the operator
pays the clinic the item's `purchase_price_fen` of the channel for every redeemed order, so that price is
required on every channel such an item is offered on. The per-channel stock is the inventory (PUT
/items/{id}/inventory), as before.
"""
from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.db.models import Clinic, Item
from app.domain.errors import Conflict, InvalidInput
from app.runtime import Runtime
from app.services.clinics.merchants import CHANNELS, CLINIC, OWNERS, PLATFORM
from app.services.common.audit import record_staff_event
from app.services.common.principals import StaffPrincipal
from app.services.common.staff_scope import clinic_ids_in_scope, one_clinic, scoped_item

KINDS = ("item", "package")
CODE_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
EDITABLE = ("name", "kind", "description", "price_fen", "collected_by", "channels", "purchase_price_fen", "active",
            "requires_attachment")


def item_view(item: Item, clinic_code: str) -> dict:
    return {"id": item.id, "clinic_code": clinic_code, "code": item.code, "kind": item.kind, "name": item.name,
            "description": item.description, "price_fen": item.price_fen, "collected_by": item.collected_by,
            "channels": list(item.channels), "purchase_price_fen": dict(item.purchase_price_fen or {}),
            "active": item.active, "requires_attachment": item.requires_attachment, "created_at": item.created_at}


def _audited(item: Item) -> dict:
    return {name: getattr(item, name) for name in ("code", *EDITABLE)}


def _refuse(field: str, why: str, code: str = "validation_failed") -> InvalidInput:
    return InvalidInput(f"the item is not acceptable: {field} {why}", code, {field: [why]})


def _check(item: Item) -> None:
    """The rules across fields, on the item as it would be saved."""
    if item.kind not in KINDS:
        raise _refuse("kind", f"must be one of {', '.join(KINDS)}")
    if item.collected_by not in OWNERS:
        raise _refuse("collected_by", f"must be one of {', '.join(OWNERS)}")
    channels = list(item.channels or [])
    if not channels or len(set(channels)) != len(channels) or not set(channels) <= set(CHANNELS):
        raise _refuse("channels", f"one or more of {', '.join(CHANNELS)}, each once")
    prices = item.purchase_price_fen or {}
    if not set(prices) <= set(CHANNELS) or any(not isinstance(v, int) or isinstance(v, bool) or v < 0
                                               for v in prices.values()):
        raise _refuse("purchase_price_fen", "maps wechat/alipay to a whole number of fen, 0 or more")
    if item.collected_by == PLATFORM:
        missing = [channel for channel in channels if channel not in prices]
        if missing:
            raise _refuse("purchase_price_fen", f"is required on every channel a platform-collected item is offered "
                                                f"on (missing: {', '.join(missing)})", "purchase_price_required")


def list_items(rt: Runtime, scope: tuple[int, ...], clinic_code: str | None) -> list[dict]:
    """Every item of the user's clinics (or of the one named), inactive ones too."""
    with rt.db.session() as session:
        ids = clinic_ids_in_scope(session, scope, clinic_code)
        rows = session.execute(select(Item, Clinic.code).join(Clinic, Clinic.id == Item.clinic_id)
                               .where(Item.clinic_id.in_(ids)).order_by(Item.clinic_id, Item.id))
        return [item_view(item, code) for item, code in rows]


def create_item(rt: Runtime, principal: StaffPrincipal, clinic_code: str | None, data: dict) -> dict:
    if not CODE_PATTERN.fullmatch(data["code"]):
        raise _refuse("code", "must be 1-64 of A-Z a-z 0-9 _ -")
    try:
        with rt.db.session() as session:
            clinic = one_clinic(session, principal.clinic_ids, clinic_code)
            if session.scalar(select(Item.id).where(Item.clinic_id == clinic.id, Item.code == data["code"])):
                raise Conflict(f"this clinic already has an item {data['code']}", "item_code_taken")
            item = Item(clinic_id=clinic.id, code=data["code"], name=data["name"].strip(),
                        kind=data.get("kind") or "item", description=data.get("description"),
                        price_fen=data["price_fen"], collected_by=data.get("collected_by") or CLINIC,
                        channels=list(data.get("channels") or CHANNELS),
                        purchase_price_fen=data.get("purchase_price_fen") or None,
                        active=data.get("active", True),
                        requires_attachment=data.get("requires_attachment", False))
            _check(item)
            session.add(item)
            session.flush()
            record_staff_event(session, principal, clinic.id, "item_created", "item", item.id, after=_audited(item))
            return item_view(item, clinic.code)
    except IntegrityError:
        raise Conflict(f"this clinic already has an item {data['code']}", "item_code_taken") from None


def update_item(rt: Runtime, principal: StaffPrincipal, item_id: int, data: dict) -> dict:
    """Change the named fields (the code stays). Orders already placed keep the price they were placed at."""
    with rt.db.session() as session:
        item = scoped_item(session, principal.clinic_ids, item_id)
        before = _audited(item)
        for name in EDITABLE:
            if name in data:
                value = data[name]
                setattr(item, name, value.strip() if name == "name" else value)
        if "purchase_price_fen" in data and not data["purchase_price_fen"]:
            item.purchase_price_fen = None
        _check(item)
        session.flush()
        record_staff_event(session, principal, item.clinic_id, "item_updated", "item", item.id, before=before,
                           after=_audited(item))
        return item_view(item, session.get(Clinic, item.clinic_id).code)
