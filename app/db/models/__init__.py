"""All tables. Importing this package registers every model on Base.metadata."""
from app.db.models.audit import AuditEvent
from app.db.models.catalog import Item, ItemInventory, Slot
from app.db.models.clinic import Clinic, MerchantAccount
from app.db.models.messaging import HisOutbox, NotificationInbox
from app.db.models.orders import IdempotencyRecord, Order, OrderEvent, PaymentAttempt
from app.db.models.people import Card, MpUser, Patient
from app.db.models.refunds import Refund, RefundRequest

__all__ = [
    "AuditEvent", "Card", "Clinic", "HisOutbox", "IdempotencyRecord", "Item", "ItemInventory", "MerchantAccount",
    "MpUser", "NotificationInbox", "Order", "OrderEvent", "Patient", "PaymentAttempt", "Refund", "RefundRequest",
    "Slot",
]
