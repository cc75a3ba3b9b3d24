from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db.base import Base
from app.db.types import UTCDateTime, utcnow


class MpUser(Base):
    """A mini-program user: one openid (WeChat) or user id (Alipay) of one channel app.

    Tokens carry `token_version`; logout increments it, which revokes every token issued before."""

    __tablename__ = "mp_users"
    __table_args__ = (UniqueConstraint("merchant_account_id", "openid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), index=True)
    merchant_account_id: Mapped[int] = mapped_column(ForeignKey("merchant_accounts.id"))
    channel: Mapped[str] = mapped_column(String(16))
    openid: Mapped[str] = mapped_column(String(128))
    unionid: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    token_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Patient(Base):
    """A person treated at the clinic; a user may keep several, and two may share a phone."""

    __tablename__ = "patients"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("mp_users.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str] = mapped_column(String(32), index=True)
    id_number: Mapped[str | None] = mapped_column(String(32))
    relation: Mapped[str | None] = mapped_column(String(32))
    his_patient_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    cards: Mapped[list["Card"]] = relationship(back_populates="patient", order_by="Card.id")


class Card(Base):
    """A HIS patient card bound to one of our patients; the balance lives in the HIS."""

    __tablename__ = "cards"
    __table_args__ = (UniqueConstraint("patient_id", "card_no"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    card_no: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    patient: Mapped[Patient] = relationship(back_populates="cards")
