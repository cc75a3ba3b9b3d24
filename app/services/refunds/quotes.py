"""What staff see before asking for a refund: how much of the order remains refundable, from which amount
finance must approve, and what the HIS is told first (or why the order cannot be refunded by staff)."""
from __future__ import annotations

from app.domain import orders as o
from app.domain import staff_refunds as rules
from app.domain.errors import Conflict
from app.runtime import Runtime
from app.services.common.principals import StaffPrincipal
from app.services.refunds.staff_refunds import remaining_fen, scoped_order, staff_refunded

ONE_FEN = 1


def refund_quote(rt: Runtime, principal: StaffPrincipal, order_no: str) -> dict:
    with rt.db.session() as session:
        order = scoped_order(session, principal.clinic_ids, order_no)
        remaining = max(0, remaining_fen(session, order))
        counted = staff_refunded(session, order.id)
        threshold = rt.settings.REFUND_APPROVAL_FEN
        refusal, his_write = None, None
        try:
            # Planned for the smallest refund: which HIS write it waits for, or why none is possible.
            kind = rules.plan(order.type, order.status, ONE_FEN, remaining)
            his_write = str(kind) if kind is not None else None
        except Conflict as exc:
            refusal = {"error": exc.code, "message": exc.message}
        before_visit = order.type == o.BOOKING and order.status in rules.BOOKING_BEFORE_VISIT
        return {
            "order_no": order.order_no, "order_type": order.type, "order_status": order.status,
            "amount_fen": order.amount_fen, "refunded_fen": order.refunded_fen, "refundable_fen": remaining,
            # A booking before its visit keeps at least 1 fen: refunding all that remains is its cancellation.
            "max_refund_fen": max(0, remaining - 1) if before_visit else remaining,
            "approval_threshold_fen": threshold, "staff_refunded_fen": counted,
            "approval_needed_above_fen": max(0, threshold - counted),
            "his_write": his_write, "refusal": refusal,
        }
