"""Request and response schemas of the mini-program patients and cards endpoints."""
from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from app.services.people.card_verification import CODE_PATTERN
from app.services.people.patients import CARD_NO_PATTERN, ID_NUMBER_PATTERN, NAME_MAX_LEN, PHONE_PATTERN, RELATIONS

# Read by app.idempotent; documented here because it is a header, not a body field.
IDEMPOTENCY_KEY_HEADER = {
    "in": "header", "name": "Idempotency-Key", "required": False, "schema": {"type": "string", "maxLength": 200},
    "description": "A repeat with the same key and body returns the first answer; the same key with another "
                   "body is 409 idempotency_key_reused.",
}


class FullMatch(validate.Regexp):
    """Regexp for the whole value: a `$` pattern alone also lets a trailing newline through."""

    def __call__(self, value):
        if self.regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


class PatientCreateSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=NAME_MAX_LEN))
    phone = fields.String(required=True, validate=FullMatch(PHONE_PATTERN),
                          metadata={"description": "Mainland mobile number, 11 digits", "example": "13812345678"})
    id_number = fields.String(load_default=None, allow_none=True, validate=FullMatch(ID_NUMBER_PATTERN),
                              metadata={"description": "Resident ID number: 17 digits, then a digit or X"})
    relation = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(RELATIONS),
                             metadata={"description": "How the patient relates to the user"})


class CardRefSchema(Schema):
    card_no = fields.String(required=True)
    patient_id = fields.Integer(required=True)
    verified = fields.Boolean(required=True, metadata={
        "description": "false: bound before SMS verification; bind it again (card_no, then sms_code) to use it"})


class CodeSentSchema(Schema):
    verification = fields.String(required=True, metadata={"enum": ["sms"]})
    sent_to = fields.String(required=True, metadata={"description": "The phone the code was texted to, masked"})
    expires_in = fields.Integer(required=True, metadata={"description": "Seconds the code stays valid"})


class PatientSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    phone = fields.String(required=True, metadata={"description": "Masked, e.g. 138****5678"})
    id_number = fields.String(allow_none=True, metadata={"description": "Masked, e.g. 110***********123X"})
    relation = fields.String(allow_none=True, metadata={"enum": list(RELATIONS)})
    cards = fields.List(fields.Nested(CardRefSchema), required=True)


class CardAddSchema(Schema):
    card_no = fields.String(validate=FullMatch(CARD_NO_PATTERN), metadata={
        "description": "Bind this existing HIS card: the patient's name plus phone or ID number must match the "
                       "HIS's card holder, and the code texted to the holder's phone must follow (sms_code)"})
    sms_code = fields.String(validate=FullMatch(CODE_PATTERN), metadata={
        "description": "The 6-digit code texted after the first POST with this card_no"})
    create = fields.Boolean(metadata={"description": "true: open a new card in the HIS for this patient"})

    @validates_schema
    def one_way(self, data, **_kwargs):
        if ("card_no" in data) == bool(data.get("create")):
            raise ValidationError("send either card_no (bind an existing card) or create: true (open a new one)")
        if "sms_code" in data and "card_no" not in data:
            raise ValidationError("sms_code goes with the card_no it was texted for", "sms_code")


class CardBalanceSchema(Schema):
    card_no = fields.String(required=True)
    patient_id = fields.Integer(required=True)
    balance_fen = fields.Integer(required=True, metadata={"description": "Live from the HIS"})


class BillSchema(Schema):
    bill_id = fields.String(required=True)
    kind = fields.String(required=True, metadata={"enum": ["exam", "lab", "prescription", "treatment", "charge"]})
    title = fields.String(required=True)
    amount_fen = fields.Integer(required=True)
