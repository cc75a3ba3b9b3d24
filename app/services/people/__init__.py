"""People: patients and their cards (bound by the holder's SMS code), mini-program and staff sign-in,
session tokens and the login throttle.

What other packages may call:
"""
from app.services.people.mp_auth import confirm_session, confirm_session_in
from app.services.people.patients import (
    PHONE_PATTERN,
    his_key_for,
    normalized_patient_fields,
    require_user_card,
    require_user_patient,
    user_patient_criteria,
    user_patient_or_refusal,
)
from app.services.people.staff_auth import ADMIN, FINANCE, OPERATOR, ROLES, STAFF

__all__ = ["ADMIN", "FINANCE", "OPERATOR", "PHONE_PATTERN", "ROLES", "STAFF", "confirm_session",
           "confirm_session_in", "his_key_for", "normalized_patient_fields", "require_user_card",
           "require_user_patient", "user_patient_criteria", "user_patient_or_refusal"]
