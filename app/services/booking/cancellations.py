"""Cancelling a paid booking: place released, HIS registration reverted first, full refund.

Serves the patient's cancellation (until a configurable time before the
appointment) and the staff's (any time). The booking moves to `refunding` at
once; the refund part waits until the HIS has reverted the registration, then
goes back along the original channel; the booking ends `refunded`.
"""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.db.models import Order, PaymentAttempt, RefundRequest
from app.db.types import utcnow
from app.domain import ids
from app.domain import orders as o
from app.domain.errors import Conflict, NotFound
from app.domain.his_writes import HisWriteKind, HisWriteStatus
from app.domain.refunds import RefundOrigin, RefundRequestStatus
from app.runtime import Runtime
from app.services.common.audit import record_system_event
from app.services.his import count_writes, record_request_write
from app.services.orders import describe, move
from app.services.refunds import add_refund, refunded_on_attempt


def cancel_paid_booking(rt: Runtime, order_id: int, *, actor: str, reason: str,
                        enforce_patient_deadline: bool) -> dict:
    with rt.db.session() as session:
        order = session.scalar(select(Order).where(Order.id == order_id).with_for_update())
        if order is None:
            raise NotFound("no such order", "order_not_found")
        if order.type != o.BOOKING or order.status not in o.CANCELLABLE_BOOKING:
            raise Conflict(f"a {order.status} {order.type} order cannot be cancelled", "invalid_transition")
        deadline = timedelta(seconds=rt.settings.CANCEL_DEADLINE_S)
        if enforce_patient_deadline and order.appointment_at - utcnow() < deadline:
            raise Conflict(f"bookings can be cancelled online until {rt.settings.CANCEL_DEADLINE_S // 3600} hours "
                           "before the appointment; please contact the clinic", "cancellation_deadline_passed")
        attempt = session.get(PaymentAttempt, order.paid_attempt_id)
        remaining = attempt.amount_fen - refunded_on_attempt(session, attempt.id)
        before = order.status
        if not move(session, order, o.REFUNDING, f"cancelled: {reason}"[:200], actor=actor):
            raise Conflict("the booking changed meanwhile; reload it", "invalid_transition")
        request = RefundRequest(refund_request_no=ids.new_business_no("refund", utcnow()), clinic_id=order.clinic_id,
                                origin=str(RefundOrigin.CANCELLATION), order_id=order.id, amount_fen=remaining,
                                status=str(RefundRequestStatus.PROCESSING), reason=reason[:200])
        session.add(request)
        session.flush()
        registered = count_writes(session, order.id, HisWriteKind.REGISTRATION,
                                  (HisWriteStatus.PENDING, HisWriteStatus.SENT))
        if registered:
            reverts = count_writes(session, order.id, HisWriteKind.REGISTRATION_REVERT)
            record_request_write(session, request, HisWriteKind.REGISTRATION_REVERT, {},
                                 f"{order.order_no}:registration_revert:{reverts + 1}")
        add_refund(session, request, attempt, remaining, wait=bool(registered))
        record_system_event(session, order.clinic_id, "booking_cancelled", "order", order.order_no,
                            before={"status": before}, after={"status": o.REFUNDING,
                                                              "refund_request_no": request.refund_request_no,
                                                              "actor": actor, "reason": reason})
        return describe(session, order)
