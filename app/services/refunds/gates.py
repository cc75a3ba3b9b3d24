"""HIS writes that must happen before a refund's money may leave, and what their outcome means.

A card-balance refund first takes the amount off the card in the HIS
(`refund_hold`); a cancelled booking first has its HIS registration reverted.
The refund parts wait (`waiting`) until that write is recorded, then go to the
channel; a refused hold fails them, so no money leaves that the card does not hold.
"""
from __future__ import annotations

import logging

from sqlalchemy import update
from sqlalchemy.orm import Session

from app.db.models import HisOutbox, Refund, RefundRequest
from app.db.types import utcnow
from app.services.common.audit import record_system_event

log = logging.getLogger(__name__)

WAITING = "waiting"
# The HIS's refusal of a hold, in the words of the refund API.
HOLD_REFUSALS = {"insufficient_balance": "refund_exceeds_balance"}


def release_parts(session: Session, request_id: int) -> int:
    return session.execute(
        update(Refund).where(Refund.refund_request_id == request_id, Refund.status == WAITING)
        .values(status="pending", next_query_at=utcnow(), updated_at=utcnow())
        .execution_options(synchronize_session=False)).rowcount


def fail_parts(session: Session, request: RefundRequest, code: str, reason: str) -> None:
    from app.services.refunds.outcomes import locked_request, update_request_status

    session.execute(
        update(Refund).where(Refund.refund_request_id == request.id, Refund.status == WAITING)
        .values(status="failed", failure_code=code, failure_reason=reason[:500], updated_at=utcnow())
        .execution_options(synchronize_session=False))
    update_request_status(session, locked_request(session, request.id))


def on_write_settled(session: Session, row: HisOutbox, ok: bool, code: str | None) -> None:
    request = session.get(RefundRequest, row.refund_request_id)
    if row.kind == "refund_hold":
        if ok:
            release_parts(session, request.id)
            return
        refusal = HOLD_REFUSALS.get(code, code or "his_rejected")
        fail_parts(session, request, refusal, f"the HIS refused to take the amount off the card: {code}")
        record_system_event(session, request.clinic_id, "refund_hold_refused", "refund_request",
                            request.refund_request_no, after={"code": code, "amount_fen": request.amount_fen})
        return
    if row.kind == "registration_revert":
        if not ok:
            # Nothing active to revert (never registered, or reverted already): the refund may go.
            log.warning("registration revert %s refused (%s); refunding anyway", row.idempotency_key, code)
        release_parts(session, request.id)
        return
    if row.kind == "refund_restore" and not ok:
        log.error("HIS refused to restore %s: %s", row.idempotency_key, code)
        record_system_event(session, request.clinic_id, "refund_restore_refused", "refund_request",
                            request.refund_request_no, after={"code": code, "payload": row.payload})
