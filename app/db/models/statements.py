from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base
from app.db.types import UTCDateTime, utcnow


class Settlement(Base):
    """One batch of checked statements of a clinic, settled in cash (against an invoice) or as a coupon."""

    __tablename__ = "settlements"
    __table_args__ = (
        CheckConstraint("amount_fen > 0", name="amount_positive"),
        CheckConstraint("invoice_amount_fen IS NULL OR invoice_amount_fen >= 0", name="invoice_not_negative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), index=True)
    method: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(24))
    amount_fen: Mapped[int] = mapped_column(Integer)
    invoice_type: Mapped[str | None] = mapped_column(String(16))
    invoice_amount_fen: Mapped[int | None] = mapped_column(Integer)
    bank_account_name: Mapped[str | None] = mapped_column(String(200))
    bank_name: Mapped[str | None] = mapped_column(String(200))
    bank_account_no: Mapped[str | None] = mapped_column(String(64))
    # The Asia/Shanghai date of settlement; a coupon's three years run from it.
    settled_on: Mapped[date] = mapped_column(Date)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The operator's bank transfer of a cash settlement: the bank's serial number, when it was paid, by whom.
    bank_serial_no: Mapped[str | None] = mapped_column(String(64))
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    paid_by: Mapped[str | None] = mapped_column(String(100))


class SettlementInvoice(Base):
    """The invoice the clinic makes out to the platform for a cash settlement (type and amount are on the
    settlement): the buyer's title and tax number it must carry, and whether it has arrived."""

    __tablename__ = "settlement_invoices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    settlement_id: Mapped[int] = mapped_column(ForeignKey("settlements.id"), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    tax_no: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    invoice_no: Mapped[str | None] = mapped_column(String(64))
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    received_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Coupon(Base):
    """The coupon of equal value a coupon settlement issues; single use, valid for three years."""

    __tablename__ = "settlement_coupons"
    __table_args__ = (CheckConstraint("value_fen > 0", name="value_positive"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    settlement_id: Mapped[int] = mapped_column(ForeignKey("settlements.id"), unique=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), index=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    value_fen: Mapped[int] = mapped_column(Integer)
    issued_on: Mapped[date] = mapped_column(Date)
    expires_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    used_by: Mapped[str | None] = mapped_column(String(100))


class Statement(Base):
    """A clinic's monthly statement of one channel's redeemed orders: generated, checked, then settled once."""

    __tablename__ = "statements"
    __table_args__ = (
        UniqueConstraint("clinic_id", "channel", "month"),
        CheckConstraint("line_count >= 0 AND total_fen >= 0", name="totals_not_negative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), index=True)
    month: Mapped[str] = mapped_column(String(7))
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    line_count: Mapped[int] = mapped_column(Integer)
    total_fen: Mapped[int] = mapped_column(Integer)
    generated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    generated_by: Mapped[str] = mapped_column(String(100))
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    checked_by: Mapped[str | None] = mapped_column(String(100))
    settlement_id: Mapped[int | None] = mapped_column(ForeignKey("settlements.id"), index=True)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class StatementLine(Base):
    """One redeemed order as the statement shows it: a snapshot taken at generation, patient masked."""

    __tablename__ = "statement_lines"
    __table_args__ = (UniqueConstraint("statement_id", "order_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    statement_id: Mapped[int] = mapped_column(ForeignKey("statements.id"), index=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    order_no: Mapped[str] = mapped_column(String(32))
    out_trade_no: Mapped[str | None] = mapped_column(String(64))
    channel_trade_no: Mapped[str | None] = mapped_column(String(64))
    patient_name: Mapped[str] = mapped_column(String(100))
    patient_phone: Mapped[str | None] = mapped_column(String(32))
    item_name: Mapped[str] = mapped_column(String(200))
    appointment_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    redeemed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    channel: Mapped[str] = mapped_column(String(16))
    # What the channel paid for the item; equal to the order amount until channels buy at a price of their own.
    purchase_price_fen: Mapped[int] = mapped_column(Integer)
    amount_fen: Mapped[int] = mapped_column(Integer)
