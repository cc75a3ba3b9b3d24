"""The error format of API.md: JSON with `message` and, for business refusals, `error`.

A 503 (a HIS or channel that did not answer) carries `Retry-After`, as does any DomainError that
sets `retry_after_s`.
"""
from __future__ import annotations

import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException, InternalServerError

from app.domain.errors import DomainError

log = logging.getLogger(__name__)

# When to try again after a dependency did not answer: the HIS client already retried its reads
# within the request, so the next try is worth a few seconds' wait, not an immediate repeat.
UNAVAILABLE_RETRY_AFTER_S = 5


def error_response(status: int, message: str, code: str | None = None, details=None, headers=None):
    body: dict = {"message": message}
    if code:
        body["error"] = code
    if details:
        body["errors"] = details
    response = jsonify(body)
    response.status_code = status
    for name, value in (headers or []):
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def _retry_after(exc: DomainError) -> list[tuple[str, str]]:
    seconds = exc.retry_after_s
    if seconds is None and exc.http_status == 503:
        seconds = UNAVAILABLE_RETRY_AFTER_S
    return [] if seconds is None else [("Retry-After", str(max(1, int(seconds))))]


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def domain_error(exc: DomainError):
        return error_response(exc.http_status, exc.message, exc.code, exc.details or None,
                              headers=_retry_after(exc))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        details = None
        data = getattr(exc, "data", None)
        if isinstance(data, dict) and data.get("messages"):
            details = data["messages"]
        message = exc.description or exc.name
        code = None
        if exc.code == 422:
            message, code = "The request is not valid; see `errors` for each field.", "validation_failed"
        return error_response(exc.code or 500, message, code, details, headers=exc.get_headers())

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error")
        return error_response(500, InternalServerError.description, "internal_error")
