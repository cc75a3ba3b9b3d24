"""Business refusals with stable snake_case codes (API.md `error`) and their HTTP category."""
from __future__ import annotations


class DomainError(Exception):
    http_status = 409
    code = "conflict"

    def __init__(self, message: str, code: str | None = None, details: dict | None = None,
                 retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details or {}
        self.retry_after_s = retry_after_s
        """When asking again may succeed (the API answers it as Retry-After)."""

    @property
    def retry_later(self) -> bool:
        """A refusal of the moment (throttled, a system that did not answer), not of the request itself."""
        return self.http_status == 429 or self.http_status >= 500


class InvalidInput(DomainError):
    http_status = 422
    code = "invalid_input"


class NotFound(DomainError):
    http_status = 404
    code = "not_found"


class Conflict(DomainError):
    http_status = 409
    code = "conflict"


class InvalidTransition(Conflict):
    code = "invalid_transition"


class Unauthorized(DomainError):
    http_status = 401
    code = "unauthorized"


class Forbidden(DomainError):
    http_status = 403
    code = "forbidden"


class TooManyRequests(DomainError):
    http_status = 429
    code = "too_many_requests"


class Unavailable(DomainError):
    """A system we depend on (channel, HIS) did not answer; the request may be retried."""

    http_status = 503
    code = "unavailable"


class TooLarge(DomainError):
    """A body larger than the route accepts (an attachment above HPAY_ATTACHMENT_MAX_BYTES)."""

    http_status = 413
    code = "too_large"
