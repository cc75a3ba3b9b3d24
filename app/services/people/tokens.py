"""Signed, expiring bearer tokens (stateless; the secret key signs them)."""
from __future__ import annotations

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from app.domain.errors import Unauthorized


def issue_token(secret_key: str, audience: str, claims: dict) -> str:
    return URLSafeTimedSerializer(secret_key, salt=f"hpay-{audience}").dumps(claims)


def read_token(secret_key: str, audience: str, token: str, max_age_s: int) -> dict:
    try:
        return URLSafeTimedSerializer(secret_key, salt=f"hpay-{audience}").loads(token, max_age=max_age_s)
    except SignatureExpired:
        raise Unauthorized("the session has expired; log in again", "token_expired") from None
    except BadSignature:
        raise Unauthorized("the bearer token is not valid", "invalid_token") from None
