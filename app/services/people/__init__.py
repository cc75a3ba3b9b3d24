"""People: patients and their cards (bound by the holder's SMS code), mini-program and staff sign-in,
session tokens and the login throttle.

What other packages may call:
"""
from app.services.people.patients import (
    PHONE_PATTERN,
    his_key_for,
    normalized_patient_fields,
    require_user_card,
    require_user_patient,
)

__all__ = ["PHONE_PATTERN", "his_key_for", "normalized_patient_fields", "require_user_card", "require_user_patient"]
