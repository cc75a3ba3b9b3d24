"""The clinic staff side: admin users and their clinics, login throttling, settlement-type settings,
and the work a staff action leaves for workers (extra-charge bills, HIS registration changes)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base
from app.db.types import UTCDateTime, utcnow


class StaffUser(Base):
    """A person signing in to the admin API; `role` is staff, finance or admin (of their clinics), or operator
    (platform-wide: onboards clinics, their HIS and channel apps, and their admins; no clinics of its own).

    Every token carries the `token_version` it was issued under; logout, a password change and
    deactivation increment it, which revokes every token issued before."""

    __tablename__ = "staff_users"
    __table_args__ = (CheckConstraint("role IN ('staff', 'finance', 'admin', 'operator')", name="role_known"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    token_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class StaffUserClinic(Base):
    """A clinic whose data a staff user may see and change."""

    __tablename__ = "staff_user_clinics"
    __table_args__ = (UniqueConstraint("user_id", "clinic_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"), index=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), index=True)


class LoginThrottle(Base):
    """Failed sign-ins under one username (known or not, so a lockout reveals nothing), counted per
    (username, client address) and, against guessing spread over many addresses, per username."""

    __tablename__ = "login_throttles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # "addr:<username> <address>" or "name:<username>" (the ceiling across addresses).
    key: Mapped[str] = mapped_column(String(200), unique=True)
    username: Mapped[str] = mapped_column(String(100), index=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SettlementTypeSetting(Base):
    """How a clinic's redeemed platform orders of one channel count: the HIS settlement type their
    charge records carry, and whether that type counts in cash flow and in revenue."""

    __tablename__ = "settlement_type_settings"
    __table_args__ = (UniqueConstraint("clinic_id", "channel"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    settlement_type: Mapped[str] = mapped_column(String(32))
    count_in_cash_flow: Mapped[bool] = mapped_column(Boolean)
    count_in_revenue: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ExtraCharge(Base):
    """Something charged at redemption outside the package: an unpaid HIS bill on the patient's card. The
    bill is created by the HIS outbox write (kind `extra_charge`) under the same idempotency key, which
    holds its status and retries; `bill_id` is the bill once the HIS made it."""

    __tablename__ = "extra_charges"
    __table_args__ = (
        CheckConstraint("amount_fen > 0", name="amount_positive"),
        UniqueConstraint("order_id", "seq"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(100))
    amount_fen: Mapped[int] = mapped_column(Integer)
    card_no: Mapped[str] = mapped_column(String(64))
    # The key of its HIS outbox write (his_outbox.idempotency_key) and of the HIS bill.
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    bill_id: Mapped[str | None] = mapped_column(String(64))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RegistrationSync(Base):
    """A booking whose HIS registration must be brought to the patient and time staff chose:
    revert the registration the HIS has, then register anew, one outbox write at a time."""

    __tablename__ = "registration_syncs"
    __table_args__ = (Index("ix_registration_syncs_status_next_attempt_at", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), unique=True)
    # pending (work left), done (the HIS matches), stopped (the order left the booked states, or a
    # HIS write was refused or flagged; `note` says which).
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    note: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
