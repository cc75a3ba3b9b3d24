"""WeChat Pay v2 signatures against the official test vector of the WeChat Pay signature guide."""
from __future__ import annotations

import hashlib

import pytest

from app.channels import wechat_sign
from app.domain.secrets import WeakSecret, require_secret

API_KEY = "192006250b4c09247ec02edce69f6a2d"
FIELDS = {
    "appid": "wxd930ea5d5a258f4f",
    "mch_id": "10000100",
    "device_info": "1000",
    "body": "test",
    "nonce_str": "ibuaiVcKdpRxkhJA",
}
MD5_SIGN = "9A0A8659F005D6984697E2CA0A9CF3B7"
HMAC_SIGN = "6A9AE1657590FD6257D693A078E1C3E4BB6BA4DC30B23E0EE2496E54170DACD6"


def test_signing_string_is_sorted_and_keyed():
    assert wechat_sign.signing_string(FIELDS, API_KEY) == (
        b"appid=wxd930ea5d5a258f4f&body=test&device_info=1000&mch_id=10000100"
        b"&nonce_str=ibuaiVcKdpRxkhJA&key=192006250b4c09247ec02edce69f6a2d"
    )


def test_official_md5_vector():
    assert wechat_sign.sign(FIELDS, API_KEY, "MD5") == MD5_SIGN


def test_official_hmac_sha256_vector():
    assert wechat_sign.sign(FIELDS, API_KEY, "HMAC-SHA256") == HMAC_SIGN


def test_empty_values_are_dropped():
    padded = {**FIELDS, "attach": "", "detail": None}
    assert wechat_sign.sign(padded, API_KEY, "MD5") == MD5_SIGN
    assert wechat_sign.sign(padded, API_KEY, "HMAC-SHA256") == HMAC_SIGN


def test_sign_field_is_excluded():
    assert wechat_sign.sign({**FIELDS, "sign": "ANYTHING"}, API_KEY) == MD5_SIGN


def test_sign_type_field_is_itself_signed():
    assert wechat_sign.sign({**FIELDS, "sign_type": "HMAC-SHA256"}, API_KEY, "HMAC-SHA256") != HMAC_SIGN


@pytest.mark.parametrize("sign_type, signature", [("MD5", MD5_SIGN), ("HMAC-SHA256", HMAC_SIGN)])
def test_verify_accepts_the_official_signature(sign_type, signature):
    assert wechat_sign.verify({**FIELDS, "sign": signature}, API_KEY, sign_type)


@pytest.mark.parametrize("sign_type, signature", [("MD5", MD5_SIGN), ("HMAC-SHA256", HMAC_SIGN)])
def test_verify_detects_tampering(sign_type, signature):
    assert not wechat_sign.verify({**FIELDS, "body": "test2", "sign": signature}, API_KEY, sign_type)
    assert not wechat_sign.verify({**FIELDS, "total_fee": "1", "sign": signature}, API_KEY, sign_type)
    assert not wechat_sign.verify({**FIELDS, "sign": signature}, API_KEY + "0", sign_type)
    assert not wechat_sign.verify({**FIELDS, "sign": signature.lower()}, API_KEY, sign_type)


def test_verify_rejects_the_other_algorithm_and_a_missing_sign():
    assert not wechat_sign.verify({**FIELDS, "sign": MD5_SIGN}, API_KEY, "HMAC-SHA256")
    assert not wechat_sign.verify({**FIELDS, "sign": HMAC_SIGN}, API_KEY, "MD5")
    assert not wechat_sign.verify(FIELDS, API_KEY, "MD5")
    assert not wechat_sign.verify({**FIELDS, "sign": "签名"}, API_KEY, "MD5")


def test_unknown_sign_type_is_refused():
    with pytest.raises(ValueError):
        wechat_sign.sign(FIELDS, API_KEY, "SHA1")


@pytest.mark.parametrize("weak_key", [None, "", "   ", API_KEY[:31], " " * 40])
def test_a_missing_or_short_key_neither_signs_nor_verifies(weak_key):
    # With an empty key the "signature" is an MD5 anyone can compute: it must not verify, nor be produced.
    forged = hashlib.md5(wechat_sign.signing_string(FIELDS, weak_key or "")).hexdigest().upper()
    with pytest.raises(WeakSecret, match="WeChat Pay API key"):
        wechat_sign.sign(FIELDS, weak_key, "MD5")
    for sign_type in wechat_sign.SIGN_TYPES:
        with pytest.raises(WeakSecret):
            wechat_sign.verify({**FIELDS, "sign": forged}, weak_key, sign_type)


def test_the_refusal_names_the_key_never_its_value():
    with pytest.raises(WeakSecret) as refused:
        wechat_sign.sign(FIELDS, "tiny-secret", "MD5")
    assert "tiny-secret" not in str(refused.value) and refused.value.code == "weak_secret"


@pytest.mark.parametrize("value, ok", [("x" * 32, True), ("x" * 31, False), ("", False), (None, False),
                                       ("\t" * 32, False)])
def test_require_secret_is_one_minimum_length_rule(value, ok):
    if ok:
        assert require_secret("a key", value, 32) == value
    else:
        with pytest.raises(WeakSecret, match="a key"):
            require_secret("a key", value, 32)
