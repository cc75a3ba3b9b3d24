"""WeChat Pay API v2 signatures (MD5 and HMAC-SHA256).

Signed string: every field except `sign` whose value is not empty, sorted by key (ASCII),
joined as `k=v&…`, then `&key=API_KEY`; the digest is uppercase hex. wechatpy verifies MD5
only (and with a plain `==`), so verification lives here.
"""
from __future__ import annotations

import hashlib
import hmac
from typing import Mapping

MD5 = "MD5"
HMAC_SHA256 = "HMAC-SHA256"
SIGN_TYPES = (MD5, HMAC_SHA256)


def signing_string(fields: Mapping[str, object], api_key: str) -> bytes:
    pairs = [f"{key}={value}" for key, value in sorted(fields.items())
             if key != "sign" and value is not None and value != ""]
    pairs.append(f"key={api_key}")
    return "&".join(pairs).encode("utf-8")


def sign(fields: Mapping[str, object], api_key: str, sign_type: str = MD5) -> str:
    message = signing_string(fields, api_key)
    if sign_type == MD5:
        return hashlib.md5(message).hexdigest().upper()
    if sign_type == HMAC_SHA256:
        return hmac.new(api_key.encode("utf-8"), message, hashlib.sha256).hexdigest().upper()
    raise ValueError(f"unsupported WeChat Pay sign_type {sign_type!r}")


def verify(fields: Mapping[str, object], api_key: str, sign_type: str = MD5) -> bool:
    """True when `fields["sign"]` is the signature of the other fields; compared in constant time."""
    given = fields.get("sign")
    if not isinstance(given, str) or not given:
        return False
    expected = sign(fields, api_key, sign_type)
    return hmac.compare_digest(expected.encode("ascii"), given.encode("utf-8"))
