"""Request and response schemas of the routes that set a clinic up: clinics and their HIS, channel apps, the
catalog, schedules and slots, users. Secrets are `load_only`: they go in, never out (responses show
`{configured, fingerprint}`)."""
from __future__ import annotations

from datetime import date, time

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from admin_api.schemas import CHANNELS, ClinicQuerySchema, plausible_time, text
from app.services.people.staff_auth import PASSWORD_MAX_LEN, PASSWORD_MIN_LEN, ROLES

PEM_MAX = 20_000
URL_MAX = 500
_DAY = validate.Range(min=date(2000, 1, 1), max=date(2099, 12, 31))


class HHMM(fields.Field):
    """A wall-clock time "HH:MM" (Asia/Shanghai)."""

    def _deserialize(self, value, attr, data, **kwargs) -> time:
        if not isinstance(value, str) or len(value) != 5 or value[2] != ":":
            raise ValidationError('a time "HH:MM"')
        try:
            return time(int(value[:2]), int(value[3:]))
        except ValueError:
            raise ValidationError('a time "HH:MM" from 00:00 to 23:59') from None

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else value.strftime("%H:%M")


def secret(min_len: int = 0, max_len: int = 4096, **kwargs) -> fields.String:
    """A write-only secret; an empty or short one is refused by the one rule of app.domain.secrets (422
    `weak_secret`), not here."""
    return text(min_len, max_len, load_only=True, **kwargs)


class CheckResultSchema(Schema):
    ok = fields.Boolean(required=True)
    detail = fields.String(required=True, metadata={"description": "what the answer showed, or what is wrong"})
    checked_at = fields.AwareDateTime(required=True)


class LastCheckSchema(Schema):
    at = fields.AwareDateTime(required=True)
    ok = fields.Boolean(required=True)
    detail = fields.String(allow_none=True)


class SecretStateSchema(Schema):
    configured = fields.Boolean(required=True)
    fingerprint = fields.String(allow_none=True, metadata={"description": "first 12 hex of the SHA-256"})


# --- clinics and their HIS ------------------------------------------------------------------------

class ClinicCreateSchema(Schema):
    code = fields.String(required=True, validate=validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$"),
                         metadata={"description": "fixed once made: it is in the notify URLs"})
    name = text(1, 200, required=True)


class ClinicPatchSchema(Schema):
    name = text(1, 200)
    active = fields.Boolean(metadata={"description": "false: no new logins, orders or schedules"})


class HisConnectionSchema(Schema):
    base_url = text(1, URL_MAX, required=True, metadata={"description": "the HIS API root"})
    key_id = text(1, 100, required=True)
    secret = secret(0, 500, required=True, metadata={"description": "write-only; at least 16 characters"})


class HisStateSchema(Schema):
    base_url = fields.String(allow_none=True)
    key_id = fields.String(allow_none=True)
    secret = fields.Nested(SecretStateSchema, required=True)
    last_check = fields.Nested(LastCheckSchema, allow_none=True)


class ClinicSchema(Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)
    active = fields.Boolean(required=True)
    created_at = fields.AwareDateTime(required=True)
    active_channel_apps = fields.Integer(required=True)
    his = fields.Nested(HisStateSchema, required=True)


# --- channel apps -----------------------------------------------------------------------------------

class ChannelAppFieldsSchema(Schema):
    name = text(1, 100, allow_none=True, metadata={"description": "a label, e.g. the mini-program's name"})
    app_id = text(1, 64)
    mch_id = text(1, 32, allow_none=True, metadata={"description": "WeChat merchant number; Alipay pid (optional)"})
    api_key = secret(metadata={"description": "WeChat API v2 key (32 characters); replacing it keeps the old one "
                                              "valid for notifications for HPAY_KEY_ROTATION_GRACE_S"})
    app_secret = secret(metadata={"description": "WeChat mini-program secret (for logins)"})
    sign_type = fields.String(validate=validate.OneOf(("MD5", "HMAC-SHA256")), metadata={"description": "WeChat"})
    api_base_url = text(1, URL_MAX)
    login_base_url = text(1, URL_MAX, metadata={"description": "WeChat code2session host"})
    cert_pem = secret(0, PEM_MAX, metadata={"description": "WeChat merchant certificate (PEM), for refunds"})
    key_pem = secret(0, PEM_MAX, metadata={"description": "its private key (PEM)"})
    app_private_key = secret(0, PEM_MAX, metadata={"description": "Alipay app private key (RSA2048, PEM)"})
    alipay_public_key = text(0, PEM_MAX, load_only=True,
                             metadata={"description": "Alipay public key (PEM); replacing it keeps the old one valid "
                                                      "for notifications for HPAY_KEY_ROTATION_GRACE_S"})
    refund_window_days = fields.Integer(strict=True, validate=validate.Range(min=1, max=3650))
    active = fields.Boolean()


class ChannelAppCreateSchema(ChannelAppFieldsSchema):
    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))


class ChannelAppPatchSchema(ChannelAppFieldsSchema):
    channel = fields.String(validate=validate.OneOf(CHANNELS), metadata={"description": "cannot change"})


class PreviousKeySchema(Schema):
    field = fields.String(required=True)
    valid_until = fields.AwareDateTime(required=True)


class ChannelAppSchema(Schema):
    id = fields.Integer(required=True)
    owner = fields.String(required=True, metadata={"description": "clinic or platform"})
    clinic_code = fields.String(allow_none=True)
    name = fields.String(allow_none=True)
    channel = fields.String(required=True)
    app_id = fields.String(required=True)
    mch_id = fields.String(allow_none=True)
    sign_type = fields.String(required=True)
    api_base_url = fields.String(required=True)
    login_base_url = fields.String(allow_none=True)
    refund_window_days = fields.Integer(required=True)
    active = fields.Boolean(required=True)
    created_at = fields.AwareDateTime(required=True)
    api_key = fields.Nested(SecretStateSchema, required=True)
    app_secret = fields.Nested(SecretStateSchema, required=True)
    app_private_key = fields.Nested(SecretStateSchema, required=True)
    cert_pem = fields.Nested(SecretStateSchema, required=True)
    key_pem = fields.Nested(SecretStateSchema, required=True)
    alipay_public_key = fields.Nested(SecretStateSchema, required=True)
    previous_key = fields.Nested(PreviousKeySchema, allow_none=True,
                                 metadata={"description": "a key being rotated out, still accepted until then"})
    last_check = fields.Nested(LastCheckSchema, allow_none=True)


# --- items, schedules, slots ------------------------------------------------------------------------

class PurchasePriceSchema(Schema):
    wechat = fields.Integer(strict=True, validate=validate.Range(min=0, max=10**9))
    alipay = fields.Integer(strict=True, validate=validate.Range(min=0, max=10**9))


class ItemFieldsSchema(Schema):
    name = text(1, 200)
    kind = fields.String(validate=validate.OneOf(("item", "package")))
    description = text(0, 2000, allow_none=True, metadata={"description": "shown to patients"})
    price_fen = fields.Integer(strict=True, validate=validate.Range(min=1, max=10**9))
    collected_by = fields.String(validate=validate.OneOf(("clinic", "platform")),
                                 metadata={"description": "who takes the money: the clinic's apps (default) or "
                                                          "the platform's"})
    channels = fields.List(fields.String(validate=validate.OneOf(CHANNELS)), validate=validate.Length(min=1, max=2),
                           metadata={"description": "offered on (the inventory is the stock per channel)"})
    purchase_price_fen = fields.Nested(PurchasePriceSchema, allow_none=True,
                                       metadata={"description": "what the platform pays the clinic per redeemed "
                                                                "order; required per channel when collected_by is "
                                                                "platform"})
    active = fields.Boolean()
    requires_attachment = fields.Boolean(metadata={
        "description": "redeeming it needs an attachment on the order (e.g. a panoramic X-ray) or a "
                       "no_attachment_reason"})


class ItemCreateSchema(ItemFieldsSchema):
    clinic_code = text(1, 32, metadata={"description": "may be left out by a user of one clinic"})
    code = text(1, 64, required=True)
    name = text(1, 200, required=True)
    price_fen = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=10**9))


class AdminItemSchema(Schema):
    id = fields.Integer(required=True)
    clinic_code = fields.String(required=True)
    code = fields.String(required=True)
    kind = fields.String(required=True)
    name = fields.String(required=True)
    description = fields.String(allow_none=True)
    price_fen = fields.Integer(required=True)
    collected_by = fields.String(required=True)
    channels = fields.List(fields.String(), required=True)
    purchase_price_fen = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    active = fields.Boolean(required=True)
    requires_attachment = fields.Boolean(required=True)
    created_at = fields.AwareDateTime(required=True)


class ScheduleSchema(Schema):
    from_ = fields.Date(required=True, data_key="from", validate=_DAY)
    to = fields.Date(required=True, validate=_DAY)
    weekdays = fields.List(fields.Integer(strict=True, validate=validate.Range(min=1, max=7)), required=True,
                           validate=validate.Length(min=1, max=7), metadata={"description": "1 = Monday ... 7"})
    start = HHMM(required=True, metadata={"description": '"HH:MM", Asia/Shanghai'})
    end = HHMM(required=True)
    slot_minutes = fields.Integer(required=True, strict=True, validate=validate.Range(min=5, max=1440))
    capacity = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=10_000))
    closed_dates = fields.List(fields.Date(validate=_DAY), validate=validate.Length(max=366))
    release_at = fields.AwareDateTime(validate=plausible_time,
                                      metadata={"description": "every slot of this posting is shown from then"})
    release_days_before = fields.Integer(strict=True, validate=validate.Range(min=0, max=90))
    release_time = HHMM(metadata={"description": "with release_days_before: each slot is shown at this time, so "
                                                 "many days before its day"})

    @validates_schema
    def _one_release_rule(self, data, **_kwargs):
        if "release_at" in data and ("release_days_before" in data or "release_time" in data):
            raise ValidationError("give release_at, or release_days_before with release_time", "release_at")


class ScheduleResultSchema(Schema):
    created = fields.Integer(required=True)
    existing = fields.Integer(required=True, metadata={"description": "already there, left as they are"})
    first_starts_at = fields.AwareDateTime(allow_none=True)
    last_starts_at = fields.AwareDateTime(allow_none=True)


class SlotRangeQuerySchema(Schema):
    from_ = fields.Date(required=True, data_key="from", validate=_DAY)
    to = fields.Date(required=True, validate=_DAY)


class SlotPatchSchema(Schema):
    capacity = fields.Integer(strict=True, validate=validate.Range(min=0, max=10_000),
                              metadata={"description": "never below the places taken"})
    closed = fields.Boolean(metadata={"description": "closed slots are not offered; their bookings stay"})
    release_at = fields.AwareDateTime(allow_none=True, validate=plausible_time)


class AdminSlotSchema(Schema):
    id = fields.Integer(required=True)
    item_id = fields.Integer(required=True)
    starts_at = fields.AwareDateTime(required=True)
    ends_at = fields.AwareDateTime(required=True)
    capacity = fields.Integer(required=True)
    reserved = fields.Integer(required=True)
    remaining = fields.Integer(required=True)
    closed = fields.Boolean(required=True)
    release_at = fields.AwareDateTime(allow_none=True)


class ItemListQuerySchema(ClinicQuerySchema):
    pass


# --- users ------------------------------------------------------------------------------------------

class UserCreateSchema(Schema):
    username = text(1, 64, required=True)
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    clinic_codes = fields.List(text(1, 32), required=True, validate=validate.Length(max=100))
    password = text(PASSWORD_MIN_LEN, PASSWORD_MAX_LEN, required=True, load_only=True)
    active = fields.Boolean()


class UserPatchSchema(Schema):
    role = fields.String(validate=validate.OneOf(ROLES))
    clinic_codes = fields.List(text(1, 32), validate=validate.Length(max=100))
    active = fields.Boolean(metadata={"description": "false ends every session of the user"})
    password = text(PASSWORD_MIN_LEN, PASSWORD_MAX_LEN, load_only=True,
                    metadata={"description": "a reset: every session of the user ends"})


class ManagedUserSchema(Schema):
    id = fields.Integer(required=True)
    username = fields.String(required=True)
    role = fields.String(required=True)
    clinic_codes = fields.List(fields.String(), required=True)
    active = fields.Boolean(required=True)
    locked = fields.Boolean(required=True, metadata={"description": "failed sign-ins lock it out now"})
    created_at = fields.AwareDateTime(required=True)
    last_login_at = fields.AwareDateTime(allow_none=True)
