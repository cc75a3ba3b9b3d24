"""The error format of API.md: JSON with `message` and, for business refusals, `error`.

A 503 (a HIS or channel that did not answer) carries `Retry-After`, as does any DomainError that
sets `retry_after_s`. The platform's own dependencies going away is a 503 too, never a 500: the
database (restarted, unreachable, out of connections) is `database_unavailable`, Redis on a path that
needs it (queueing work) `redis_unavailable`, both with Retry-After, and every operation of the
OpenAPI document declares it (`document_unavailable`). The connections recover by themselves: the
pool pings a connection before handing it out and replaces the broken ones.
"""
from __future__ import annotations

import logging

import psycopg
from flask import Flask, jsonify
from flask_smorest import Api
from flask_smorest.spec.plugins import FlaskPlugin
from marshmallow import Schema, fields
from redis import exceptions as redis_errors
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException, InternalServerError

from app.db.availability import database_unavailable
from app.domain.errors import DomainError

log = logging.getLogger(__name__)

# When to try again after a dependency did not answer: the HIS client already retried its reads
# within the request, so the next try is worth a few seconds' wait, not an immediate repeat.
UNAVAILABLE_RETRY_AFTER_S = 5
# A database restart takes a few seconds; a client asking again sooner only adds to the queue.
DATABASE_RETRY_AFTER_S = 5
DATABASE_UNAVAILABLE = "database_unavailable"
REDIS_UNAVAILABLE = "redis_unavailable"
# Operations that answer 503 in their own format (the channels' FAIL) or are the probes themselves.
UNDECLARED_BLUEPRINTS = frozenset({"health", "monitoring", "notify"})


class ApiErrorSchema(Schema):
    """The body of every error the APIs answer (error_response below), whatever raised it: a business refusal, a
    validation failure, an HTTP error (404 of an unknown path, 405, 413) or a dependency that did not answer."""

    message = fields.String(required=True, metadata={
        "description": "for a person (Chinese or English); never parse it", "example": "this slot is sold out"})
    error = fields.String(metadata={
        "description": "stable snake_case code of the refusal, to branch on; absent on a plain HTTP error "
                       "(an unknown path, a wrong method)", "example": "slot_sold_out"})
    errors = fields.Dict(metadata={
        "description": "`validation_failed` only: the messages of each invalid field, by location (`json`, `query`, "
                       "`headers`) then field name", "example": {"json": {"amount_fen": ["Must be at least 1."]}}})


def error_document(message: str, code: str | None = None, details=None) -> dict:
    """The body of an error answer (ApiErrorSchema)."""
    body: dict = {"message": message}
    if code:
        body["error"] = code
    if details:
        body["errors"] = details
    return body


def error_response(status: int, message: str, code: str | None = None, details=None, headers=None):
    response = jsonify(error_document(message, code, details))
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

    def database_error(exc: Exception):
        if not database_unavailable(exc):
            return unexpected(exc)
        log.warning("the database did not answer: %s", exc.__class__.__name__)
        return error_response(503, "the database is not answering right now; try again shortly", DATABASE_UNAVAILABLE,
                              headers=[("Retry-After", str(DATABASE_RETRY_AFTER_S))])

    for error_class in (sa_exc.DBAPIError, sa_exc.TimeoutError, psycopg.OperationalError, psycopg.InterfaceError):
        app.register_error_handler(error_class, database_error)

    def redis_error(exc: Exception):
        log.warning("Redis did not answer: %s", exc.__class__.__name__)
        return error_response(503, "a service the platform needs is not answering right now; try again shortly",
                              REDIS_UNAVAILABLE, headers=[("Retry-After", str(UNAVAILABLE_RETRY_AFTER_S))])

    for error_class in (redis_errors.ConnectionError, redis_errors.TimeoutError):
        app.register_error_handler(error_class, redis_error)


UNAVAILABLE_DOC = ("`database_unavailable`: the database did not answer (e.g. while it restarts); "
                   "`redis_unavailable`: Redis did not answer where the operation needs it (queueing work); "
                   "ask again after `Retry-After` seconds")


def document_unavailable(app: Flask, api: Api) -> None:
    """Declare the 503 of an unavailable database or Redis on every operation (merged with any 503 it already
    documents, e.g. a HIS that did not answer); call after the blueprints are registered."""
    paths = api.spec._paths  # apispec keeps the registered operations here until the document is built
    for rule in app.url_map.iter_rules():
        if rule.endpoint.split(".", 1)[0] in UNDECLARED_BLUEPRINTS:
            continue
        operations = paths.get(FlaskPlugin.flaskpath2openapi(rule.rule), {})
        for method in rule.methods or ():
            operation = operations.get(method.lower())
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            existing = responses.get("503", {}).get("description")
            if existing and UNAVAILABLE_DOC in existing:
                continue
            responses["503"] = {
                **responses.get("503", {}),
                "description": f"{existing}; {UNAVAILABLE_DOC}" if existing else UNAVAILABLE_DOC,
                "headers": {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}},
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ApiError"}}},
            }
