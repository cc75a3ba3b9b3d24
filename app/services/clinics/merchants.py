"""Finding clinics and their channel apps, and building the apps' adapters.

Which app takes a payment: the one the mini-program user signed in through (`MpUser.merchant_account_id`).
A login names its app by `app_id`; without one, the clinic's only active app of the channel is meant. The
platform's own apps (owner `platform`, no clinic) take the payments of platform-collected items of every
clinic; their notifications arrive under the path segment `platform` instead of a clinic code.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app.channels.base import MerchantConfig, PaymentChannel
from app.db.models import Clinic, MerchantAccount, MpUser
from app.db.types import utcnow
from app.domain.errors import Conflict, InvalidInput, NotFound
from app.runtime import Runtime

CHANNELS = ("wechat", "alipay")
CLINIC, PLATFORM = "clinic", "platform"
OWNERS = (CLINIC, PLATFORM)
# The notify path segment of the platform's apps (`/notify/wechat/platform/pay`): no clinic may take this code.
PLATFORM_CODE = "platform"


def get_clinic(session: Session, clinic_code: str) -> Clinic:
    clinic = session.scalar(select(Clinic).where(Clinic.code == clinic_code))
    if clinic is None:
        raise NotFound(f"no clinic with code {clinic_code!r}", "clinic_not_found")
    return clinic


def require_active(clinic: Clinic) -> Clinic:
    """The clinic, or Conflict `clinic_inactive`: a deactivated clinic takes no new logins, orders or schedules."""
    if not clinic.active:
        raise Conflict(f"clinic {clinic.code} is not active", "clinic_inactive")
    return clinic


def _check_channel(channel: str) -> None:
    if channel not in CHANNELS:
        raise InvalidInput(f"channel must be one of {', '.join(CHANNELS)}", "unknown_channel")


def login_account(session: Session, clinic: Clinic, channel: str, app_id: str | None) -> MerchantAccount:
    """The active app a mini-program user of this clinic signs in through: the one named by `app_id` (the
    clinic's own or the platform's), else the clinic's only active app of the channel."""
    _check_channel(channel)
    active = select(MerchantAccount).where(MerchantAccount.channel == channel, MerchantAccount.active.is_(True))
    if app_id is not None:
        account = session.scalar(active.where(MerchantAccount.app_id == app_id, or_(
            MerchantAccount.clinic_id == clinic.id, MerchantAccount.owner == PLATFORM)))
        if account is None:
            raise NotFound(f"clinic {clinic.code} has no active {channel} app {app_id}", "channel_app_not_found")
        return account
    accounts = list(session.scalars(active.where(MerchantAccount.clinic_id == clinic.id).limit(2)))
    if not accounts:
        raise InvalidInput(f"this clinic does not accept {channel} payments", "channel_not_enabled")
    if len(accounts) > 1:
        raise Conflict(f"clinic {clinic.code} runs several {channel} apps: name yours with app_id", "app_id_required")
    return accounts[0]


def user_account(session: Session, user_id: int) -> MerchantAccount:
    """The app a mini-program user signed in through: the one that takes their payments."""
    return session.scalar(select(MerchantAccount).join(MpUser, MpUser.merchant_account_id == MerchantAccount.id)
                          .where(MpUser.id == user_id))


def require_paying_account(session: Session, clinic: Clinic, user_id: int) -> MerchantAccount:
    """The user's app, when the clinic and the app may take a new payment (Conflict otherwise)."""
    return paying_account_or_refusal(clinic, user_account(session, user_id))


def paying_account_or_refusal(clinic: Clinic, account: MerchantAccount | None) -> MerchantAccount:
    """`require_paying_account` on rows the caller read: the clinic and the user's app (None: it has none)."""
    require_active(clinic)
    if account is None or not account.active:
        raise Conflict("the app you signed in through no longer takes payments; sign in again",
                       "channel_app_inactive")
    return account


def account_code(session: Session, account: MerchantAccount) -> str:
    """The clinic code an app's notifications arrive under: its clinic's, or `platform`."""
    if account.owner == PLATFORM:
        return PLATFORM_CODE
    return session.scalar(select(Clinic.code).where(Clinic.id == account.clinic_id))


def accounts_for_notifications(session: Session, code: str, channel: str) -> list[MerchantAccount]:
    """Every app (active or not: money already taken still reports) whose notifications arrive under `code`."""
    query = select(MerchantAccount).where(MerchantAccount.channel == channel)
    if code == PLATFORM_CODE:
        query = query.where(MerchantAccount.owner == PLATFORM)
    else:
        query = query.join(Clinic, Clinic.id == MerchantAccount.clinic_id).where(Clinic.code == code)
    return list(session.scalars(query.order_by(MerchantAccount.id)))


def _within(until: datetime | None, now: datetime) -> bool:
    return until is not None and until > now


def merchant_config(account: MerchantAccount, clinic_code: str, now: datetime | None = None) -> MerchantConfig:
    """The adapter's configuration; a key being rotated out comes along only while its grace period lasts."""
    now = now or utcnow()
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
        cert_pem=account.cert_pem,
        key_pem=account.key_pem,
        previous_api_key=account.previous_api_key if _within(account.previous_api_key_valid_until, now) else None,
        previous_alipay_public_key=(account.previous_alipay_public_key
                                    if _within(account.previous_alipay_public_key_valid_until, now) else None),
    )


def channel_for_account(rt: Runtime, session: Session, account: MerchantAccount) -> PaymentChannel:
    """The adapter of a merchant account, from the Runtime's channel factory."""
    return rt.channel(merchant_config(account, account_code(session, account)))
