"""Files staff attach to a booking before or at redemption (a panoramic X-ray), and whether a redemption has
what its item requires.

The type is judged from the bytes (app.domain.images: JPEG or PNG, structurally whole), never from the name or
the browser's word; the size is limited (HPAY_ATTACHMENT_MAX_BYTES). The bytes go to the attachment store
under their sha256 first (stored once however often uploaded), then the row recording who attached what to
which order: a crash between the two leaves an unreferenced file, never a row without its file. Reading one
back is scoped to the user's clinics like every booking.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db.models import Item, Order, OrderAttachment, StaffUser
from app.db.types import utcnow
from app.domain import orders as o
from app.domain.errors import Conflict, InvalidInput, NotFound, TooLarge, Unavailable
from app.domain.images import sniff
from app.runtime import Runtime
from app.services.common.audit import record_staff_event
from app.services.common.principals import StaffPrincipal
from app.services.common.staff_scope import MAX_ROW_ID, scoped_booking
from app.storage import StoredFileMissing, StoreUnavailable

log = logging.getLogger(__name__)

KINDS = ("panoramic_xray", "xray", "photo", "other")
# Before the visit and at it (also just after, while the patient is still there).
ATTACHABLE = frozenset({o.PAID, o.BOOKED, o.NO_SHOW, o.RESCHEDULED, o.REDEEMED})
MAX_NO_ATTACHMENT_REASON = 200


@dataclass(frozen=True)
class StoredAttachment:
    id: int
    mime: str
    size_bytes: int
    filename: str
    chunks: Iterator[bytes]


def attachment_view(session: Session, row: OrderAttachment) -> dict:
    user = session.get(StaffUser, row.uploaded_by) if row.uploaded_by else None
    return {"id": row.id, "kind": row.kind, "mime": row.mime, "size_bytes": row.size_bytes, "sha256": row.sha256,
            "width": row.width, "height": row.height, "uploaded_by": user.username if user else None,
            "uploaded_at": row.uploaded_at}


def upload(rt: Runtime, principal: StaffPrincipal, order_no: str, kind: str, data: bytes) -> dict:
    limit = rt.settings.ATTACHMENT_MAX_BYTES
    if len(data) > limit:
        raise TooLarge(f"an attachment may be at most {limit} bytes", "attachment_too_large",
                       details={"max_bytes": limit})
    if kind not in KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(KINDS)}", "invalid_kind")
    image = sniff(data)
    with rt.db.session() as session:
        _require_attachable(scoped_booking(session, principal.clinic_ids, order_no))
    try:
        sha256 = rt.attachment_store().put(data, image.mime)
    except StoreUnavailable as exc:
        log.error("attachment store: %s", exc)
        raise Unavailable("the attachment store did not answer; try again", "attachment_store_unavailable") \
            from None
    with rt.db.session() as session:
        order = scoped_booking(session, principal.clinic_ids, order_no, lock=True)
        _require_attachable(order)
        row = OrderAttachment(order_id=order.id, clinic_id=order.clinic_id, kind=kind, sha256=sha256,
                              size_bytes=len(data), mime=image.mime, width=image.width, height=image.height,
                              uploaded_by=principal.user_id, uploaded_at=utcnow())
        session.add(row)
        session.flush()
        record_staff_event(session, principal, order.clinic_id, "attachment_uploaded", "order", order.order_no,
                           after={"attachment_id": row.id, "kind": kind, "sha256": sha256, "size_bytes": len(data),
                                  "mime": image.mime})
        return attachment_view(session, row)


def _require_attachable(order: Order) -> None:
    if order.status not in ATTACHABLE:
        raise Conflict(f"a {order.status} booking takes no attachments", "attachment_not_allowed",
                       details={"status": order.status})


def list_attachments(rt: Runtime, scope: tuple[int, ...], order_no: str) -> list[dict]:
    with rt.db.session() as session:
        order = scoped_booking(session, scope, order_no)
        rows = session.scalars(select(OrderAttachment).where(OrderAttachment.order_id == order.id)
                               .order_by(OrderAttachment.id))
        return [attachment_view(session, row) for row in rows]


def open_attachment(rt: Runtime, scope: tuple[int, ...], order_no: str, attachment_id: int) -> StoredAttachment:
    with rt.db.session() as session:
        order = scoped_booking(session, scope, order_no)
        row = None
        if 0 < attachment_id <= MAX_ROW_ID:
            row = session.scalar(select(OrderAttachment).where(OrderAttachment.id == attachment_id,
                                                               OrderAttachment.order_id == order.id))
        if row is None:
            raise NotFound("no such attachment of this booking", "attachment_not_found")
        extension = "jpg" if row.mime == "image/jpeg" else "png"
        meta = (row.id, row.mime, row.size_bytes, f"{order.order_no}-{row.id}-{row.kind}.{extension}", row.sha256)
    attachment_id, mime, size, filename, sha256 = meta
    try:
        chunks = rt.attachment_store().stream(sha256)
    except StoredFileMissing:
        log.error("attachment %s of %s: its file %s is missing from the store", attachment_id, order_no, sha256)
        raise NotFound("the attachment's file is missing from the store", "attachment_file_missing") from None
    except StoreUnavailable:
        raise Unavailable("the attachment store did not answer; try again", "attachment_store_unavailable") \
            from None
    return StoredAttachment(attachment_id, mime, size, filename, chunks)


def attachment_check(session: Session, order: Order, no_attachment_reason: str | None) -> dict:
    """Redeeming an item that requires an attachment needs one on the order or a stated reason why there is none
    (422 `attachment_required`); returns what the redemption's audit records of it."""
    count = session.scalar(select(func.count(OrderAttachment.id)).where(OrderAttachment.order_id == order.id))
    reason = (no_attachment_reason or "").strip() or None
    item = session.get(Item, order.item_id) if order.item_id else None
    required = bool(item and item.requires_attachment)
    if required and not count and reason is None:
        raise InvalidInput(f"{item.name} needs an attachment (e.g. the X-ray) before it is redeemed, or a "
                           "no_attachment_reason", "attachment_required")
    return {"attachment_required": required, "attachments": count,
            "no_attachment_reason": reason if not count else None}
