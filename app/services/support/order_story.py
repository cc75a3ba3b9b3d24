"""An order's whole story, for the person answering a patient's call: the order, every status change of it and
of its payments, refunds, refund requests, HIS writes and notifications (one timeline), each payment attempt,
every notification stored for its payments, every HIS write, the refunds with their parts, and the audit events
about any of them.

A notification is in the inbox only once its signature, merchant and amount were verified: a refused one is
answered FAIL and logged with the reason, never stored, so it cannot appear here (`verified` is true for every
row; `reason` is why processing failed, if it did). The logs hold the refusals.
"""
from __future__ import annotations

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from app.db.models import (
    AuditEvent,
    Clinic,
    HisOutbox,
    Item,
    NotificationInbox,
    Order,
    OrderEvent,
    Patient,
    PaymentAttempt,
    Refund,
    RefundRequest,
    StatusEvent,
)
from app.domain import orders as o
from app.domain.errors import NotFound
from app.domain.his_writes import HIS_WRITE
from app.domain.payments import INBOX_NOTIFICATION, PAYMENT_ATTEMPT
from app.domain.refunds import REFUND, REFUND_REQUEST
from app.services.common.presentation import item_ref, patient_ref

# Orders whose money arrived at some point: they have a receipt.
RECEIPTED = o.MONEY_RECEIVED | {o.REFUNDED}
_ORDER_TARGET, _PAYMENT_TARGET, _REFUND_TARGET, _HIS_TARGET = "order", "payment_attempt", "refund", "his_outbox"


def scoped_order(session: Session, scope: tuple[int, ...], order_no: str) -> Order:
    order = session.scalar(select(Order).where(Order.order_no == order_no, Order.clinic_id.in_(scope)))
    if order is None:
        raise NotFound("no such order in your clinics", "order_not_found")
    return order


def order_story(session: Session, order: Order) -> dict:
    attempts = list(session.scalars(select(PaymentAttempt).where(PaymentAttempt.order_id == order.id)
                                    .order_by(PaymentAttempt.id)))
    parts = list(session.scalars(select(Refund).where(Refund.order_id == order.id).order_by(Refund.id)))
    requests = {r.id: r for r in session.scalars(select(RefundRequest).where(or_(
        RefundRequest.order_id == order.id, RefundRequest.id.in_({p.refund_request_id for p in parts}))))}
    writes = list(session.scalars(select(HisOutbox).where(or_(
        HisOutbox.order_id == order.id,
        HisOutbox.refund_request_id.in_(list(requests)))).order_by(HisOutbox.id)))
    out_trade_nos = [a.out_trade_no for a in attempts]
    notes = list(session.scalars(select(NotificationInbox).where(NotificationInbox.out_trade_no.in_(out_trade_nos))
                                 .order_by(NotificationInbox.id))) if out_trade_nos else []
    names = {PAYMENT_ATTEMPT.name: {a.id: a.out_trade_no for a in attempts},
             REFUND.name: {p.id: p.refund_no for p in parts},
             REFUND_REQUEST.name: {r.id: r.refund_request_no for r in requests.values()},
             HIS_WRITE.name: {w.id: w.kind for w in writes},
             INBOX_NOTIFICATION.name: {n.id: f"{n.channel} {n.kind} #{n.id}" for n in notes}}
    return {
        "order": _order_view(session, order),
        "events": _events(session, order, names),
        "payments": [_payment_view(a) for a in attempts],
        "notifications": [_notification_view(n) for n in notes],
        "his_writes": [_write_view(w) for w in writes],
        "refunds": _refund_views(requests, parts, {a.id: a.out_trade_no for a in attempts}),
        "audit": _audit(session, order, attempts, parts, writes),
        "receipt_available": order.status in RECEIPTED,
    }


def _order_view(session: Session, order: Order) -> dict:
    view = {"order_no": order.order_no, "type": order.type, "status": order.status,
            "clinic_code": session.get(Clinic, order.clinic_id).code, "amount_fen": order.amount_fen,
            "refunded_fen": order.refunded_fen, "channel": order.channel, "description": order.description,
            "created_at": order.created_at, "expires_at": order.expires_at, "paid_at": order.paid_at,
            "completed_at": order.completed_at, "closed_at": order.closed_at, "redeemed_at": order.redeemed_at,
            "appointment_at": order.appointment_at, "card_no": order.card_no, "bill_ids": order.bill_ids}
    if order.item_id:
        view["item"] = item_ref(session.get(Item, order.item_id))
    if order.patient_id:
        view["patient"] = patient_ref(session.get(Patient, order.patient_id))
    return view


def _events(session: Session, order: Order, names: dict[str, dict[int, str]]) -> list[dict]:
    events = [{"at": e.at, "record": "order", "ref": order.order_no, "from_status": e.from_status,
               "to_status": e.to_status, "reason": e.reason, "actor": e.actor}
              for e in session.scalars(select(OrderEvent).where(OrderEvent.order_id == order.id))]
    wanted = [and_(StatusEvent.record_type == record_type, StatusEvent.record_id.in_(list(ids)))
              for record_type, ids in names.items() if ids]
    if wanted:
        events += [{"at": e.at, "record": e.record_type, "ref": names[e.record_type][e.record_id],
                    "from_status": e.from_status, "to_status": e.to_status, "reason": e.reason, "actor": e.actor}
                   for e in session.scalars(select(StatusEvent).where(or_(*wanted)))]
    return sorted(events, key=lambda event: event["at"])


def _payment_view(a: PaymentAttempt) -> dict:
    return {"out_trade_no": a.out_trade_no, "channel": a.channel, "status": a.status, "amount_fen": a.amount_fen,
            "channel_trade_no": a.channel_trade_no, "late": a.late, "created_at": a.created_at,
            "paid_at": a.paid_at, "closed_at": a.closed_at, "query_count": a.query_count,
            "next_query_at": a.next_query_at}


def _notification_view(n: NotificationInbox) -> dict:
    return {"id": n.id, "received_at": n.received_at, "channel": n.channel, "kind": n.kind,
            "out_trade_no": n.out_trade_no, "verified": True, "status": n.status, "reason": n.error,
            "attempts": n.attempts, "processed_at": n.processed_at}


def _write_view(w: HisOutbox) -> dict:
    return {"kind": w.kind, "status": w.status, "attempts": w.attempts, "last_error": w.last_error,
            "created_at": w.created_at, "sent_at": w.sent_at, "next_attempt_at": w.next_attempt_at,
            "his_record_id": w.his_record_id}


def _refund_views(requests: dict[int, RefundRequest], parts: list[Refund], out_trade_nos: dict[int, str]) -> list:
    views = []
    for request in sorted(requests.values(), key=lambda r: r.id):
        views.append({
            "refund_request_no": request.refund_request_no, "origin": request.origin,
            "amount_fen": request.amount_fen, "status": request.status, "reason": request.reason,
            "created_at": request.created_at,
            "parts": [{"refund_no": p.refund_no, "out_trade_no": out_trade_nos.get(p.payment_attempt_id),
                       "amount_fen": p.amount_fen, "status": p.status, "channel_refund_id": p.channel_refund_id,
                       "failure_reason": p.failure_reason, "created_at": p.created_at,
                       "succeeded_at": p.succeeded_at}
                      for p in parts if p.refund_request_id == request.id]})
    return views


def _audit(session: Session, order: Order, attempts: list[PaymentAttempt], parts: list[Refund],
           writes: list[HisOutbox]) -> list[dict]:
    targets = [(_ORDER_TARGET, [order.order_no]), (_PAYMENT_TARGET, [a.out_trade_no for a in attempts]),
               (_REFUND_TARGET, [p.refund_no for p in parts]), (_HIS_TARGET, [str(w.id) for w in writes])]
    wanted = [and_(AuditEvent.target_type == kind, AuditEvent.target_id.in_(ids)) for kind, ids in targets if ids]
    events = session.scalars(select(AuditEvent).where(AuditEvent.clinic_id == order.clinic_id, or_(*wanted))
                             .order_by(AuditEvent.id))
    return [{"at": e.at, "actor_type": e.actor_type, "actor_name": e.actor_name, "action": e.action,
             "target_type": e.target_type, "target_id": e.target_id, "before": e.before, "after": e.after,
             "note": e.note} for e in events]
