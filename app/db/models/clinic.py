from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, validates

from app.db.base import Base
from app.db.encrypted import EncryptedText, refuse_short_secret
from app.db.types import UTCDateTime, utcnow
from app.domain.secrets import (
    APP_SECRET_MIN_LENGTH,
    HIS_SECRET_MIN_LENGTH,
    PRIVATE_KEY_MIN_LENGTH,
    WECHAT_API_KEY_MIN_LENGTH,
)

# The shortest secrets we keep (the one rule of app.domain.secrets).
MIN_HIS_SECRET = HIS_SECRET_MIN_LENGTH
MIN_WECHAT_API_KEY = WECHAT_API_KEY_MIN_LENGTH
MIN_APP_SECRET = APP_SECRET_MIN_LENGTH
MIN_PRIVATE_KEY = PRIVATE_KEY_MIN_LENGTH


class Clinic(Base):
    __tablename__ = "clinics"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # The clinic's HIS: where we write, and the key pair both directions sign with (HMAC, app.his.signing).
    his_base_url: Mapped[str] = mapped_column(String(500))
    his_key_id: Mapped[str] = mapped_column(String(100), unique=True)
    his_secret: Mapped[str] = mapped_column(EncryptedText(min_length=MIN_HIS_SECRET))
    # How new visit bills reach us: `push` (the HIS announces them, POST /api/his/v1/events) or `poll` (the
    # platform reads the unpaid bills of subscribed patients' cards every HPAY_BILL_POLL_INTERVAL_S).
    bill_push_mode: Mapped[str] = mapped_column(String(8), default="push", server_default="push")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @validates("his_secret")
    def _refuse_short_secret(self, name: str, value: str) -> str:
        return refuse_short_secret(name, "" if value is None else value, MIN_HIS_SECRET)


class MerchantAccount(Base):
    """A channel app of a clinic: a WeChat mini-program + merchant, or an Alipay app."""

    __tablename__ = "merchant_accounts"
    __table_args__ = (UniqueConstraint("channel", "app_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    app_id: Mapped[str] = mapped_column(String(64))
    mch_id: Mapped[str | None] = mapped_column(String(64))
    # Encrypted at rest (app.db.encrypted); the Alipay public key is not a secret.
    api_key: Mapped[str | None] = mapped_column(EncryptedText(min_length=MIN_WECHAT_API_KEY))
    app_secret: Mapped[str | None] = mapped_column(EncryptedText(min_length=MIN_APP_SECRET))
    sign_type: Mapped[str] = mapped_column(String(16))
    app_private_key: Mapped[str | None] = mapped_column(EncryptedText(min_length=MIN_PRIVATE_KEY))
    alipay_public_key: Mapped[str | None] = mapped_column(Text)
    api_base_url: Mapped[str] = mapped_column(String(500))
    login_base_url: Mapped[str | None] = mapped_column(String(500))
    mch_cert_path: Mapped[str | None] = mapped_column(String(500))
    mch_key_path: Mapped[str | None] = mapped_column(String(500))
    refund_window_days: Mapped[int] = mapped_column(Integer, default=365)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    _MIN_LENGTHS = {"api_key": MIN_WECHAT_API_KEY, "app_secret": MIN_APP_SECRET, "app_private_key": MIN_PRIVATE_KEY}

    @validates("api_key", "app_secret", "app_private_key")
    def _refuse_short_secret(self, name: str, value: str | None) -> str | None:
        return refuse_short_secret(name, value, self._MIN_LENGTHS[name])
