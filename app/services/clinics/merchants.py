"""Finding a clinic's channel apps and building their adapters."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.channels.base import MerchantConfig, PaymentChannel
from app.db.models import Clinic, MerchantAccount
from app.domain.errors import InvalidInput, NotFound
from app.runtime import Runtime

CHANNELS = ("wechat", "alipay")


def get_clinic(session: Session, clinic_code: str) -> Clinic:
    clinic = session.scalar(select(Clinic).where(Clinic.code == clinic_code))
    if clinic is None:
        raise NotFound(f"no clinic with code {clinic_code!r}", "clinic_not_found")
    return clinic


def primary_account(session: Session, clinic_id: int, channel: str) -> MerchantAccount:
    """The app a clinic takes new payments with on a channel (the oldest active one)."""
    if channel not in CHANNELS:
        raise InvalidInput(f"channel must be one of {', '.join(CHANNELS)}", "unknown_channel")
    account = session.scalar(
        select(MerchantAccount)
        .where(MerchantAccount.clinic_id == clinic_id, MerchantAccount.channel == channel,
               MerchantAccount.active.is_(True))
        .order_by(MerchantAccount.id)
    )
    if account is None:
        raise InvalidInput(f"this clinic does not accept {channel} payments", "channel_not_enabled")
    return account


def merchant_config(account: MerchantAccount, clinic_code: str) -> MerchantConfig:
    return MerchantConfig(
        channel=account.channel,
        clinic_code=clinic_code,
        app_id=account.app_id,
        mch_id=account.mch_id,
        api_key=account.api_key,
        app_secret=account.app_secret,
        sign_type=account.sign_type,
        app_private_key=account.app_private_key,
        alipay_public_key=account.alipay_public_key,
        api_base_url=account.api_base_url,
        login_base_url=account.login_base_url,
        mch_cert_path=account.mch_cert_path,
        mch_key_path=account.mch_key_path,
    )


def channel_for_account(rt: Runtime, session: Session, account: MerchantAccount) -> PaymentChannel:
    """The adapter of a merchant account, from the Runtime's channel factory."""
    clinic = session.get(Clinic, account.clinic_id)
    return rt.channel(merchant_config(account, clinic.code))
