"""Idempotency-Key on the creating POSTs of both APIs: one helper for every such view.

The view names the scope of its keys (who, and which operation) and how to produce its answer; a repeat
with the same key and body gets the first answer (app.services.common.idempotency), whatever the status.
"""
from __future__ import annotations

from collections.abc import Callable

from flask import Response, make_response, request

from app.extensions import runtime
from app.services.common import idempotency

HEADER = "Idempotency-Key"
PARAMETER = {"in": "header", "name": HEADER, "required": False,
             "schema": {"type": "string", "maxLength": idempotency.MAX_KEY_LENGTH}}


def answer_once(scope: str, body: dict, produce: Callable[[], tuple[int, dict]]) -> Response:
    """`produce()` -> (status, document), done at most once per Idempotency-Key of this scope (when sent)."""
    status, document = idempotency.run(runtime(), scope, request.headers.get(HEADER), body, produce)
    return make_response(document, status)
