"""How the sandbox HIS knows its caller, and signs its own calls: the HMAC scheme of every HIS call.

The same scheme as the platform's (app/his/signing.py; the sandbox never imports app), with a HIS key
from `GET /sandbox/merchants` (`his[]`):

    X-HIS-Key-Id, X-HIS-Timestamp (unix seconds, 1-12 ASCII digits), X-HIS-Nonce (16-64 of A-Z a-z 0-9 _ -),
    X-HIS-Signature = hex HMAC-SHA256(secret, timestamp + "\\n" + nonce + "\\n" + METHOD + "\\n" + path
                                              + "\\n" + raw_body)

`path` is the request path (percent-decoded) plus "?" and the query string as sent when there is one.
A timestamp more than 300 s old or 30 s ahead is refused; so is a nonce already accepted for the key
within that window (401 `replayed_request`), remembered in the sandbox's SQLite so that a restart
does not forget it. The window runs on the real clock, not the shifted sandbox clock. A bearer secret
is not accepted.

The sandbox HIS signs its own calls to the platform (bill announcements, events.py) with
`signed_headers`, the same scheme from the sending side.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from urllib.parse import unquote, urlsplit

from flask import Request

from ..world import World

MAX_AGE_S = 300
MAX_AHEAD_S = 30
MIN_SECRET_LENGTH = 16

_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,100}")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")
_SIGNATURE = re.compile(r"[0-9a-fA-F]{64}")

SCHEMA = """
CREATE TABLE IF NOT EXISTS his_api_nonces (
    key_id TEXT NOT NULL,
    nonce TEXT NOT NULL,
    signed_at INTEGER NOT NULL,
    PRIMARY KEY (key_id, nonce)
);
CREATE INDEX IF NOT EXISTS ix_his_api_nonces_signed_at ON his_api_nonces(signed_at);
"""


class Refused(Exception):
    def __init__(self, error: str, message: str) -> None:
        super().__init__(message)
        self.error = error
        self.message = message


def _target(request: Request) -> str:
    query = request.query_string.decode("latin-1")
    return request.path + (f"?{query}" if query else "")


def signature(secret: str, timestamp: str, nonce: str, method: str, target: str, body: bytes) -> str:
    message = f"{timestamp}\n{nonce}\n{method}\n{target}\n".encode() + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def _expected(secret: str, timestamp: str, nonce: str, request: Request) -> str:
    return signature(secret, timestamp, nonce, request.method, _target(request), request.get_data(cache=True))


def target_of_url(url: str) -> str:
    """The `path` a server receiving `url` signs over: the decoded path plus "?query" when there is one."""
    parts = urlsplit(url)
    return unquote(parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def signed_headers(key_id: str, secret: str, method: str, url: str, body: bytes) -> dict[str, str]:
    """The X-HIS-* headers of one call, with a fresh timestamp and nonce."""
    if len(secret) < MIN_SECRET_LENGTH:
        raise LookupError(f"the HIS key {key_id} has no usable secret")
    timestamp, nonce = str(int(time.time())), secrets.token_urlsafe(24)
    return {"X-HIS-Key-Id": key_id, "X-HIS-Timestamp": timestamp, "X-HIS-Nonce": nonce,
            "X-HIS-Signature": signature(secret, timestamp, nonce, method, target_of_url(url), body)}


def _remember_nonce(world: World, key_id: str, nonce: str, signed_at: int) -> bool:
    with world.tx() as conn:
        conn.execute("DELETE FROM his_api_nonces WHERE signed_at < ?", (int(time.time()) - MAX_AGE_S - 60,))
        inserted = conn.execute("INSERT OR IGNORE INTO his_api_nonces(key_id, nonce, signed_at) VALUES (?, ?, ?)",
                                (key_id, nonce, signed_at)).rowcount
    return inserted == 1


def authenticate(request: Request, accounts: list[dict], world: World) -> str:
    """The caller's key id, or Refused."""
    headers = request.headers
    key_id, timestamp = headers.get("X-HIS-Key-Id", ""), headers.get("X-HIS-Timestamp", "")
    nonce, signature = headers.get("X-HIS-Nonce", ""), headers.get("X-HIS-Signature", "")
    if not (key_id and timestamp and nonce and signature):
        raise Refused("unauthorized", "X-HIS-Key-Id, X-HIS-Timestamp, X-HIS-Nonce and X-HIS-Signature are required "
                                      "(HMAC-SHA256; a bearer secret is not accepted)")
    if not (_KEY_ID.fullmatch(key_id) and _TIMESTAMP.fullmatch(timestamp) and _NONCE.fullmatch(nonce)
            and _SIGNATURE.fullmatch(signature)):
        raise Refused("unauthorized", "malformed X-HIS-* header")
    age = time.time() - int(timestamp)
    if age > MAX_AGE_S or age < -MAX_AHEAD_S:
        raise Refused("unauthorized", f"the timestamp is outside -{MAX_AHEAD_S} s .. +{MAX_AGE_S} s of our clock")
    account = next((a for a in accounts if hmac.compare_digest(a["key_id"].encode(), key_id.encode())), None)
    secret = account["secret"] if account else ""
    if len(secret) < MIN_SECRET_LENGTH:
        raise Refused("unauthorized", "unknown HIS API key")
    if not hmac.compare_digest(_expected(secret, timestamp, nonce, request).encode(), signature.lower().encode()):
        raise Refused("unauthorized", "the signature does not match")
    if not _remember_nonce(world, key_id, nonce, int(timestamp)):
        raise Refused("replayed_request", "this nonce was already used with this key")
    return key_id
