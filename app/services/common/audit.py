"""The audit trail: who, when, what, before and after. Rows are only ever inserted."""
from __future__ import annotations

from sqlalchemy.orm import Session

from app.db.models import AuditEvent
from app.services.common.principals import StaffPrincipal
from config.logging import request_id_var


def record_event(session: Session, *, actor_type: str, actor_id: str | None, actor_name: str | None,
                 clinic_id: int | None, action: str, target_type: str | None, target_id, before: dict | None = None,
                 after: dict | None = None, note: str | None = None) -> AuditEvent:
    request_id = request_id_var.get()
    event = AuditEvent(actor_type=actor_type, actor_id=actor_id, actor_name=actor_name, clinic_id=clinic_id,
                       action=action, target_type=target_type, target_id=None if target_id is None else str(target_id),
                       before=before, after=after, note=note, request_id=None if request_id == "-" else request_id)
    session.add(event)
    return event


def record_system_event(session: Session, clinic_id: int | None, action: str, target_type: str, target_id,
                        before: dict | None = None, after: dict | None = None, note: str | None = None) -> AuditEvent:
    return record_event(session, actor_type="system", actor_id=None, actor_name="platform", clinic_id=clinic_id,
                        action=action, target_type=target_type, target_id=target_id, before=before, after=after,
                        note=note)


def record_staff_event(session: Session, principal: StaffPrincipal, clinic_id: int | None, action: str,
                       target_type: str, target_id, before: dict | None = None, after: dict | None = None,
                       note: str | None = None) -> None:
    """An admin write in the audit trail, in the caller's transaction: who, when, what, before and after."""
    staff = principal.actor_type == "staff"
    record_event(session, actor_type=principal.actor_type, actor_id=str(principal.user_id) if staff else None,
                 actor_name=principal.username,
                 clinic_id=clinic_id, action=action, target_type=target_type, target_id=target_id,
                 before=before, after=after, note=note)
