"""The error format of API.md: JSON with `message` and, for business refusals, `error`."""
from __future__ import annotations

import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException, InternalServerError

from app.domain.errors import DomainError

log = logging.getLogger(__name__)


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


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def domain_error(exc: DomainError):
        return error_response(exc.http_status, exc.message, exc.code, exc.details or None)

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
