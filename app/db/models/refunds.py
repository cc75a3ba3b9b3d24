from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db.base import Base
from app.db.types import UTCDateTime, utcnow


class RefundRequest(Base):
    """A patient's, a window's or a cancellation's request, split into refunds per payment."""

    __tablename__ = "refund_requests"
    __table_args__ = (
        UniqueConstraint("clinic_id", "origin", "external_request_no"),
        CheckConstraint("amount_fen > 0", name="amount_positive"),
        # Finance's list of staff refunds awaiting approval; what an order's open requests hold back.
        Index("ix_refund_requests_status_clinic_id", "status", "clinic_id"),
        Index("ix_refund_requests_order_id", "order_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    refund_request_no: Mapped[str] = mapped_column(String(32), unique=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), index=True)
    # RefundOrigin: patient, window, cancellation, his_rejected, late_payment, duplicate_payment, admin.
    origin: Mapped[str] = mapped_column(String(32))
    external_request_no: Mapped[str | None] = mapped_column(String(64))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("mp_users.id"))
    card_no: Mapped[str | None] = mapped_column(String(64), index=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    amount_fen: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(24))
    reason: Mapped[str | None] = mapped_column(String(200))
    # A staff refund: who asked, and who of finance approved or rejected it (never the same person).
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision_note: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    parts: Mapped[list[Refund]] = relationship(back_populates="request", order_by="Refund.id")


class Refund(Base):
    """Money going back along one payment; `refund_no` is deterministic and reused on every retry."""

    __tablename__ = "refunds"
    __table_args__ = (
        CheckConstraint("amount_fen > 0", name="amount_positive"),
        Index("ix_refunds_status_next_query_at", "status", "next_query_at"),
        # The transaction list, newest first (and a date range of it).
        Index("ix_refunds_created_at_id", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    refund_no: Mapped[str] = mapped_column(String(64), unique=True)
    refund_request_id: Mapped[int] = mapped_column(ForeignKey("refund_requests.id"), index=True)
    payment_attempt_id: Mapped[int] = mapped_column(ForeignKey("payment_attempts.id"), index=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    amount_fen: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    channel_refund_id: Mapped[str | None] = mapped_column(String(64), index=True)
    failure_code: Mapped[str | None] = mapped_column(String(64))
    failure_reason: Mapped[str | None] = mapped_column(String(500))
    query_count: Mapped[int] = mapped_column(Integer, default=0)
    next_query_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    succeeded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    request: Mapped[RefundRequest] = relationship(back_populates="parts")
