"""Request checks and log masking for the sandbox HIS: every bad field gets one clear 4xx."""
from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from flask import jsonify, request

BILL_KINDS = ("exam", "lab", "prescription", "treatment", "charge")
MAX_FEN = 10**10

_PHONE = re.compile(r"^1\d{10}$")
_ID_NUMBER = re.compile(r"^(\d{17}[\dX]|\d{15})$")


class HisRefusal(Exception):
    """A definitive answer other than success: rolls back the transaction and becomes a JSON error."""

    def __init__(self, status: int, error: str, message: str):
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message

    def response(self):
        return jsonify(error=self.error, message=self.message), self.status


def invalid(message: str) -> HisRefusal:
    return HisRefusal(422, "invalid_request", message)


def json_body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise HisRefusal(400, "invalid_json", "the body must be a JSON object")
    return body


def text(body: dict, name: str, *, required: bool = True, max_len: int = 64) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise invalid(f"{name} must be a non-empty string")
    if len(value) > max_len:
        raise invalid(f"{name} must be at most {max_len} characters")
    return value.strip()


def amount(body: dict, name: str = "amount_fen", *, minimum: int = 1, default: int | None = None) -> int:
    value = body.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise invalid(f"{name} must be an integer number of fen")
    if not minimum <= value < MAX_FEN:
        raise invalid(f"{name} must be between {minimum} and {MAX_FEN - 1}")
    return value


def choice(body: dict, name: str, options: tuple[str, ...]) -> str:
    value = body.get(name)
    if value not in options:
        raise invalid(f"{name} must be one of {', '.join(options)}")
    return value


def phone(body: dict) -> str:
    value = text(body, "phone", max_len=11)
    if not _PHONE.match(value):
        raise invalid("phone must be an 11-digit mainland mobile number")
    return value


def id_number(body: dict) -> str | None:
    value = text(body, "id_number", required=False, max_len=18)
    if value is not None:
        value = value.upper()
        if not _ID_NUMBER.match(value):
            raise invalid("id_number must be an 18-character (or old 15-digit) resident ID number")
    return value


def idempotency_key(body: dict, *, required: bool = True) -> str | None:
    return text(body, "idempotency_key", required=required, max_len=128)


def aware_datetime(body: dict, name: str) -> datetime:
    value = text(body, name, max_len=40)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise invalid(f"{name} must be an ISO 8601 date-time") from None
    if parsed.tzinfo is None:
        raise invalid(f"{name} must carry a UTC offset, e.g. 2024-07-09T09:30:00+08:00")
    return parsed


def business_date(value: str | None) -> str:
    try:
        if value and len(value) == 10:
            return date.fromisoformat(value).isoformat()
    except ValueError:
        pass
    raise invalid("date is required as YYYY-MM-DD")


def mask_phone(value: Any) -> str:
    value = str(value or "")
    return f"{value[:3]}****{value[-4:]}" if len(value) >= 7 else "****"


def mask_id_number(value: Any) -> str | None:
    if not value:
        return None
    value = str(value)
    return f"{value[:3]}{'*' * (len(value) - 7)}{value[-4:]}" if len(value) > 7 else "****"
