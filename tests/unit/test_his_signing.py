"""The HIS HMAC scheme (app.his.signing) against the documented signing string, and its header checks."""
from __future__ import annotations

import hashlib
import hmac

import pytest

from app.domain.secrets import WeakSecret
from app.his import signing

SECRET = "s" * 32
NOW = 1_800_000_000


def test_the_signature_is_hmac_sha256_of_the_documented_string():
    body = b'{"card_no": "D0000001"}'
    documented = f"{NOW}\nnonce-0123456789abcdef\nPOST\n/api/his/v1/refunds\n".encode() + body
    assert signing.signature(SECRET, str(NOW), "nonce-0123456789abcdef", "POST", "/api/his/v1/refunds", body) == \
        hmac.new(SECRET.encode(), documented, hashlib.sha256).hexdigest()


def test_signed_headers_verify_and_every_call_gets_a_new_nonce():
    first = signing.signed_headers("his-1", SECRET, "GET", "/his/export?date=2026-01-01", b"", now=NOW)
    second = signing.signed_headers("his-1", SECRET, "GET", "/his/export?date=2026-01-01", b"", now=NOW)
    assert first[signing.NONCE_HEADER] != second[signing.NONCE_HEADER]
    assert signing.header_problem("his-1", first[signing.TIMESTAMP_HEADER], first[signing.NONCE_HEADER],
                                  first[signing.SIGNATURE_HEADER], NOW) is None
    assert signing.signature_matches(SECRET, first[signing.SIGNATURE_HEADER], first[signing.TIMESTAMP_HEADER],
                                     first[signing.NONCE_HEADER], "GET", "/his/export?date=2026-01-01", b"")
    assert not signing.signature_matches(SECRET, first[signing.SIGNATURE_HEADER], first[signing.TIMESTAMP_HEADER],
                                         first[signing.NONCE_HEADER], "GET", "/his/export?date=2026-01-02", b"")


def test_the_signed_path_is_what_the_server_routes():
    assert signing.target_of_url("http://his.example/his/cards/D%2000001/bills") == "/his/cards/D 00001/bills"
    assert signing.target_of_url("http://his.example/his/export?date=2026-01-01") == "/his/export?date=2026-01-01"


@pytest.mark.parametrize("timestamp, nonce, signature, problem", [
    ("\u00b2", "n" * 16, "a" * 64, "1-12 ASCII digits"),
    ("1" * 5000, "n" * 16, "a" * 64, "1-12 ASCII digits"),
    ("\u0661\u0662", "n" * 16, "a" * 64, "1-12 ASCII digits"),
    (str(NOW - 301), "n" * 16, "a" * 64, "old"),
    (str(NOW + 31), "n" * 16, "a" * 64, "ahead"),
    (str(NOW), "n" * 15, "a" * 64, "nonce"),
    (str(NOW), "n" * 16, "\u00e9" * 64, "64 hex digits"),
    (str(NOW), "n" * 16, "", "required"),
])
def test_malformed_headers_are_named_before_any_secret_is_used(timestamp, nonce, signature, problem):
    assert problem in signing.header_problem("his-1", timestamp, nonce, signature, NOW)


@pytest.mark.parametrize("secret", [None, "", "x" * 15])
def test_an_empty_or_short_secret_signs_nothing(secret):
    with pytest.raises(WeakSecret):
        signing.signature(secret, str(NOW), "n" * 16, "GET", "/", b"")
