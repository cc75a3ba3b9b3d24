from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, String, Text, UniqueConstraint, true
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
    """A clinic on the platform. It goes live once its HIS connection and channel apps are set and checked;
    a deactivated clinic takes no new logins, orders or schedules, while money already in flight settles."""

    __tablename__ = "clinics"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # The clinic's HIS: where we write, and the key pair both directions sign with (HMAC, app.his.signing).
    # Unset until the operator connects it (a HIS write meanwhile waits, as for an outage).
    his_base_url: Mapped[str | None] = mapped_column(String(500))
    his_key_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    his_secret: Mapped[str | None] = mapped_column(EncryptedText(min_length=MIN_HIS_SECRET))
    # The last `his/check`: a signed call to that HIS, and what it showed.
    his_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    his_check_ok: Mapped[bool | None] = mapped_column(Boolean)
    his_check_detail: Mapped[str | None] = mapped_column(String(500))
    # How new visit bills reach us: `push` (the HIS announces them, POST /api/his/v1/events) or `poll` (the
    # platform reads the unpaid bills of subscribed patients' cards every HPAY_BILL_POLL_INTERVAL_S).
    bill_push_mode: Mapped[str] = mapped_column(String(8), default="push", server_default="push")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, onupdate=utcnow)

    @validates("his_secret")
    def _refuse_short_secret(self, name: str, value: str | None) -> str | None:
        return refuse_short_secret(name, value, MIN_HIS_SECRET)


class MerchantAccount(Base):
    """A channel app: a WeChat mini-program + merchant, or an Alipay app. It belongs to a clinic (`owner`
    clinic: the clinic collects the money) or to the platform (`owner` platform, no clinic: the platform
    operator's own merchant account, which collects platform-collected items for every clinic).

    Key rotation: a new WeChat API key or Alipay public key moves the old one to `previous_*` until
    `previous_*_valid_until`; notifications verify with the current key, then with the previous one
    while it is valid. Everything we sign uses the current key."""

    __tablename__ = "merchant_accounts"
    __table_args__ = (
        UniqueConstraint("channel", "app_id"),
        CheckConstraint("(owner = 'clinic' AND clinic_id IS NOT NULL) OR (owner = 'platform' AND clinic_id IS NULL)",
                        name="owner_matches_clinic"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner: Mapped[str] = mapped_column(String(16), default="clinic", server_default="clinic")
    clinic_id: Mapped[int | None] = mapped_column(ForeignKey("clinics.id"), index=True)
    name: Mapped[str | None] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(16))
    app_id: Mapped[str] = mapped_column(String(64))
    mch_id: Mapped[str | None] = mapped_column(String(64))
    # Encrypted at rest (app.db.encrypted); the Alipay public key is not a secret.
    api_key: Mapped[str | None] = mapped_column(EncryptedText(min_length=MIN_WECHAT_API_KEY))
    previous_api_key: Mapped[str | None] = mapped_column(EncryptedText(min_length=MIN_WECHAT_API_KEY))
    previous_api_key_valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    app_secret: Mapped[str | None] = mapped_column(EncryptedText(min_length=MIN_APP_SECRET))
    sign_type: Mapped[str] = mapped_column(String(16))
    app_private_key: Mapped[str | None] = mapped_column(EncryptedText(min_length=MIN_PRIVATE_KEY))
    alipay_public_key: Mapped[str | None] = mapped_column(Text)
    previous_alipay_public_key: Mapped[str | None] = mapped_column(Text)
    previous_alipay_public_key_valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    api_base_url: Mapped[str] = mapped_column(String(500))
    login_base_url: Mapped[str | None] = mapped_column(String(500))
    # WeChat's merchant certificate and its key (PEM), for secapi/pay/refund; or, set by hand on the host,
    # the paths of those files.
    cert_pem: Mapped[str | None] = mapped_column(EncryptedText(min_length=MIN_PRIVATE_KEY))
    key_pem: Mapped[str | None] = mapped_column(EncryptedText(min_length=MIN_PRIVATE_KEY))
    mch_cert_path: Mapped[str | None] = mapped_column(String(500))
    mch_key_path: Mapped[str | None] = mapped_column(String(500))
    refund_window_days: Mapped[int] = mapped_column(Integer, default=365)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # The last `check`: a signed call to the channel, and what it showed.
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    check_ok: Mapped[bool | None] = mapped_column(Boolean)
    check_detail: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, onupdate=utcnow)

    _MIN_LENGTHS = {"api_key": MIN_WECHAT_API_KEY, "previous_api_key": MIN_WECHAT_API_KEY,
                    "app_secret": MIN_APP_SECRET, "app_private_key": MIN_PRIVATE_KEY, "cert_pem": MIN_PRIVATE_KEY,
                    "key_pem": MIN_PRIVATE_KEY}

    @validates("api_key", "previous_api_key", "app_secret", "app_private_key", "cert_pem", "key_pem")
    def _refuse_short_secret(self, name: str, value: str | None) -> str | None:
        return refuse_short_secret(name, value, self._MIN_LENGTHS[name])
