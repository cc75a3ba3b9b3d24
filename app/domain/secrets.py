"""The one rule for how short a key may be, for every place that stores or uses one.

An empty key signs and verifies as happily as a real one (a WeChat v2 signature over
`…&key=` is a plain MD5 anyone can compute), so a missing or short key must stop
the operation, never fall through to a check that then passes.
"""
from __future__ import annotations

import hashlib

from app.domain.errors import InvalidInput

# WeChat Pay v2 API keys are 32 characters (set in the merchant platform).
WECHAT_API_KEY_MIN_LENGTH = 32
# The HMAC key pair of a clinic's HIS (app.his.signing), a mini-program secret, and any stored private key:
# shorter than this is a mistake or a placeholder, never a usable key.
HIS_SECRET_MIN_LENGTH = 16
APP_SECRET_MIN_LENGTH = 16
PRIVATE_KEY_MIN_LENGTH = 16
# Alipay keys are RSA-2048 PEM text; the bare base64 of a 2048-bit public key alone is 392 characters,
# so anything much shorter is a truncated or placeholder value. The key size itself is checked where
# the key is loaded.
RSA_KEY_MIN_LENGTH = 300
RSA_KEY_MIN_BITS = 2048


class WeakSecret(InvalidInput):
    """A key or secret that is missing or too short to be trusted; the message never holds the value."""

    code = "weak_secret"


def require_secret(name: str, value: str | None, min_length: int) -> str:
    """`value`, when it is at least `min_length` characters of something other than whitespace;
    otherwise WeakSecret naming `name` (never the value). Used where a key is stored and where it is used."""
    if min_length < 1:
        raise ValueError("a secret's minimum length is at least 1")
    wanted = {name: [f"at least {min_length} characters"]}
    if not isinstance(value, str) or not value.strip():
        raise WeakSecret(f"{name} is not set (an empty key is refused)", details=wanted)
    if len(value.strip()) < min_length:
        raise WeakSecret(f"{name} is shorter than {min_length} characters (a short key is refused)", details=wanted)
    return value


FINGERPRINT_LENGTH = 12


def fingerprint(value: str) -> str:
    """What a write-only secret is shown as: the first 12 hex digits of its SHA-256 (enough to tell two keys
    apart and to see that a rotation happened, useless for recovering the key)."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:FINGERPRINT_LENGTH]
