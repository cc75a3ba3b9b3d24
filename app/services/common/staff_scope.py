"""Finding rows within a staff user's clinics: anything outside them is simply not found."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Clinic, Item, Order
from app.domain import orders as o
from app.domain.errors import InvalidInput, NotFound

SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
MAX_ROW_ID = 2**31 - 1
ORDER_NO_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")


def clinic_ids_in_scope(session: Session, scope: tuple[int, ...], clinic_code: str | None) -> tuple[int, ...]:
    """All the user's clinics, or the one named (NotFound when it is not theirs)."""
    if clinic_code is None:
        return scope
    return (one_clinic(session, scope, clinic_code).id,)


def one_clinic(session: Session, scope: tuple[int, ...], clinic_code: str | None) -> Clinic:
    """The named clinic of the user's, or their only clinic when none is named."""
    if clinic_code is None:
        if len(scope) != 1:
            raise InvalidInput("you work for several clinics: name one with clinic_code", "clinic_code_required")
        return session.get(Clinic, scope[0])
    clinic = session.scalar(select(Clinic).where(Clinic.code == clinic_code, Clinic.id.in_(scope)))
    if clinic is None:
        raise NotFound(f"no clinic {clinic_code} of yours", "clinic_not_found")
    return clinic


def scoped_booking(session: Session, scope: tuple[int, ...], order_no: str, *, lock: bool = False) -> Order:
    """A booking order of the user's clinics (locked for update when asked), or NotFound."""
    order = None
    if ORDER_NO_PATTERN.fullmatch(order_no):
        query = select(Order).where(Order.order_no == order_no, Order.type == o.BOOKING,
                                    Order.clinic_id.in_(scope))
        order = session.scalar(query.with_for_update() if lock else query)
    if order is None:
        raise NotFound("no such booking in your clinics", "order_not_found")
    return order


def scoped_item(session: Session, scope: tuple[int, ...], item_id: int) -> Item:
    item = None
    if 0 < item_id <= MAX_ROW_ID:
        item = session.scalar(select(Item).where(Item.id == item_id, Item.clinic_id.in_(scope)))
    if item is None:
        raise NotFound(f"no item {item_id} in your clinics", "item_not_found")
    return item


def shanghai_date(moment: datetime):
    return moment.astimezone(SHANGHAI).date()
