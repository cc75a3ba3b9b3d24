"""The Alipay open platform's wire format: signed strings, RSA signatures, responses, amounts, times.

Requests and notifications are signed over `k=v&…` of the sorted, non-empty
parameters with their raw (unescaped) values. A synchronous response is signed
over the exact JSON text of its `*_response` value, so the envelope is written
by hand around that text instead of dumping the whole document.
"""
from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache

from Cryptodome.Hash import SHA, SHA256
from Cryptodome.PublicKey import RSA
from Cryptodome.Signature import PKCS1_v1_5

SIGN_HASHES = {"RSA2": SHA256, "RSA": SHA}

MAX_AMOUNT_FEN = 100_000_000 * 100
SERVICE_FEE_RATE = Decimal("0.006")

ALIPAY_TIME = "%Y-%m-%d %H:%M:%S"


class GatewayError(Exception):
    """A failure answered to the caller in the response envelope (signed whenever the app is known)."""

    def __init__(self, code: str, msg: str, sub_code: str, sub_msg: str, *, envelope: str | None = None):
        super().__init__(f"{code} {sub_code}: {sub_msg}")
        self.code, self.msg, self.sub_code, self.sub_msg = code, msg, sub_code, sub_msg
        # Alipay answers some failures (unknown method, bad auth code) under "error_response".
        self.envelope = envelope

    def payload(self) -> dict:
        return {"code": self.code, "msg": self.msg, "sub_code": self.sub_code, "sub_msg": self.sub_msg}


def missing_argument(sub_code: str, sub_msg: str, **kw) -> GatewayError:
    return GatewayError("40001", "Missing Required Arguments", sub_code, sub_msg, **kw)


def invalid_argument(sub_code: str, sub_msg: str, **kw) -> GatewayError:
    return GatewayError("40002", "Invalid Arguments", sub_code, sub_msg, **kw)


def business_failure(sub_code: str, sub_msg: str) -> GatewayError:
    return GatewayError("40004", "Business Failed", sub_code, sub_msg)


def invalid_parameter(sub_msg: str) -> GatewayError:
    return business_failure("ACQ.INVALID_PARAMETER", sub_msg)


def success(**fields) -> dict:
    return {"code": "10000", "msg": "Success", **fields}


# --- signatures ------------------------------------------------------------
def signed_string(params: Mapping[str, str], exclude: tuple[str, ...] = ("sign",)) -> str:
    return "&".join(f"{k}={params[k]}" for k in sorted(params) if k not in exclude and params[k] not in ("", None))


@lru_cache(maxsize=64)
def _rsa_key(pem: str) -> RSA.RsaKey:
    return RSA.import_key(pem)


def rsa_sign(private_pem: str, message: str, sign_type: str = "RSA2") -> str:
    digest = SIGN_HASHES[sign_type].new(message.encode("utf-8"))
    return base64.b64encode(PKCS1_v1_5.new(_rsa_key(private_pem)).sign(digest)).decode("ascii")


def rsa_verify(public_pem: str, message: str, signature: str, sign_type: str = "RSA2") -> bool:
    try:
        raw = base64.b64decode(signature, validate=False)
    except (binascii.Error, ValueError):
        return False
    digest = SIGN_HASHES[sign_type].new(message.encode("utf-8"))
    return bool(PKCS1_v1_5.new(_rsa_key(public_pem)).verify(digest, raw))


def render_response(envelope: str, payload: dict, private_pem: str | None, sign_type: str = "RSA2") -> bytes:
    """`{"<envelope>":{…},"sign":"…"}`, the signature over the exact text of the value; unsigned without a key."""
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    body = f'{{"{envelope}":{text}'
    if private_pem:
        body += f',"sign":"{rsa_sign(private_pem, text, sign_type)}"'
    return (body + "}").encode("utf-8")


# --- money -------------------------------------------------------------------
def yuan_to_fen(value: object) -> int:
    """A positive yuan amount with at most two decimals ("12.5", "0.01", or a JSON number) as fen."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError("amount must be a yuan string")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise ValueError("amount is not a number") from exc
    if not amount.is_finite() or amount.as_tuple().exponent < -2:
        raise ValueError("amount has more than two decimals")
    fen = int(amount * 100)
    if fen <= 0 or fen > MAX_AMOUNT_FEN:
        raise ValueError("amount must be between 0.01 and 100000000")
    return fen


def fen_to_yuan(fen: int) -> str:
    return str((Decimal(fen) / 100).quantize(Decimal("0.01")))


def service_fee_fen(amount_fen: int) -> int:
    """Alipay's 0.6% service fee on an amount, rounded half-up to the fen."""
    return int((Decimal(amount_fen) * SERVICE_FEE_RATE).quantize(Decimal("1"), rounding=ROUND_HALF_UP))


# --- time ----------------------------------------------------------------------
def alipay_time(moment: datetime) -> str:
    return moment.strftime(ALIPAY_TIME)


def alipay_time_ms(moment: datetime) -> str:
    """Alipay writes refund times with milliseconds ("2015-04-28 15:45:57.320")."""
    return moment.strftime(ALIPAY_TIME) + f".{moment.microsecond // 1000:03d}"
