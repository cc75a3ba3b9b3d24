"""The HMAC scheme of every call between the platform and a clinic's HIS, in both directions.

One key pair per clinic (`clinics.his_key_id` / `his_secret`) signs our calls to the HIS and the
HIS's calls to `/api/his/v1`. Each request carries:

- `X-HIS-Key-Id`: the key id (1-100 of `A-Z a-z 0-9 . _ -`);
- `X-HIS-Timestamp`: unix seconds, 1-12 ASCII digits;
- `X-HIS-Nonce`: 16-64 of `A-Z a-z 0-9 _ -`, fresh for every request (a retry is signed again);
- `X-HIS-Signature`: hex HMAC-SHA256(secret, signing string), 64 hex digits.

    signing string = timestamp + "\\n" + nonce + "\\n" + METHOD + "\\n" + path + "\\n" + raw_body

`path` is the URL path as the server routes it (percent-decoded), followed by "?" and the query
string exactly as sent when there is one; `raw_body` is the body's bytes (empty for a GET).

The receiver refuses a timestamp more than 300 s old or more than 30 s ahead of its clock, and a
nonce it has already accepted for that key within the window (a replay). A secret shorter than
16 characters is never used to sign or verify: both sides fail closed (app.domain.secrets' one rule).
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from urllib.parse import unquote, urlsplit

from app.domain.secrets import HIS_SECRET_MIN_LENGTH
from app.domain.secrets import require_secret as _require

KEY_ID_HEADER = "X-HIS-Key-Id"
TIMESTAMP_HEADER = "X-HIS-Timestamp"
NONCE_HEADER = "X-HIS-Nonce"
SIGNATURE_HEADER = "X-HIS-Signature"

MAX_AGE_S = 300
MAX_AHEAD_S = 30
MIN_SECRET_LENGTH = HIS_SECRET_MIN_LENGTH

# [0-9], never \d: \d (like str.isdigit) also matches superscripts and other scripts' digits.
_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,100}")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")
_SIGNATURE = re.compile(r"[0-9a-fA-F]{64}")


def require_secret(secret: str | None) -> bytes:
    """The secret's bytes, or app.domain.secrets.WeakSecret when it is missing or shorter than MIN_SECRET_LENGTH."""
    return _require("the HIS secret", secret, MIN_SECRET_LENGTH).encode("utf-8")


def signing_string(timestamp: str, nonce: str, method: str, path: str, body: bytes) -> bytes:
    return f"{timestamp}\n{nonce}\n{method.upper()}\n{path}\n".encode() + body


def signature(secret: str, timestamp: str, nonce: str, method: str, path: str, body: bytes) -> str:
    return hmac.new(require_secret(secret), signing_string(timestamp, nonce, method, path, body),
                    hashlib.sha256).hexdigest()


def new_nonce() -> str:
    return secrets.token_urlsafe(24)


def signed_headers(key_id: str, secret: str, method: str, path: str, body: bytes,
                   now: float | None = None) -> dict[str, str]:
    timestamp = str(int(time.time() if now is None else now))
    nonce = new_nonce()
    return {KEY_ID_HEADER: key_id, TIMESTAMP_HEADER: timestamp, NONCE_HEADER: nonce,
            SIGNATURE_HEADER: signature(secret, timestamp, nonce, method, path, body)}


def target_of_url(url: str) -> str:
    """The `path` of the signing string for a full URL, as the receiving server will see it."""
    parts = urlsplit(url)
    return unquote(parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def header_problem(key_id: str, timestamp: str, nonce: str, given_signature: str, now: float) -> str | None:
    """Why these headers cannot belong to a valid request (before any secret is looked up), or None."""
    if not (key_id and timestamp and nonce and given_signature):
        return f"{KEY_ID_HEADER}, {TIMESTAMP_HEADER}, {NONCE_HEADER} and {SIGNATURE_HEADER} are required"
    if not _KEY_ID.fullmatch(key_id):
        return "the key id is malformed"
    if not _TIMESTAMP.fullmatch(timestamp):
        return "the timestamp must be unix seconds (1-12 ASCII digits)"
    age = now - int(timestamp)
    if age > MAX_AGE_S:
        return f"the timestamp is more than {MAX_AGE_S} s old"
    if age < -MAX_AHEAD_S:
        return f"the timestamp is more than {MAX_AHEAD_S} s ahead of our clock"
    if not _NONCE.fullmatch(nonce):
        return "the nonce must be 16-64 characters of A-Z a-z 0-9 _ -"
    if not _SIGNATURE.fullmatch(given_signature):
        return "the signature must be 64 hex digits"
    return None


def signature_matches(secret: str, given_signature: str, timestamp: str, nonce: str, method: str, path: str,
                      body: bytes) -> bool:
    """Constant-time check; the caller has checked the headers' shapes (header_problem) first."""
    wanted = signature(secret, timestamp, nonce, method, path, body)
    return hmac.compare_digest(wanted.encode("ascii"), given_signature.lower().encode("ascii", "replace"))
