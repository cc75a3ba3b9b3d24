"""WeChat Pay API v2 signatures (MD5 and HMAC-SHA256).

Signed string: every field except `sign` whose value is not empty, sorted by key (ASCII),
joined as `k=v&…`, then `&key=API_KEY`; the digest is uppercase hex. wechatpy verifies MD5
only (and with a plain `==`), so verification lives here.

Both directions refuse a missing or short key (WeakSecret): with an empty key the "signature" is
a digest anyone can compute, and a verification that passes on it trusts a forgery.
"""
from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from app.domain.secrets import WECHAT_API_KEY_MIN_LENGTH, require_secret

MD5 = "MD5"
HMAC_SHA256 = "HMAC-SHA256"
SIGN_TYPES = (MD5, HMAC_SHA256)


def require_api_key(api_key: str | None) -> str:
    """The merchant's v2 API key, or WeakSecret when it is missing or shorter than WeChat's 32 characters."""
    return require_secret("the WeChat Pay API key", api_key, WECHAT_API_KEY_MIN_LENGTH)


def signing_string(fields: Mapping[str, object], api_key: str) -> bytes:
    pairs = [f"{key}={value}" for key, value in sorted(fields.items())
             if key != "sign" and value is not None and value != ""]
    pairs.append(f"key={api_key}")
    return "&".join(pairs).encode("utf-8")


def sign(fields: Mapping[str, object], api_key: str | None, sign_type: str = MD5) -> str:
    api_key = require_api_key(api_key)
    message = signing_string(fields, api_key)
    if sign_type == MD5:
        return hashlib.md5(message).hexdigest().upper()
    if sign_type == HMAC_SHA256:
        return hmac.new(api_key.encode("utf-8"), message, hashlib.sha256).hexdigest().upper()
    raise ValueError(f"unsupported WeChat Pay sign_type {sign_type!r}")


def verify(fields: Mapping[str, object], api_key: str | None, sign_type: str = MD5) -> bool:
    """True when `fields["sign"]` is the signature of the other fields; compared in constant time.
    WeakSecret (whatever the message) when the key is missing or short."""
    require_api_key(api_key)
    given = fields.get("sign")
    if not isinstance(given, str) or not given:
        return False
    expected = sign(fields, api_key, sign_type)
    return hmac.compare_digest(expected.encode("ascii"), given.encode("utf-8"))
