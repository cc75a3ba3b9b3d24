"""Recording a write owed to the HIS, in the caller's transaction: the state change and the write it causes
commit together or not at all.

Each row carries an idempotency key the HIS honours, so sending it again after a timeout or a crash never
writes twice. Nothing here sends: the dispatcher (or a caller that wants the answer now) hands the row to
`delivery.send` once the transaction committed. A leaf: it imports no other service.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db.models import HisOutbox, Order, RefundRequest
from app.db.types import utcnow
from app.domain.his_writes import HisWriteKind, HisWriteStatus


def record_write(session: Session, *, clinic_id: int, kind: HisWriteKind, key: str, payload: dict,
                 order_id: int | None = None, refund_request_id: int | None = None,
                 send_after: datetime | None = None) -> HisOutbox:
    """A pending write, due at `send_after` (default now)."""
    row = HisOutbox(clinic_id=clinic_id, order_id=order_id, refund_request_id=refund_request_id, kind=str(kind),
                    idempotency_key=key, payload=payload, status=str(HisWriteStatus.PENDING), attempts=0,
                    next_attempt_at=send_after or utcnow())
    session.add(row)
    return row


def record_order_write(session: Session, order: Order, kind: HisWriteKind, payload: dict, *, key_suffix: str = "",
                       send_after: datetime | None = None) -> HisOutbox:
    """A write about an order, keyed `<order_no>:<kind><key_suffix>`."""
    return record_write(session, clinic_id=order.clinic_id, order_id=order.id, kind=kind,
                        key=f"{order.order_no}:{kind}{key_suffix}", payload=payload, send_after=send_after)


def record_request_write(session: Session, request: RefundRequest, kind: HisWriteKind, payload: dict,
                         key: str) -> HisOutbox:
    """A write on behalf of a refund request (a card hold or restore, a cancellation's revert); its outcome
    releases or fails the request's refund parts."""
    return record_write(session, clinic_id=request.clinic_id, order_id=request.order_id,
                        refund_request_id=request.id, kind=kind, key=key, payload=payload)


def order_writes(session: Session, order_id: int, kinds: tuple[HisWriteKind, ...]) -> list[HisOutbox]:
    """The order's writes of these kinds, in the order they were recorded."""
    return list(session.scalars(select(HisOutbox).where(HisOutbox.order_id == order_id,
                                                        HisOutbox.kind.in_([str(k) for k in kinds]))
                                .order_by(HisOutbox.id)))


def count_writes(session: Session, order_id: int, kind: HisWriteKind,
                 statuses: tuple[HisWriteStatus, ...] | None = None) -> int:
    query = select(func.count(HisOutbox.id)).where(HisOutbox.order_id == order_id, HisOutbox.kind == str(kind))
    if statuses is not None:
        query = query.where(HisOutbox.status.in_([str(s) for s in statuses]))
    return session.scalar(query)


def request_write(session: Session, request_id: int, kind: HisWriteKind) -> HisOutbox | None:
    return session.scalar(select(HisOutbox).where(HisOutbox.refund_request_id == request_id,
                                                  HisOutbox.kind == str(kind)).order_by(HisOutbox.id).limit(1))
