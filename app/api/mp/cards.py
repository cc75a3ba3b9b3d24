"""Patient cards: bind or open one, read its live balance and its unpaid visit bills."""
from __future__ import annotations

from flask import make_response, request
from flask_smorest import Blueprint

from app.api.mp.people_schemas import IDEMPOTENCY_KEY_HEADER, BillSchema, CardAddSchema, CardBalanceSchema, \
    CardRefSchema
from app.api.mp.security import current_principal, login_required
from app.api.schemas import ApiErrorSchema
from app.extensions import runtime
from app.services import idempotency, patients

blp = Blueprint("mp_cards", __name__, url_prefix="/api/mp/v1", description="Mini-program cards")

UNAUTHORIZED = "Missing or invalid bearer token"
NOT_YOURS = "`card_not_found`: not bound to one of your patients"
HIS_DOWN = "`his_unavailable`: the hospital system (HIS) is not answering; retry later"


@blp.route("/patients/<int:patient_id>/cards", methods=["POST"])
@login_required
@blp.doc(security=[{"bearer": []}], parameters=[IDEMPOTENCY_KEY_HEADER])
@blp.arguments(CardAddSchema)
@blp.response(201, CardRefSchema, description="A new binding")
@blp.alt_response(200, schema=CardRefSchema, description="The card was already bound to this patient")
@blp.alt_response(401, schema=ApiErrorSchema, description=UNAUTHORIZED)
@blp.alt_response(404, schema=ApiErrorSchema,
                  description="`patient_not_found` (not one of yours) or `card_not_found` (not in the HIS)")
@blp.alt_response(409, schema=ApiErrorSchema, description="Idempotency-Key already used with another body")
@blp.alt_response(422, schema=ApiErrorSchema,
                  description="`card_patient_mismatch` (the card holder is someone else), `his_rejected`, "
                              "or a field is not valid")
@blp.alt_response(503, schema=ApiErrorSchema, description=HIS_DOWN)
def add_card(body, patient_id: int):
    """Bind an existing HIS card (`card_no`) or open a new one in the HIS (`{"create": true}`)."""
    principal = current_principal()

    def bind():
        card, created = patients.add_card(runtime(), principal, patient_id, card_no=body.get("card_no"),
                                          create=bool(body.get("create")))
        return (201 if created else 200), CardRefSchema().dump(card)

    status, result = idempotency.run(runtime(), f"mp:{principal.user_id}:POST /patients/{patient_id}/cards",
                                     request.headers.get("Idempotency-Key"), body, bind)
    return make_response(result, status)


@blp.route("/cards/<card_no>", methods=["GET"])
@login_required
@blp.doc(security=[{"bearer": []}])
@blp.response(200, CardBalanceSchema)
@blp.alt_response(401, schema=ApiErrorSchema, description=UNAUTHORIZED)
@blp.alt_response(404, schema=ApiErrorSchema, description=NOT_YOURS)
@blp.alt_response(503, schema=ApiErrorSchema, description=HIS_DOWN)
def get_card(card_no: str):
    """A card of one of your patients with its balance, read live from the HIS."""
    return patients.card_balance(runtime(), current_principal(), card_no)


@blp.route("/cards/<card_no>/bills", methods=["GET"])
@login_required
@blp.doc(security=[{"bearer": []}])
@blp.response(200, BillSchema(many=True))
@blp.alt_response(401, schema=ApiErrorSchema, description=UNAUTHORIZED)
@blp.alt_response(404, schema=ApiErrorSchema, description=NOT_YOURS)
@blp.alt_response(503, schema=ApiErrorSchema, description=HIS_DOWN)
def list_bills(card_no: str):
    """The visit bills a doctor opened on this card that are still unpaid, from the HIS."""
    return patients.unpaid_bills(runtime(), current_principal(), card_no)
