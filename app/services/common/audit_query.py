"""Reading the audit trail of the user's clinics, newest first (rows are only ever inserted)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from app.db.models import AuditEvent, Clinic
from app.runtime import Runtime
from app.services.common.staff_scope import clinic_ids_in_scope


def list_events(rt: Runtime, scope: tuple[int, ...], *, actor: str | None = None, action: str | None = None,
                since: datetime | None = None, clinic_code: str | None = None, limit: int = 50,
                offset: int = 0) -> dict:
    """`{items, total, limit, offset}`; `actor` is the actor's name (a staff username, `platform`, …)."""
    with rt.db.session() as session:
        clinic_ids = clinic_ids_in_scope(session, scope, clinic_code)
        where = [AuditEvent.clinic_id.in_(clinic_ids)]
        if actor:
            where.append(AuditEvent.actor_name == actor)
        if action:
            where.append(AuditEvent.action == action)
        if since:
            where.append(AuditEvent.at >= since)
        total = session.scalar(select(func.count(AuditEvent.id)).where(*where))
        rows = session.execute(select(AuditEvent, Clinic.code).join(Clinic, Clinic.id == AuditEvent.clinic_id)
                               .where(*where).order_by(AuditEvent.id.desc()).limit(limit).offset(offset))
        items = [{"id": event.id, "at": event.at, "clinic_code": code, "actor_type": event.actor_type,
                  "actor_id": event.actor_id, "actor_name": event.actor_name, "action": event.action,
                  "target_type": event.target_type, "target_id": event.target_id, "before": event.before,
                  "after": event.after, "note": event.note, "request_id": event.request_id}
                 for event, code in rows]
        return {"items": items, "total": total, "limit": limit, "offset": offset}
