"""Payments: paying an order, following attempts whose outcome is unknown, closing expired orders, channel
notifications (ingested, matched, processed) and what a verified payment means (late and duplicate payments
are refunded through refunds).

What other packages may call:
"""
from app.services.payments import his_kinds  # noqa: F401  (registers recharge and bill_settlement)
from app.services.payments.attempts import (
    PayInstructions,
    close_pending_attempts,
    expire_order,
    pay_order,
    pending_attempts,
    query_attempt,
    settle_attempt_at_channel,
)
from app.services.payments.inquiry import INQUIRY_SOURCE, Inquiry, InquiryOutcome, inquire
from app.services.payments.notifications import IngestResult, ingest, process
from app.services.payments.outcomes import AmountMismatch, record_payment, refund_rejected_order

__all__ = ["INQUIRY_SOURCE", "AmountMismatch", "IngestResult", "Inquiry", "InquiryOutcome", "PayInstructions",
           "close_pending_attempts", "expire_order", "ingest", "inquire", "pay_order", "pending_attempts", "process",
           "query_attempt", "record_payment", "refund_rejected_order", "settle_attempt_at_channel"]
