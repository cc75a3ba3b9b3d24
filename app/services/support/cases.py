"""Support's use cases on one order: its story, asking the channel now, and its receipt; for staff within their
clinics (anything else is not found) and for a patient on their own orders.

Asking the channel is recorded in the audit trail (who asked, what the channel said), so the story shows it.
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app.db.models import Order
from app.domain.errors import NotFound, Unavailable
from app.runtime import Runtime
from app.services.common.audit import record_event, record_staff_event
from app.services.common.principals import MpPrincipal, StaffPrincipal
from app.services.orders import describe
from app.services.payments import Inquiry, InquiryOutcome, inquire
from app.services.support.order_story import order_story, scoped_order
from app.services.support.receipts import Receipt, render_receipt

INQUIRY_ACTION = "order_inquiry"
INQUIRY_RETRY_AFTER_S = 10
HINTS = {
    InquiryOutcome.PAID_NOW: "支付渠道确认已付款，订单已更新 The channel confirmed the payment; the order is updated.",
    InquiryOutcome.ALREADY_PAID: "这笔付款已经到账 The payment had already arrived.",
    InquiryOutcome.NOT_PAID: "支付渠道暂未收到这笔付款，如已扣款请稍后再查 The channel has not received this payment "
                             "(yet); if money left your account, ask again in a few minutes.",
    InquiryOutcome.NO_PAYMENT: "这个订单还没有发起支付 This order was never sent to a payment channel.",
}


def _inquiry_view(inquiry: Inquiry) -> dict:
    return {"outcome": str(inquiry.outcome), "asked": inquiry.asked, "hint": HINTS[inquiry.outcome]}


def _refuse_unanswered(inquiry: Inquiry) -> None:
    if inquiry.outcome == InquiryOutcome.UNKNOWN:
        raise Unavailable("the payment channel did not answer; try again shortly", "channel_unavailable",
                          retry_after_s=INQUIRY_RETRY_AFTER_S)


def _audit_after(inquiry: Inquiry) -> dict:
    return {"outcome": str(inquiry.outcome), "asked": inquiry.asked, "recorded": list(inquiry.recorded)}


# --- staff ----------------------------------------------------------------------------------------------

def get_order_story(rt: Runtime, scope: tuple[int, ...], order_no: str) -> dict:
    with rt.db.session() as session:
        return order_story(session, scoped_order(session, scope, order_no))


def staff_inquiry(rt: Runtime, principal: StaffPrincipal, order_no: str) -> dict:
    """Ask the channel now about an order of the user's clinics; answers the story with `inquiry`."""
    with rt.db.session() as session:
        order = scoped_order(session, principal.clinic_ids, order_no)
        order_id, clinic_id = order.id, order.clinic_id
    inquiry = inquire(rt, order_id)
    with rt.db.session() as session:
        record_staff_event(session, principal, clinic_id, INQUIRY_ACTION, "order", order_no,
                           after=_audit_after(inquiry))
    _refuse_unanswered(inquiry)
    with rt.db.session() as session:
        return {**order_story(session, session.get(Order, order_id)), "inquiry": _inquiry_view(inquiry)}


def staff_receipt(rt: Runtime, scope: tuple[int, ...], order_no: str) -> Receipt:
    with rt.db.session() as session:
        return render_receipt(session, scoped_order(session, scope, order_no))


# --- the patient ----------------------------------------------------------------------------------------

def _own_order(session, principal: MpPrincipal, order_no: str) -> Order:
    order = session.scalar(select(Order).where(Order.order_no == order_no, Order.user_id == principal.user_id)
                           .options(selectinload(Order.payments)))
    if order is None:
        raise NotFound("no such order", "order_not_found")
    return order


def patient_inquiry(rt: Runtime, principal: MpPrincipal, order_no: str) -> dict:
    """"I paid but it does not show": ask the channel now; answers the order with `inquiry`."""
    with rt.db.session() as session:
        order = _own_order(session, principal, order_no)
        order_id, clinic_id = order.id, order.clinic_id
    inquiry = inquire(rt, order_id)
    with rt.db.session() as session:
        record_event(session, actor_type="mp_user", actor_id=str(principal.user_id), actor_name=None,
                     clinic_id=clinic_id, action=INQUIRY_ACTION, target_type="order", target_id=order_no,
                     after=_audit_after(inquiry))
    _refuse_unanswered(inquiry)
    with rt.db.session() as session:
        return {**describe(session, _own_order(session, principal, order_no)), "inquiry": _inquiry_view(inquiry)}


def patient_receipt(rt: Runtime, principal: MpPrincipal, order_no: str) -> Receipt:
    with rt.db.session() as session:
        return render_receipt(session, _own_order(session, principal, order_no))
