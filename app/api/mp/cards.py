"""Patient cards: bind (with the holder's SMS code) or open one, read its live balance and unpaid visit bills."""
from __future__ import annotations

from flask_smorest import Blueprint

from app.api.mp.people_schemas import (
    IDEMPOTENCY_KEY_HEADER,
    BillSchema,
    CardAddSchema,
    CardBalanceSchema,
    CardRefSchema,
    CodeSentSchema,
)
from app.api.mp.security import current_principal, login_required
from app.api.schemas import ApiErrorSchema
from app.extensions import runtime
from app.idempotent import answer_once
from app.services.people import patients
from app.services.people.patients import CARD_NO_PATTERN

blp = Blueprint("mp_cards", __name__, url_prefix="/api/mp/v1", description="Mini-program cards")

UNAUTHORIZED = "Missing or invalid bearer token"
NOT_YOURS = "`card_not_found`: not bound to one of your patients"
UNVERIFIED = ("`card_verification_required`: bound before SMS verification; verify it again through "
              "POST /patients/{patient_id}/cards (card_no, then sms_code)")
HIS_DOWN = "`his_unavailable`: the hospital system (HIS) is not answering; retry later"
# A card number outside the pattern is nobody's card: 404 `card_not_found` before any lookup.
CARD_NO_PARAMETER = {"in": "path", "name": "card_no", "required": True,
                     "schema": {"type": "string", "pattern": CARD_NO_PATTERN}}
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before asking again", "schema": {"type": "integer"}}}


CARD_ADD_EXAMPLES = {
    "bind": {
        "summary": "bind an existing HIS card (answers 202: a code is sent to the card's phone)",
        "value": {"card_no": "D0000001"},
    },
    "bind_with_code": {
        "summary": "the same POST with the code the patient received",
        "value": {"card_no": "D0000001", "sms_code": "123456"},
    },
    "create": {"summary": "open a new card at the HIS", "value": {"create": True}},
}


@blp.route("/patients/<int:patient_id>/cards", methods=["POST"])
@login_required
@blp.doc(security=[{"bearer": []}], parameters=[IDEMPOTENCY_KEY_HEADER])
@blp.arguments(CardAddSchema, examples=CARD_ADD_EXAMPLES)
@blp.response(201, CardRefSchema, description="A new binding")
@blp.alt_response(200, schema=CardRefSchema,
                  description="The card was already bound to this patient (and is now verified, if it was not)")
@blp.alt_response(202, schema=CodeSentSchema,
                  description="card_no without sms_code: a code was texted to the phone the HIS holds for the card "
                              "(the same answer whether or not the card exists and matches this patient)")
@blp.alt_response(401, schema=ApiErrorSchema, description=UNAUTHORIZED)
@blp.alt_response(404, schema=ApiErrorSchema, description="`patient_not_found` (not one of yours)")
@blp.alt_response(409, schema=ApiErrorSchema, description="Idempotency-Key already used with another body")
@blp.alt_response(422, schema=ApiErrorSchema,
                  description="`sms_code_invalid` (with `tries_left`), `sms_code_tries_exceeded`, `sms_code_expired` "
                              "(ask for a new code), `his_rejected`, or a field is not valid")
@blp.alt_response(429, schema=ApiErrorSchema, headers=RETRY_AFTER,
                  description="`sms_rate_limited`: too many codes for this phone or account; wait Retry-After")
@blp.alt_response(503, schema=ApiErrorSchema, description=f"{HIS_DOWN}; `sms_unavailable`: the text could not be sent")
def add_card(body, patient_id: int):
    """Bind an existing HIS card (`card_no`, then `card_no` + `sms_code`) or open a new one (`{"create": true}`).

    Binding asks for proof: the patient's name plus phone or ID number must match the HIS's card holder, and
    the code texted to the phone the HIS holds must come back within its validity (5 tries)."""
    principal = current_principal()

    def bind():
        status, document = patients.add_card(runtime(), principal, patient_id, card_no=body.get("card_no"),
                                             create=bool(body.get("create")), sms_code=body.get("sms_code"))
        return status, (CodeSentSchema if status == 202 else CardRefSchema)().dump(document)

    # A 429 is not remembered under the key (a later retry may pass); app.errors adds its Retry-After.
    return answer_once(f"mp:{principal.user_id}:POST /patients/{patient_id}/cards", body, bind)


@blp.route("/cards/<card_no>", methods=["GET"])
@login_required
@blp.doc(security=[{"bearer": []}], parameters=[CARD_NO_PARAMETER])
@blp.response(200, CardBalanceSchema)
@blp.alt_response(401, schema=ApiErrorSchema, description=UNAUTHORIZED)
@blp.alt_response(403, schema=ApiErrorSchema, description=UNVERIFIED)
@blp.alt_response(404, schema=ApiErrorSchema, description=NOT_YOURS)
@blp.alt_response(503, schema=ApiErrorSchema, description=HIS_DOWN)
def get_card(card_no: str):
    """A card of one of your patients with its balance, read live from the HIS."""
    return patients.card_balance(runtime(), current_principal(), card_no)


@blp.route("/cards/<card_no>/bills", methods=["GET"])
@login_required
@blp.doc(security=[{"bearer": []}], parameters=[CARD_NO_PARAMETER])
@blp.response(200, BillSchema(many=True))
@blp.alt_response(401, schema=ApiErrorSchema, description=UNAUTHORIZED)
@blp.alt_response(403, schema=ApiErrorSchema, description=UNVERIFIED)
@blp.alt_response(404, schema=ApiErrorSchema, description=NOT_YOURS)
@blp.alt_response(503, schema=ApiErrorSchema, description=HIS_DOWN)
def list_bills(card_no: str):
    """The visit bills a doctor opened on this card that are still unpaid, from the HIS."""
    return patients.unpaid_bills(runtime(), current_principal(), card_no)
