from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db.base import Base
from app.db.types import JsonDoc, UTCDateTime, utcnow


class Order(Base):
    """A booking, card top-up or visit-bill payment; its status moves only through the domain's transitions."""

    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint("amount_fen > 0", name="amount_positive"),
        CheckConstraint("refunded_fen >= 0 AND refunded_fen <= amount_fen", name="refunded_within_amount"),
        Index("ix_orders_status_expires_at", "status", "expires_at"),
        # A patient's orders: the transaction search by phone or card finds patients first.
        Index("ix_orders_patient_id", "patient_id"),
        Index("ix_orders_active_booking_key", "active_booking_key", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_no: Mapped[str] = mapped_column(String(32), unique=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("mp_users.id"), index=True)
    type: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(24))
    channel: Mapped[str] = mapped_column(String(16))
    amount_fen: Mapped[int] = mapped_column(Integer)
    refunded_fen: Mapped[int] = mapped_column(Integer, default=0)
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"))
    card_no: Mapped[str | None] = mapped_column(String(64), index=True)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id"))
    slot_id: Mapped[int | None] = mapped_column(ForeignKey("slots.id"))
    bill_ids: Mapped[list | None] = mapped_column(JsonDoc)
    # The payment attempt whose money the order kept (others paid late or twice are refunded).
    paid_attempt_id: Mapped[int | None] = mapped_column(Integer)
    # A platform-collected booking: the item's channel purchase price when the order was made (what the platform
    # pays the clinic once it is redeemed; a later price change does not move it). NULL for the clinic's own.
    purchase_price_fen: Mapped[int | None] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(String(200))
    appointment_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    redeemed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Lease for the expiry job, so one expired order is handled by one worker at a time.
    next_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # `patient:item:Asia/Shanghai day of the appointment` while a booking holds its place, NULL otherwise: the
    # unique index lets one patient hold one booking of an item per day, whatever the concurrency.
    active_booking_key: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    payments: Mapped[list[PaymentAttempt]] = relationship(back_populates="order", order_by="PaymentAttempt.id")


class OrderEvent(Base):
    """Every status change of an order, as the transition function recorded it."""

    __tablename__ = "order_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    from_status: Mapped[str] = mapped_column(String(24))
    to_status: Mapped[str] = mapped_column(String(24))
    reason: Mapped[str] = mapped_column(String(200))
    actor: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PaymentAttempt(Base):
    """One try to pay an order on one channel; `out_trade_no` is what the channel sees."""

    __tablename__ = "payment_attempts"
    __table_args__ = (
        CheckConstraint("amount_fen > 0", name="amount_positive"),
        Index("ix_payment_attempts_status_next_query_at", "status", "next_query_at"),
        # The transaction list, newest first (and a date range of it).
        Index("ix_payment_attempts_created_at_id", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    merchant_account_id: Mapped[int] = mapped_column(ForeignKey("merchant_accounts.id"))
    channel: Mapped[str] = mapped_column(String(16))
    out_trade_no: Mapped[str] = mapped_column(String(64), unique=True)
    amount_fen: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    prepay_id: Mapped[str | None] = mapped_column(String(128))
    channel_trade_no: Mapped[str | None] = mapped_column(String(64), index=True)
    payer_id: Mapped[str | None] = mapped_column(String(128))
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A payment that arrived after we closed its order; listed for finance.
    late: Mapped[bool] = mapped_column(default=False)
    query_count: Mapped[int] = mapped_column(Integer, default=0)
    next_query_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    order: Mapped[Order] = relationship(back_populates="payments")


class IdempotencyRecord(Base):
    """The first answer to a POST sent with an Idempotency-Key, replayed for repeats."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("scope", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[str] = mapped_column(String(100))
    key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
