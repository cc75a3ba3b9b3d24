"""HIS writes flagged for a person (not sent within the retry horizon): what they are, what happened to them,
and sending one again once the HIS is fixed. A retry re-drives the write under its own idempotency key (the
HIS records it once however often it is sent) and is audited."""
from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db.models import Clinic, HisOutbox, Order, StatusEvent
from app.domain.errors import Conflict, NotFound
from app.domain.his_writes import HIS_WRITE, HisWriteStatus
from app.runtime import Runtime
from app.services.common.audit import record_staff_event
from app.services.common.principals import StaffPrincipal
from app.services.his import redrive
from app.services.ops.rows import narrowed
from config.logging import mask_text

FLAGGED = HisWriteStatus.FLAGGED
MAX_ROW_ID = 2**31 - 1
NOTE_MAX = 200


def _in_scope(scope: tuple[int, ...] | None) -> list:
    return [] if scope is None else [HisOutbox.clinic_id.in_(scope)]


def _history(session: Session, ids: list[int]) -> dict[int, list[dict]]:
    found: dict[int, list[dict]] = {row_id: [] for row_id in ids}
    if not ids:
        return found
    for event in session.scalars(select(StatusEvent).where(StatusEvent.record_type == HIS_WRITE.name,
                                                           StatusEvent.record_id.in_(ids))
                                 .order_by(StatusEvent.id)):
        found[event.record_id].append({"from_status": event.from_status, "to_status": event.to_status,
                                       "reason": mask_text(event.reason), "actor": event.actor, "at": event.at})
    return found


def _view(row: HisOutbox, clinic_code: str, order_no: str | None, history: list[dict]) -> dict:
    flagged_at = next((e["at"] for e in reversed(history) if e["to_status"] == str(FLAGGED)), None)
    return {"id": row.id, "clinic_code": clinic_code, "kind": row.kind, "status": row.status, "order_no": order_no,
            "idempotency_key": row.idempotency_key, "attempts": row.attempts,
            "last_error": mask_text(row.last_error) if row.last_error else None, "created_at": row.created_at,
            "flagged_at": flagged_at, "history": history}


def _rows(scope: tuple[int, ...] | None):
    return (select(HisOutbox, Clinic.code, Order.order_no).join(Clinic, Clinic.id == HisOutbox.clinic_id)
            .outerjoin(Order, Order.id == HisOutbox.order_id).where(*_in_scope(scope)))


def flagged_writes(rt: Runtime, scope: tuple[int, ...] | None, clinic_code: str | None = None, limit: int = 50,
                   offset: int = 0) -> tuple[list[dict], int]:
    """The flagged HIS writes the caller may see (scope None: every clinic's), newest first; (page, total)."""
    with rt.db.session() as session:
        scope = narrowed(session, scope, clinic_code)
        conditions = [HisOutbox.status == str(FLAGGED), *_in_scope(scope)]
        total = session.scalar(select(func.count(HisOutbox.id)).where(*conditions))
        rows = session.execute(_rows(scope).where(*conditions).order_by(HisOutbox.id.desc())
                               .limit(limit).offset(offset)).all()
        history = _history(session, [row.id for row, _, _ in rows])
        return [_view(row, code, order_no, history[row.id]) for row, code, order_no in rows], total


def retry(rt: Runtime, principal: StaffPrincipal, scope: tuple[int, ...] | None, outbox_id: int,
          note: str | None = None) -> dict:
    """Send a flagged write again (it goes back to pending; the dispatcher sends it); audited."""
    note = (note or "").strip()[:NOTE_MAX] or None
    with rt.db.session() as session:
        found = None
        if 0 < outbox_id <= MAX_ROW_ID:
            found = session.execute(_rows(scope).where(HisOutbox.id == outbox_id).with_for_update(of=HisOutbox)).first()
        if found is None:
            raise NotFound(f"no HIS write {outbox_id} in your clinics", "his_write_not_found")
        row, code, order_no = found
        if row.status != FLAGGED:
            raise Conflict(f"HIS write {outbox_id} is {row.status}: only a flagged write is retried here",
                           "his_write_not_flagged")
        before = {"status": row.status, "attempts": row.attempts, "last_error": row.last_error}
        why = f"retried by {principal.username}" + (f": {note}" if note else "")
        if not redrive(session, row, why, actor=f"staff:{principal.username}"):
            raise Conflict(f"HIS write {outbox_id} was changed meanwhile; look again", "his_write_not_flagged")
        record_staff_event(session, principal, row.clinic_id, "his_write_retried", "his_outbox", row.id,
                           before=before, after={"status": str(HisWriteStatus.PENDING), "kind": row.kind,
                                                 "idempotency_key": row.idempotency_key}, note=note)
        session.flush()
        return _view(row, code, order_no, _history(session, [row.id])[row.id])
