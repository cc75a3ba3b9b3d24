from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base
from app.db.types import UTCDateTime, utcnow


class Clinic(Base):
    __tablename__ = "clinics"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # The clinic's HIS: where we write, and the key pair both directions sign with.
    his_base_url: Mapped[str] = mapped_column(String(500))
    his_key_id: Mapped[str] = mapped_column(String(100), unique=True)
    his_secret: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MerchantAccount(Base):
    """A channel app of a clinic: a WeChat mini-program + merchant, or an Alipay app."""

    __tablename__ = "merchant_accounts"
    __table_args__ = (UniqueConstraint("channel", "app_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    app_id: Mapped[str] = mapped_column(String(64))
    mch_id: Mapped[str | None] = mapped_column(String(64))
    api_key: Mapped[str | None] = mapped_column(String(128))
    app_secret: Mapped[str | None] = mapped_column(String(128))
    sign_type: Mapped[str] = mapped_column(String(16))
    app_private_key: Mapped[str | None] = mapped_column(Text)
    alipay_public_key: Mapped[str | None] = mapped_column(Text)
    api_base_url: Mapped[str] = mapped_column(String(500))
    login_base_url: Mapped[str | None] = mapped_column(String(500))
    mch_cert_path: Mapped[str | None] = mapped_column(String(500))
    mch_key_path: Mapped[str | None] = mapped_column(String(500))
    refund_window_days: Mapped[int] = mapped_column(Integer, default=365)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
