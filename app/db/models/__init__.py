"""All tables. Importing this package registers every model on Base.metadata."""
from app.db.models.attachments import OrderAttachment
from app.db.models.audit import AuditEvent, StatusEvent
from app.db.models.catalog import Item, ItemInventory, Slot
from app.db.models.clinic import Clinic, MerchantAccount
from app.db.models.his_api import HisApiNonce
from app.db.models.messaging import HisOutbox, NotificationInbox
from app.db.models.orders import IdempotencyRecord, Order, OrderEvent, PaymentAttempt
from app.db.models.patient_messages import MessagePush, MessageSubscription, MessageTemplate, MpMessage, PolledBill
from app.db.models.people import Card, CardVerification, MpUser, Patient
from app.db.models.reconciliation import (
    ReconciliationClaim,
    ReconciliationDiscrepancy,
    ReconciliationRepair,
    ReconciliationRun,
)
from app.db.models.refunds import Refund, RefundRequest
from app.db.models.staff import (
    ExtraCharge,
    LoginThrottle,
    RegistrationSync,
    SettlementTypeSetting,
    StaffUser,
    StaffUserClinic,
)
from app.db.models.statements import Coupon, Settlement, SettlementInvoice, Statement, StatementLine

__all__ = [
    "AuditEvent", "Card", "CardVerification", "Clinic", "ExtraCharge", "HisApiNonce", "HisOutbox", "IdempotencyRecord",
    "Item", "ItemInventory",
    "LoginThrottle", "MerchantAccount", "MpUser", "NotificationInbox", "Order", "OrderEvent", "Patient",
    "PaymentAttempt", "Refund", "RefundRequest", "RegistrationSync", "SettlementTypeSetting", "Slot", "StaffUser",
    "StaffUserClinic",
    "Coupon", "Settlement", "SettlementInvoice", "Statement", "StatementLine", "ReconciliationClaim",
    "ReconciliationDiscrepancy", "ReconciliationRepair", "ReconciliationRun", "StatusEvent",
    "MessagePush", "MessageSubscription", "MessageTemplate", "MpMessage", "PolledBill",
    "OrderAttachment",
]
