"""What a row of work belongs to: its clinic (who may see it) and its order (what a log line names).

Work rows are of several tables (the dispatcher's lease specs name them, and the push outbox will add one):
each is tied to a clinic directly (`clinic_id`), by code (the inbox's `clinic_code`), or through its order
(`order_id`). A table tied to none of these belongs to no clinic: platform-wide only.
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Clinic, NotificationInbox, Order, PaymentAttempt
from app.domain.errors import NotFound
from app.services.common.staff_scope import clinic_ids_in_scope


def clinic_ids_of(session: Session, model: type, ids: list[int]) -> dict[int, int]:
    """{row id: clinic id} for the rows of `model` found (a row of no clinic is left out)."""
    if not ids:
        return {}
    if hasattr(model, "clinic_id"):
        query = select(model.id, model.clinic_id).where(model.id.in_(ids))
    elif hasattr(model, "clinic_code"):
        query = select(model.id, Clinic.id).join(Clinic, Clinic.code == model.clinic_code).where(model.id.in_(ids))
    elif hasattr(model, "order_id"):
        query = select(model.id, Order.clinic_id).join(Order, Order.id == model.order_id).where(model.id.in_(ids))
    else:
        return {}
    return {row_id: clinic_id for row_id, clinic_id in session.execute(query) if clinic_id is not None}


def order_no_of(session: Session, model: type, row_id: int) -> str | None:
    """The order number a row of work is about, when it is about one."""
    if model is Order:
        return session.scalar(select(Order.order_no).where(Order.id == row_id))
    if model is NotificationInbox:
        return session.scalar(select(Order.order_no).join(PaymentAttempt, PaymentAttempt.order_id == Order.id)
                              .join(NotificationInbox, NotificationInbox.out_trade_no == PaymentAttempt.out_trade_no)
                              .where(NotificationInbox.id == row_id).limit(1))
    if hasattr(model, "order_id"):
        return session.scalar(select(Order.order_no).join(model, model.order_id == Order.id)
                              .where(model.id == row_id))
    return None


def narrowed(session: Session, scope: tuple[int, ...] | None, clinic_code: str | None) -> tuple[int, ...] | None:
    """The scope narrowed to the clinic named (NotFound when it is not the caller's); None stays platform-wide
    unless a clinic is named."""
    if clinic_code is None:
        return scope
    if scope is not None:
        return clinic_ids_in_scope(session, scope, clinic_code)
    clinic_id = session.scalar(select(Clinic.id).where(Clinic.code == clinic_code))
    if clinic_id is None:
        raise NotFound(f"no clinic {clinic_code}", "clinic_not_found")
    return (clinic_id,)
