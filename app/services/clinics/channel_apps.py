"""Channel apps as the platform operator sets them up: a clinic's own (several per channel, one per mini-program)
or the platform's (which collect platform-collected items of every clinic).

Secrets (the WeChat API key and app secret, the refund certificate and key, the Alipay app private key) are
encrypted at rest and write-only: responses and audit events show `{configured, fingerprint}`. An empty, short
or unreadable key is refused (422) when given. Replacing the WeChat API key or the Alipay public key keeps the
old one as `previous_*` for HPAY_KEY_ROTATION_GRACE_S, during which notifications signed with it are still
accepted (app.services.clinics.merchants.merchant_config), so a key is rotated without downtime.
"""
from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.channels.keys import require_certificate_pair, require_rsa_key
from app.db.models import Clinic, MerchantAccount
from app.db.types import utcnow
from app.domain.errors import Conflict, InvalidInput, NotFound
from app.domain.secrets import APP_SECRET_MIN_LENGTH, WECHAT_API_KEY_MIN_LENGTH, require_secret
from app.runtime import Runtime
from app.services.clinics.merchants import CLINIC, PLATFORM, account_code, get_clinic
from app.services.clinics.shapes import last_check, require_base_url, secret_state
from app.services.common.audit import record_staff_event
from app.services.common.principals import StaffPrincipal
from app.services.common.staff_scope import MAX_ROW_ID

WECHAT_API_BASE_URL = "https://api.mch.weixin.qq.com/"
WECHAT_LOGIN_BASE_URL = "https://api.weixin.qq.com/"
ALIPAY_GATEWAY_URL = "https://openapi.alipay.com/gateway.do"
WECHAT_SIGN_TYPES = ("MD5", "HMAC-SHA256")
APP_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
MCH_ID_PATTERN = re.compile(r"[0-9]{1,32}")

COMMON_FIELDS = frozenset({"name", "active", "refund_window_days", "api_base_url"})
CHANNEL_FIELDS = {
    "wechat": COMMON_FIELDS | {"app_id", "mch_id", "api_key", "app_secret", "sign_type", "login_base_url",
                               "cert_pem", "key_pem"},
    "alipay": COMMON_FIELDS | {"app_id", "mch_id", "app_private_key", "alipay_public_key"},
}
REQUIRED = {"wechat": ("app_id", "mch_id", "api_key", "app_secret"),
            "alipay": ("app_id", "app_private_key", "alipay_public_key")}
SECRETS = ("api_key", "app_secret", "app_private_key", "cert_pem", "key_pem", "alipay_public_key")
IMMUTABLE = ("channel", "app_id")


def app_view(session: Session, account: MerchantAccount) -> dict:
    clinic_code = None if account.owner == PLATFORM else account_code(session, account)
    now = utcnow()
    rotating = [(name, until) for name, key, until in (
        ("api_key", account.previous_api_key, account.previous_api_key_valid_until),
        ("alipay_public_key", account.previous_alipay_public_key, account.previous_alipay_public_key_valid_until))
        if key and until and until > now]
    return {"id": account.id, "owner": account.owner, "clinic_code": clinic_code, "name": account.name,
            "channel": account.channel, "app_id": account.app_id, "mch_id": account.mch_id,
            "sign_type": account.sign_type, "api_base_url": account.api_base_url,
            "login_base_url": account.login_base_url, "refund_window_days": account.refund_window_days,
            "active": account.active, "created_at": account.created_at,
            **{name: secret_state(getattr(account, name)) for name in SECRETS},
            "previous_key": ({"field": rotating[0][0], "valid_until": rotating[0][1]} if rotating else None),
            "last_check": last_check(account.checked_at, account.check_ok, account.check_detail)}


def audited_app(account: MerchantAccount) -> dict:
    """An app as its audit events show it: secrets as fingerprints."""
    return {"owner": account.owner, "name": account.name, "channel": account.channel, "app_id": account.app_id,
            "mch_id": account.mch_id, "sign_type": account.sign_type, "api_base_url": account.api_base_url,
            "login_base_url": account.login_base_url, "refund_window_days": account.refund_window_days,
            "active": account.active, **{name: secret_state(getattr(account, name)) for name in SECRETS}}


def _refuse(field: str, why: str, code: str = "validation_failed") -> InvalidInput:
    return InvalidInput(f"the channel app is not acceptable: {field} {why}", code, {field: [why]})


def _validated(rt: Runtime, channel: str, data: dict) -> dict:
    """The fields of `data` checked for this channel (URLs normalised); refuses another channel's fields."""
    foreign = sorted(set(data) - CHANNEL_FIELDS[channel])
    if foreign:
        raise _refuse(foreign[0], f"is not a field of a {channel} app", "field_not_for_channel")
    clean = dict(data)
    if "app_id" in clean and not APP_ID_PATTERN.fullmatch(clean["app_id"]):
        raise _refuse("app_id", "must be 1-64 of A-Z a-z 0-9 _ -")
    if clean.get("mch_id") is not None and not MCH_ID_PATTERN.fullmatch(clean["mch_id"]):
        raise _refuse("mch_id", "must be digits")
    if "api_key" in clean:
        require_secret("api_key", clean["api_key"], WECHAT_API_KEY_MIN_LENGTH)
    if "app_secret" in clean:
        require_secret("app_secret", clean["app_secret"], APP_SECRET_MIN_LENGTH)
    if "sign_type" in clean and clean["sign_type"] not in WECHAT_SIGN_TYPES:
        raise _refuse("sign_type", f"must be one of {', '.join(WECHAT_SIGN_TYPES)}")
    if "app_private_key" in clean:
        require_rsa_key("app_private_key", clean["app_private_key"], private=True)
    if "alipay_public_key" in clean:
        require_rsa_key("alipay_public_key", clean["alipay_public_key"], private=False)
    for field in ("api_base_url", "login_base_url"):
        if clean.get(field) is not None:
            url = require_base_url(rt, field, clean[field])
            clean[field] = url if channel == "alipay" or url.endswith("/") else url + "/"
    return clean


def _check_certificate(account: MerchantAccount) -> None:
    if bool(account.cert_pem) != bool(account.key_pem):
        raise _refuse("key_pem" if account.cert_pem else "cert_pem", "goes together with the other (both or neither)")
    if account.cert_pem:
        require_certificate_pair(account.cert_pem, account.key_pem)


def create_app(rt: Runtime, actor: StaffPrincipal, clinic_code: str | None, data: dict) -> dict:
    """A new active app of the clinic (or, with clinic_code None, of the platform)."""
    channel = data.get("channel")
    if channel not in CHANNEL_FIELDS:
        raise _refuse("channel", "must be wechat or alipay")
    fields = _validated(rt, channel, {k: v for k, v in data.items() if k != "channel" and v is not None})
    missing = [name for name in REQUIRED[channel] if not fields.get(name)]
    if missing:
        raise InvalidInput(f"a {channel} app needs {', '.join(missing)}", "validation_failed",
                           {name: ["required"] for name in missing})
    defaults = ({"sign_type": "MD5", "api_base_url": WECHAT_API_BASE_URL, "login_base_url": WECHAT_LOGIN_BASE_URL}
                if channel == "wechat" else {"sign_type": "RSA2", "api_base_url": ALIPAY_GATEWAY_URL})
    try:
        with rt.db.session() as session:
            clinic = get_clinic(session, clinic_code) if clinic_code is not None else None
            if session.scalar(select(MerchantAccount.id).where(MerchantAccount.channel == channel,
                                                               MerchantAccount.app_id == fields["app_id"])):
                raise Conflict(f"a {channel} app {fields['app_id']} is already on the platform", "app_id_taken")
            account = MerchantAccount(owner=CLINIC if clinic else PLATFORM, clinic_id=clinic.id if clinic else None,
                                      channel=channel, active=True, refund_window_days=365,
                                      **{**defaults, **fields})
            _check_certificate(account)
            session.add(account)
            session.flush()
            record_staff_event(session, actor, account.clinic_id, "channel_app_created", "channel_app", account.id,
                               after=audited_app(account))
            return app_view(session, account)
    except IntegrityError:
        raise Conflict(f"a {channel} app {fields['app_id']} is already on the platform", "app_id_taken") from None


def _rotate(rt: Runtime, account: MerchantAccount, field: str, new: str) -> None:
    """Keep the key being replaced as the previous one for the grace period."""
    old = getattr(account, field)
    if old and old != new:
        until = utcnow() + timedelta(seconds=rt.settings.KEY_ROTATION_GRACE_S)
        if field == "api_key":
            account.previous_api_key, account.previous_api_key_valid_until = old, until
        else:
            account.previous_alipay_public_key, account.previous_alipay_public_key_valid_until = old, until


def update_app(rt: Runtime, actor: StaffPrincipal, account_id: int, data: dict) -> dict:
    """Change an app's fields; its channel and app_id stay (its users and payments belong to them)."""
    fixed = [name for name in IMMUTABLE if name in data]
    if fixed:
        raise _refuse(fixed[0], "cannot change: add another app instead", "immutable_field")
    with rt.db.session() as session:
        account = require_app(session, account_id, lock=True)
        fields = _validated(rt, account.channel, {k: v for k, v in data.items()
                                                   if v is not None or k in ("name", "mch_id")})
        before = audited_app(account)
        for field in ("api_key", "alipay_public_key"):
            if field in fields:
                _rotate(rt, account, field, fields[field])
        for name, value in fields.items():
            setattr(account, name, value)
        if account.channel == "wechat" and not account.mch_id:
            raise _refuse("mch_id", "is required for a WeChat app")
        _check_certificate(account)
        session.flush()
        record_staff_event(session, actor, account.clinic_id, "channel_app_updated", "channel_app", account.id,
                           before=before, after=audited_app(account))
        return app_view(session, account)


def require_app(session: Session, account_id: int, *, lock: bool = False) -> MerchantAccount:
    account = None
    if 0 < account_id <= MAX_ROW_ID:
        query = select(MerchantAccount).where(MerchantAccount.id == account_id)
        account = session.scalar(query.with_for_update() if lock else query)
    if account is None:
        raise NotFound(f"no channel app {account_id}", "channel_app_not_found")
    return account


def get_app(rt: Runtime, account_id: int) -> dict:
    with rt.db.session() as session:
        return app_view(session, require_app(session, account_id))


def list_apps(rt: Runtime, clinic_code: str | None) -> list[dict]:
    """A clinic's apps, or (clinic_code None) the platform's."""
    with rt.db.session() as session:
        query = select(MerchantAccount).order_by(MerchantAccount.channel, MerchantAccount.id)
        if clinic_code is None:
            query = query.where(MerchantAccount.owner == PLATFORM)
        else:
            query = query.join(Clinic, Clinic.id == MerchantAccount.clinic_id).where(
                Clinic.id == get_clinic(session, clinic_code).id)
        return [app_view(session, account) for account in session.scalars(query)]
