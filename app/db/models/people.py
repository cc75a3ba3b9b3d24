from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

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


def phone_last4(phone: str | None) -> str | None:
    return phone[-4:] if phone else None


def _phone_last4_default(context) -> str | None:
    return phone_last4(context.get_current_parameters().get("phone"))


class Patient(Base):
    """A person treated at the clinic; a user may keep several, and two may share a phone.

    `phone_last4` is what staff search by ("the last 4 digits of your phone"): kept with the phone (a default
    for every insert, Core ones too, and a validator for ORM changes), indexed per clinic, because a suffix
    match on the phone itself cannot use an index."""

    __tablename__ = "patients"
    __table_args__ = (Index("ix_patients_clinic_id_phone_last4", "clinic_id", "phone_last4"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("mp_users.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str] = mapped_column(String(32), index=True)
    phone_last4: Mapped[str | None] = mapped_column(String(4), default=_phone_last4_default)
    id_number: Mapped[str | None] = mapped_column(String(32))
    relation: Mapped[str | None] = mapped_column(String(32))
    his_patient_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    cards: Mapped[list[Card]] = relationship(back_populates="patient", order_by="Card.id")

    @validates("phone")
    def _keep_last4(self, _name: str, phone: str) -> str:
        self.phone_last4 = phone_last4(phone)
        return phone


class Card(Base):
    """A HIS patient card bound to one of our patients; the balance lives in the HIS.

    `verified_at` is when the binding was proven: the holder's SMS code, or a card the HIS opened for this
    very patient (mini-program or front desk). NULL marks a binding made under the old name-only rule: it
    must be verified again before it is read, refunded or paid into. New rows default to now because
    every path that creates one has proven it; only the migration leaves NULLs.
    """

    __tablename__ = "cards"
    __table_args__ = (UniqueConstraint("patient_id", "card_no"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    card_no: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow)

    patient: Mapped[Patient] = relationship(back_populates="cards")


class CardVerification(Base):
    """A one-time code for binding a card to a patient: only its keyed hash is kept.

    A request for a card that does not exist or whose holder is someone else gets a row too
    (`holder_matched` false, a code nobody was sent), so that every later try fails the same way.
    Status: pending -> used | superseded (a newer request) | failed (the provider refused to send).
    Expiry and spent tries are read from `expires_at` and `tries`.
    """

    __tablename__ = "card_verifications"
    __table_args__ = (
        Index("ix_card_verifications_patient_card", "patient_id", "card_no"),
        CheckConstraint("status IN ('pending', 'used', 'superseded', 'failed')", name="status_known"),
        CheckConstraint("tries >= 0", name="tries_not_negative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    card_no: Mapped[str] = mapped_column(String(64))
    code_hash: Mapped[str] = mapped_column(String(64))
    holder_matched: Mapped[bool] = mapped_column(Boolean)
    his_patient_id: Mapped[str | None] = mapped_column(String(64))
    sent_to: Mapped[str] = mapped_column(String(32))
    """The phone the code went to (or was said to go to), masked."""
    status: Mapped[str] = mapped_column(String(16), default="pending")
    tries: Mapped[int] = mapped_column(Integer, default=0)
    provider_request_id: Mapped[str | None] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
