"""Support: finding any payment or refund (the transaction search and its export), an order's whole story,
asking the channel now when someone says it was paid, and the payment receipt.

What other packages may call:
"""
from app.services.support.cases import (
    get_order_story,
    patient_inquiry,
    patient_receipt,
    staff_inquiry,
    staff_receipt,
)
from app.services.support.transaction_export import FORMATS as EXPORT_FORMATS
from app.services.support.transaction_export import export_transactions
from app.services.support.transactions import KINDS, MAX_PAGE_DEPTH, STATUSES, list_transactions

__all__ = ["EXPORT_FORMATS", "KINDS", "MAX_PAGE_DEPTH", "STATUSES", "export_transactions", "get_order_story",
           "list_transactions", "patient_inquiry", "patient_receipt", "staff_inquiry", "staff_receipt"]
