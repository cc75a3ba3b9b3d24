"""Signing as a HIS key holder would, written from the documented scheme (not from app code):

    X-HIS-Signature = hex HMAC-SHA256(secret,
                                      timestamp + "\\n" + nonce + "\\n" + METHOD + "\\n" + path + "\\n" + raw_body)

with X-HIS-Key-Id, X-HIS-Timestamp and X-HIS-Nonce; `path` is the URL path (decoded) plus "?query" when
there is one. Used against the platform's HIS API and the sandbox HIS alike.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from urllib.parse import unquote, urlsplit

import requests


def his_headers(key_id: str, secret: str, method: str, path: str, body: bytes = b"", *,
                timestamp: int | str | None = None, nonce: str | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or secrets.token_hex(16)
    message = f"{ts}\n{nonce}\n{method}\n{path}\n".encode() + body
    return {"X-HIS-Key-Id": key_id, "X-HIS-Timestamp": ts, "X-HIS-Nonce": nonce,
            "X-HIS-Signature": hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()}


class HisHmac(requests.auth.AuthBase):
    """requests auth that signs each request as it goes on the wire."""

    def __init__(self, key_id: str, secret: str) -> None:
        self.key_id = key_id
        self.secret = secret

    def __eq__(self, other) -> bool:
        return isinstance(other, HisHmac) and (self.key_id, self.secret) == (other.key_id, other.secret)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        parts = urlsplit(request.url)
        path = unquote(parts.path) + (f"?{parts.query}" if parts.query else "")
        body = request.body or b""
        body = body.encode() if isinstance(body, str) else body
        request.headers.update(his_headers(self.key_id, self.secret, request.method, path, body))
        return request


def sandbox_his_auth(sandbox) -> HisHmac:
    account = sandbox.merchants()["his"][0]
    return HisHmac(account["key_id"], account["secret"])
