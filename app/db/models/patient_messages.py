"""Messages to mini-program users (their inbox), the channel apps' message templates, what each user
subscribed to, the push outbox, and the bills a polling clinic's poller has seen."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base
from app.db.types import JsonDoc, UTCDateTime, utcnow


class MpMessage(Base):
    """One message in a mini-program user's inbox: a bill announced on a card they hold.

    Unique per (user, bill, kind): a HIS repeating its announcement changes nothing."""

    __tablename__ = "mp_messages"
    __table_args__ = (UniqueConstraint("user_id", "bill_id", "kind"),
                      Index("ix_mp_messages_user_id_id", "user_id", "id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("mp_users.id"))
    kind: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(200))
    data: Mapped[dict] = mapped_column(JsonDoc)
    """What the message says: bill_id, card_no, bill kind, amount_fen, clinic name."""
    page: Mapped[str | None] = mapped_column(String(300))
    bill_id: Mapped[str] = mapped_column(String(64))
    card_no: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MessageTemplate(Base):
    """A channel app's message template for one purpose, as the operator configured it: the channel's template
    id, the mapping of its keywords to our facts, and the page a message opens."""

    __tablename__ = "message_templates"
    __table_args__ = (UniqueConstraint("merchant_account_id", "purpose"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    merchant_account_id: Mapped[int] = mapped_column(ForeignKey("merchant_accounts.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(32))
    template_id: Mapped[str] = mapped_column(String(128))
    fields: Mapped[dict] = mapped_column(JsonDoc)
    """keyword -> fact (app.domain.messaging.SOURCES)."""
    page: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(100))


class MessageSubscription(Base):
    """What one user granted for one template of their app: each accept allows one message."""

    __tablename__ = "message_subscriptions"
    __table_args__ = (UniqueConstraint("user_id", "template_id"),
                      CheckConstraint("allowance >= 0", name="allowance_not_negative"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("mp_users.id"))
    template_id: Mapped[str] = mapped_column(String(128))
    allowance: Mapped[int] = mapped_column(Integer, default=0)
    last_result: Mapped[str] = mapped_column(String(16))
    """accept | reject | ban as the patient answered, or `refused` when the channel said none was left."""
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MessagePush(Base):
    """A message owed to the channel (the outbox of pushes), recorded with the message, sent by workers."""

    __tablename__ = "message_pushes"
    __table_args__ = (Index("ix_message_pushes_status_next_attempt_at", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), index=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("mp_messages.id"), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("mp_users.id"), index=True)
    merchant_account_id: Mapped[int] = mapped_column(ForeignKey("merchant_accounts.id"))
    template_id: Mapped[str] = mapped_column(String(128))
    page: Mapped[str | None] = mapped_column(String(300))
    data: Mapped[dict] = mapped_column(JsonDoc)
    """The template's data as sent: {keyword: {value}}."""
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(String(500))
    channel_msg_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PolledBill(Base):
    """A bill the poller of a clinic whose HIS cannot announce has seen, so it is announced once."""

    __tablename__ = "polled_bills"
    __table_args__ = (UniqueConstraint("clinic_id", "bill_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"))
    bill_id: Mapped[str] = mapped_column(String(64))
    card_no: Mapped[str] = mapped_column(String(64))
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
