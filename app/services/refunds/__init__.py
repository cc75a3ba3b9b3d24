"""Refunds: card-balance refunds (a patient's and the window's), refund parts sent and followed along their
payment's channel, and what a settled part means for its request and order.

What other packages may call:
"""
from app.services.refunds import his_kinds  # noqa: F401  (registers refund_hold, refund_restore and the staff refunds')
from app.services.refunds.approvals import approve, get_request, list_requests, reject
from app.services.refunds.card_refunds import describe, live_balance, request_refund
from app.services.refunds.executor import add_refund, advance, apply_notification, refunded_on_attempt
from app.services.refunds.gates import release_parts
from app.services.refunds.mp_refunds import request_patient_refund
from app.services.refunds.quotes import refund_quote
from app.services.refunds.staff_refunds import request_staff_refund

__all__ = ["add_refund", "advance", "apply_notification", "approve", "describe", "get_request", "list_requests",
           "live_balance", "refund_quote", "refunded_on_attempt", "reject", "release_parts", "request_patient_refund",
           "request_refund", "request_staff_refund"]
