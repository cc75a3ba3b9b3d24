"""HIS writes that must happen before a refund's money may leave, and what their outcome means.

A card-balance refund first takes the amount off the card in the HIS
(`refund_hold`); a cancelled booking first has its HIS registration reverted.
The refund parts wait (`waiting`) until that write is recorded, then go to the
channel; a refused hold fails them, so no money leaves that the card does not hold.
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Refund, RefundRequest
from app.db.types import utcnow
from app.domain.refunds import RefundStatus
from app.services.common.status import set_status
from app.services.refunds.outcomes import locked_request, update_request_status

# The HIS's refusal of a hold, in the words of the refund API.
HOLD_REFUSALS = {"insufficient_balance": "refund_exceeds_balance"}


def _waiting_parts(session: Session, request_id: int) -> list[Refund]:
    return list(session.scalars(select(Refund).where(Refund.refund_request_id == request_id,
                                                     Refund.status == RefundStatus.WAITING)
                                .order_by(Refund.id).with_for_update()))


def release_parts(session: Session, request_id: int, why: str) -> int:
    """The request's waiting parts may go to the channel now; how many were released."""
    return sum(set_status(session, part, RefundStatus.PENDING, reason=why, next_query_at=utcnow())
               for part in _waiting_parts(session, request_id))


def fail_parts(session: Session, request: RefundRequest, code: str, reason: str) -> None:
    for part in _waiting_parts(session, request.id):
        set_status(session, part, RefundStatus.FAILED, reason=f"failed: {code}", failure_code=code,
                   failure_reason=reason[:500])
    update_request_status(session, locked_request(session, request.id))
