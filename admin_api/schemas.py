"""Request and response schemas of the admin API shared by its views."""
from __future__ import annotations

from datetime import datetime

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from app.errors import ApiErrorSchema

ORDER_STATUSES = ("created", "paid", "completed", "booked", "redeemed", "no_show", "rescheduled", "cancelled",
                  "closed", "refunding", "refunded", "partially_refunded")
CHANNELS = ("wechat", "alipay")
ROW_ID = validate.Range(min=1, max=2**31 - 1)


def plausible_time(value: datetime) -> None:
    """Times this century only: far-off years cannot be meant, and some overflow in time zone arithmetic."""
    if not 2000 <= value.year <= 2099:
        raise ValidationError("a date and time between the years 2000 and 2099")


def encodable_text(value: str) -> None:
    if "\x00" in value:
        raise ValidationError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError("must be valid Unicode text") from None


def text(min_len: int, max_len: int, **kwargs) -> fields.String:
    return fields.String(validate=[validate.Length(min=min_len, max=max_len), encodable_text], **kwargs)


# The admin API answers errors like every other API: one schema (ApiError) in the document.
AdminErrorSchema = ApiErrorSchema


class ClinicQuerySchema(Schema):
    clinic_code = text(1, 32, metadata={"description": "one of your clinics (required if you have several)"})


class PageQuerySchema(ClinicQuerySchema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=10**6))


# --- bookings ---------------------------------------------------------------------------------------

class BookingListQuerySchema(PageQuerySchema):
    status = fields.String(validate=validate.OneOf(ORDER_STATUSES),
                           metadata={"description": "`paid` = waiting for confirmation; default: every paid-for"
                                                    " state"})
    date = fields.Date(metadata={"description": "the appointment's Asia/Shanghai date"})
    channel = fields.String(validate=validate.OneOf(CHANNELS))
    q = text(1, 64, metadata={"description": "search: the order number or its beginning, part of the patient's "
                                             "name, or the last 4 digits of the patient's phone"})


class BookingItemSchema(Schema):
    id = fields.Integer()
    code = fields.String()
    name = fields.String()
    price_fen = fields.Integer()


class BookingSlotSchema(Schema):
    id = fields.Integer()
    starts_at = fields.AwareDateTime()
    ends_at = fields.AwareDateTime()


class BookingPatientSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    phone = fields.String(metadata={"description": "masked"})
    card_nos = fields.List(fields.String())


class BookingPaymentSchema(Schema):
    out_trade_no = fields.String(required=True)
    channel = fields.String(required=True)
    status = fields.String(required=True)
    amount_fen = fields.Integer(required=True)
    channel_trade_no = fields.String(allow_none=True)
    late = fields.Boolean()


class ExtraChargeViewSchema(Schema):
    name = fields.String(required=True)
    amount_fen = fields.Integer(required=True)
    card_no = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "pending, created, rejected or flagged"})
    bill_id = fields.String(allow_none=True, metadata={"description": "the HIS bill, once created"})


class RegistrationSyncViewSchema(Schema):
    status = fields.String(required=True, metadata={"description": "pending, done or stopped"})
    note = fields.String(allow_none=True)


class AttachmentSchema(Schema):
    id = fields.Integer(required=True)
    kind = fields.String(required=True, metadata={"description": "panoramic_xray, xray, photo or other"})
    mime = fields.String(required=True, metadata={"description": "image/jpeg or image/png, from the file's bytes"})
    size_bytes = fields.Integer(required=True)
    sha256 = fields.String(required=True)
    width = fields.Integer(required=True)
    height = fields.Integer(required=True)
    uploaded_by = fields.String(allow_none=True)
    uploaded_at = fields.AwareDateTime(required=True)


class BookingSchema(Schema):
    order_no = fields.String(required=True)
    type = fields.String(required=True)
    status = fields.String(required=True)
    clinic_code = fields.String(required=True)
    amount_fen = fields.Integer(required=True)
    refunded_fen = fields.Integer(required=True)
    channel = fields.String(required=True)
    created_at = fields.AwareDateTime(required=True)
    expires_at = fields.AwareDateTime(required=True)
    paid_at = fields.AwareDateTime(allow_none=True)
    appointment_at = fields.AwareDateTime(allow_none=True)
    redeemed_at = fields.AwareDateTime(allow_none=True)
    item = fields.Nested(BookingItemSchema)
    slot = fields.Nested(BookingSlotSchema)
    patient = fields.Nested(BookingPatientSchema)
    payments = fields.List(fields.Nested(BookingPaymentSchema), required=True)
    extra_charges = fields.List(fields.Nested(ExtraChargeViewSchema), required=True)
    registration_sync = fields.Nested(RegistrationSyncViewSchema, allow_none=True,
                                      metadata={"description": "the HIS registration following staff changes"})
    attachment_required = fields.Boolean(metadata={
        "description": "its item is redeemed only with an attachment or a no_attachment_reason"})
    attachments = fields.List(fields.Nested(AttachmentSchema))


class BookingPageSchema(Schema):
    items = fields.List(fields.Nested(BookingSchema), required=True)
    total = fields.Integer(required=True)
    limit = fields.Integer(required=True)
    offset = fields.Integer(required=True)


class NewPatientSchema(Schema):
    name = text(1, 50, required=True)
    phone = fields.String(required=True, validate=validate.Regexp(r"^1[3-9][0-9]{9}$"))
    relation = fields.String(validate=validate.OneOf(("self", "spouse", "child", "parent", "other")))
    id_number = fields.String(validate=validate.Regexp(r"^[0-9]{17}[0-9Xx]$"))


class AppointmentSchema(Schema):
    appointment_at = fields.AwareDateTime(required=True, validate=plausible_time)


class ConfirmSchema(AppointmentSchema):
    patient_id = fields.Integer(strict=True, validate=ROW_ID, metadata={"description": "an existing patient"})
    new_patient = fields.Nested(NewPatientSchema, metadata={"description": "or a new, distinct patient"})

    @validates_schema
    def _one_patient(self, data, **_kwargs):
        if ("patient_id" in data) == ("new_patient" in data):
            raise ValidationError("send either patient_id or new_patient", "patient_id")


class CancelBookingSchema(Schema):
    reason = text(1, 200, required=True)


class ExtraChargeSchema(Schema):
    name = text(1, 100, required=True)
    amount_fen = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=10**7))


class RedeemSchema(Schema):
    extra_charges = fields.List(fields.Nested(ExtraChargeSchema), load_default=list,
                                validate=validate.Length(max=20),
                                metadata={"description": "charges outside the package: unpaid HIS bills"})
    no_attachment_reason = fields.String(validate=validate.Length(max=200), allow_none=True, metadata={
        "description": "why an item that requires an attachment (an X-ray) is redeemed without one"})


# --- patients, inventory, settings, audit ---------------------------------------------------------

class PatientSearchQuerySchema(ClinicQuerySchema):
    phone = fields.String(required=True, validate=validate.Regexp(r"^1[3-9][0-9]{9}$"))


class StaffPatientSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    phone = fields.String(required=True, metadata={"description": "masked"})
    relation = fields.String(allow_none=True)
    card_nos = fields.List(fields.String(), required=True)


class InventoryEntrySchema(Schema):
    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    quantity = fields.Integer(required=True, strict=True, validate=validate.Range(min=0, max=10**6))


class InventoryLevelSchema(InventoryEntrySchema):
    reserved = fields.Integer(required=True, metadata={"description": "held by unpaid orders and sold"})


class SettlementTypeEntrySchema(Schema):
    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    settlement_type = fields.String(validate=validate.Regexp(r"^[a-z0-9_]{1,32}$"),
                                    metadata={"description": "the HIS settlement type (default platform_<channel>)"})
    count_in_cash_flow = fields.Boolean(required=True)
    count_in_revenue = fields.Boolean(required=True)


class AuditQuerySchema(PageQuerySchema):
    actor = text(1, 100, metadata={"description": "the actor's name: a staff username, `platform`, …"})
    action = text(1, 64)
    since = fields.AwareDateTime(validate=plausible_time)


class AuditEventSchema(Schema):
    id = fields.Integer(required=True)
    at = fields.AwareDateTime(required=True)
    clinic_code = fields.String(required=True)
    actor_type = fields.String(required=True)
    actor_id = fields.String(allow_none=True)
    actor_name = fields.String(allow_none=True)
    action = fields.String(required=True)
    target_type = fields.String(allow_none=True)
    target_id = fields.String(allow_none=True)
    before = fields.Dict(allow_none=True)
    after = fields.Dict(allow_none=True)
    note = fields.String(allow_none=True)
    request_id = fields.String(allow_none=True)


class AuditPageSchema(Schema):
    items = fields.List(fields.Nested(AuditEventSchema), required=True)
    total = fields.Integer(required=True)
    limit = fields.Integer(required=True)
    offset = fields.Integer(required=True)


_ERROR_DESCRIPTIONS = {
    401: "Not signed in, or the session expired",
    403: "Your role may not do this",
    404: "Not found in your clinics",
    409: "Refused in the record's current state (`error` says why)",
    413: "The body is larger than this route accepts",
    422: "Invalid input",
    503: "The hospital system did not answer; try again",
}


def documented_errors(blp, *codes: int):
    """Document the error answers of a staff view (401 and 403 always)."""
    def decorator(view):
        for code in sorted({401, 403, *codes}, reverse=True):
            view = blp.alt_response(code, schema=AdminErrorSchema, description=_ERROR_DESCRIPTIONS[code])(view)
        return view

    return decorator
