"""GET, POST /api/mp/v1/patients: the current user's patients."""
from __future__ import annotations

from flask_smorest import Blueprint

from app.api.mp.people_schemas import IDEMPOTENCY_KEY_HEADER, PatientCreateSchema, PatientSchema
from app.api.mp.security import current_principal, login_required
from app.api.schemas import ApiErrorSchema
from app.extensions import runtime
from app.idempotent import answer_once
from app.services.people import patients

blp = Blueprint("mp_patients", __name__, url_prefix="/api/mp/v1", description="Mini-program patients")


@blp.route("/patients", methods=["GET"])
@login_required
@blp.doc(security=[{"bearer": []}])
@blp.response(200, PatientSchema(many=True))
@blp.alt_response(401, schema=ApiErrorSchema, description="Missing or invalid bearer token")
def list_patients():
    """The current user's patients with their cards; phone and ID number masked."""
    return patients.list_patients(runtime(), current_principal())


PATIENT_CREATE_EXAMPLE = {"name": "张三", "phone": "13800138000", "id_number": "11010519491231002X", "relation": "self"}


@blp.route("/patients", methods=["POST"])
@login_required
@blp.doc(security=[{"bearer": []}], parameters=[IDEMPOTENCY_KEY_HEADER])
@blp.arguments(PatientCreateSchema, example=PATIENT_CREATE_EXAMPLE)
@blp.response(201, PatientSchema)
@blp.alt_response(401, schema=ApiErrorSchema, description="Missing or invalid bearer token")
@blp.alt_response(409, schema=ApiErrorSchema, description="Idempotency-Key already used with another body")
@blp.alt_response(422, schema=ApiErrorSchema, description="A field is not valid (see `errors`)")
def create_patient(body):
    """Add a patient (family members may share one phone number)."""
    principal = current_principal()
    return answer_once(f"mp:{principal.user_id}:POST /patients", body,
                       lambda: (201, PatientSchema().dump(patients.create_patient(runtime(), principal, **body))))
