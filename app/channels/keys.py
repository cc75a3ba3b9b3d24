"""Whether key material an operator hands us is usable, checked when it is stored (a 422 then, rather than a
payment that fails later): RSA keys for Alipay, WeChat's merchant certificate and its private key.
Messages name the field, never the value."""
from __future__ import annotations

from Cryptodome.PublicKey import RSA
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from app.domain.errors import InvalidInput
from app.domain.secrets import RSA_KEY_MIN_BITS, RSA_KEY_MIN_LENGTH, require_secret


def _unusable(field: str, why: str) -> InvalidInput:
    return InvalidInput(f"{field} {why}", "invalid_key", {field: [why]})


def require_rsa_key(field: str, pem: str | None, *, private: bool) -> str:
    """`pem` when it is an RSA key (private or public, as asked) of at least 2048 bits."""
    require_secret(field, pem, RSA_KEY_MIN_LENGTH)
    try:
        key = RSA.import_key(pem)
    except (ValueError, IndexError, TypeError):
        raise _unusable(field, "is not a readable RSA key (PEM)") from None
    if private and not key.has_private():
        raise _unusable(field, "is a public key; the private key is needed")
    if not private and key.has_private():
        raise _unusable(field, "is a private key; give the public key only")
    if key.size_in_bits() < RSA_KEY_MIN_BITS:
        raise _unusable(field, f"is shorter than {RSA_KEY_MIN_BITS} bits")
    return pem


def require_certificate_pair(cert_pem: str, key_pem: str) -> tuple[str, str]:
    """WeChat's merchant certificate and the private key that belongs to it, both PEM."""
    try:
        certificate = x509.load_pem_x509_certificate(cert_pem.encode("utf-8"))
    except ValueError:
        raise _unusable("cert_pem", "is not a readable certificate (PEM)") from None
    try:
        key = serialization.load_pem_private_key(key_pem.encode("utf-8"), password=None)
    except (ValueError, TypeError):
        raise _unusable("key_pem", "is not a readable, unencrypted private key (PEM)") from None
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    if (certificate.public_key().public_bytes(serialization.Encoding.PEM, public)
            != key.public_key().public_bytes(serialization.Encoding.PEM, public)):
        raise _unusable("key_pem", "is not the private key of cert_pem")
    return cert_pem, key_pem
