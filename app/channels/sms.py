"""Sending one-time codes by SMS: the gateway interface, our errors, and the provider's HTTP API.

The provider's API (the sandbox's `/sms/` stand-in speaks the same):

    POST {base_url}/v1/send
    X-Sms-App-Key: <app key>
    X-Sms-Timestamp: <unix seconds>           (the provider allows 300 s of skew)
    X-Sms-Nonce: <32 hex characters>          (never reused within the window)
    X-Sms-Signature: hex HMAC-SHA256(secret, app_key + "\\n" + timestamp + "\\n" + nonce + "\\n" + raw_body)
    {"phone": "13800000001", "sign_name": "...", "template_code": "...", "params": {"code": "123456"},
     "out_id": "<our reference>"}

It answers 200 `{"code": "OK", "request_id": "..."}`, or a JSON error `{"code", "message"}`:
`PHONE_THROTTLED` (HTTP 429, with `retry_after_s`) when the phone had too many texts; 400 for a bad
phone, template or parameters; 401 for a bad key, signature, timestamp or nonce; 5xx when it is down.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
from abc import ABC, abstractmethod

import requests

log = logging.getLogger(__name__)

THROTTLED = "PHONE_THROTTLED"


class SmsError(Exception):
    """The text was not sent."""


class SmsUnavailable(SmsError):
    """No answer, a timeout, a 5xx or an unreadable answer: whether the text went out is unknown."""


class SmsNotConfigured(SmsUnavailable):
    """No provider is configured (or production was pointed at a sandbox): nothing can be sent."""


class SmsRejected(SmsError):
    """The provider refused this text with its own code (bad phone, template, key): sending it again
    changes nothing until the cause is fixed."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message


class SmsThrottled(SmsRejected):
    """The provider limits texts to this phone; try again after `retry_after_s`."""

    def __init__(self, code: str, message: str = "", retry_after_s: int | None = None) -> None:
        super().__init__(code, message)
        self.retry_after_s = retry_after_s


class SmsGateway(ABC):
    @abstractmethod
    def send_code(self, phone: str, code: str, *, reference: str | None = None) -> str:
        """Text a one-time code to a mainland mobile number; the provider's request id.

        `reference` is ours, echoed in the provider's records. Raises SmsThrottled, SmsRejected
        or SmsUnavailable."""


def sign(secret: str, app_key: str, timestamp: str, nonce: str, body: bytes) -> str:
    message = f"{app_key}\n{timestamp}\n{nonce}\n".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


class HttpSmsGateway(SmsGateway):
    def __init__(self, base_url: str, app_key: str, secret: str, template_code: str, sign_name: str,
                 timeout: float = 5.0) -> None:
        if not (base_url and app_key and secret and template_code and sign_name):
            raise SmsNotConfigured("the SMS provider's URL, app key, secret, template code and sign name "
                                   "must all be set (HPAY_SMS_*)")
        self.url = f"{base_url.rstrip('/')}/v1/send"
        self.app_key = app_key
        self._secret = secret
        self.template_code = template_code
        self.sign_name = sign_name
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"HttpSmsGateway({self.url!r}, app_key={self.app_key!r})"

    def send_code(self, phone: str, code: str, *, reference: str | None = None) -> str:
        body = json.dumps({"phone": phone, "sign_name": self.sign_name, "template_code": self.template_code,
                           "params": {"code": code}, **({"out_id": reference} if reference else {})},
                          ensure_ascii=False).encode()
        timestamp, nonce = str(int(time.time())), secrets.token_hex(16)
        headers = {"Content-Type": "application/json", "Accept": "application/json",
                   "X-Sms-App-Key": self.app_key, "X-Sms-Timestamp": timestamp, "X-Sms-Nonce": nonce,
                   "X-Sms-Signature": sign(self._secret, self.app_key, timestamp, nonce, body)}
        try:
            response = requests.post(self.url, data=body, headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            raise SmsUnavailable(f"the SMS provider did not answer: {type(exc).__name__}") from None
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict) or not isinstance(answer.get("code"), str):
            raise SmsUnavailable(f"the SMS provider answered HTTP {response.status_code} without a result code")
        if answer["code"] == "OK" and response.status_code == 200 and isinstance(answer.get("request_id"), str):
            return answer["request_id"]
        message = str(answer.get("message") or "")
        if answer["code"] == THROTTLED:
            retry_after = answer.get("retry_after_s")
            raise SmsThrottled(THROTTLED, message, int(retry_after) if isinstance(retry_after, (int, float))
                               and not isinstance(retry_after, bool) and retry_after > 0 else None)
        if response.status_code >= 500:
            raise SmsUnavailable(f"the SMS provider answered HTTP {response.status_code} ({answer['code']})")
        log.error("the SMS provider refused a text: %s %s (HTTP %s)", answer["code"], message,
                  response.status_code)
        raise SmsRejected(answer["code"], message)
