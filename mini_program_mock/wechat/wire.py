"""WeChat Pay v2 on the wire: XML bodies, v2 signatures, refund-notification encryption, ids and times."""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import string
import xml.etree.ElementTree as ET
from datetime import datetime

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ..world import SHANGHAI

SIGN_TYPES = ("MD5", "HMAC-SHA256")
_ALNUM = string.ascii_letters + string.digits


class XmlError(ValueError):
    """The body is not a flat `<xml>` document the API accepts."""


def signing_string(fields: dict, api_key: str) -> bytes:
    pairs = [f"{k}={fields[k]}" for k in sorted(fields) if k != "sign" and fields[k] not in (None, "")]
    pairs.append(f"key={api_key}")
    return "&".join(pairs).encode("utf-8")


def sign(fields: dict, api_key: str, sign_type: str = "MD5") -> str:
    payload = signing_string(fields, api_key)
    if sign_type == "HMAC-SHA256":
        return hmac.new(api_key.encode("utf-8"), payload, hashlib.sha256).hexdigest().upper()
    if sign_type == "MD5":
        return hashlib.md5(payload).hexdigest().upper()
    raise ValueError(f"unsupported sign_type {sign_type!r}")


def signature_valid(fields: dict, api_key: str) -> bool:
    """Check `sign` with the method the message itself names in `sign_type` (MD5 when absent)."""
    sign_type = fields.get("sign_type") or "MD5"
    if sign_type not in SIGN_TYPES or not fields.get("sign"):
        return False
    return hmac.compare_digest(sign(fields, api_key, sign_type), fields["sign"])


def parse_xml(body: bytes) -> dict[str, str]:
    # WeChat refuses DTDs outright (its XXE advisory); so does the sandbox.
    if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        raise XmlError("DTD is not allowed")
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise XmlError(str(exc)) from exc
    if root.tag != "xml":
        raise XmlError("root element must be <xml>")
    fields: dict[str, str] = {}
    for child in root:
        if len(child):
            raise XmlError(f"<{child.tag}> must hold text, not elements")
        fields[child.tag] = child.text or ""
    return fields


def _cdata(value: str) -> str:
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def to_xml(fields: dict, root: str = "xml") -> str:
    """WeChat's own style: integers bare, every other value in CDATA."""
    parts = [f"<{root}>"]
    for key, value in fields.items():
        if value is None:
            continue
        text = str(value) if isinstance(value, int) else _cdata(str(value))
        parts.append(f"<{key}>{text}</{key}>")
    parts.append(f"</{root}>")
    return "".join(parts)


def signed_xml(fields: dict, api_key: str, sign_type: str) -> str:
    present = {k: v for k, v in fields.items() if v is not None}
    return to_xml({**present, "sign": sign({k: str(v) for k, v in present.items()}, api_key, sign_type)})


def encrypt_req_info(plaintext: str, api_key: str) -> str:
    """Refund notification `req_info`: base64(AES-256-ECB(PKCS7), key = lowercase hex md5(API key))."""
    key = hashlib.md5(api_key.encode("utf-8")).hexdigest().encode("ascii")
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext.encode("utf-8")) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode("ascii")


def nonce(length: int = 32) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(length))


def digits(count: int) -> str:
    return "".join(secrets.choice(string.digits) for _ in range(count))


def compact_time(epoch: float) -> str:
    """yyyyMMddHHmmss in Asia/Shanghai (time_start, time_expire, time_end)."""
    return datetime.fromtimestamp(epoch, SHANGHAI).strftime("%Y%m%d%H%M%S")


def dashed_time(epoch: float) -> str:
    """yyyy-MM-dd HH:mm:ss in Asia/Shanghai (bills, refund success times)."""
    return datetime.fromtimestamp(epoch, SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


def parse_compact_time(text: str) -> float:
    if len(text) != 14 or not text.isdigit():
        raise ValueError(f"{text!r} is not yyyyMMddHHmmss")
    return datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=SHANGHAI).timestamp()
