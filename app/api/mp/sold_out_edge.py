"""A booking crowd's repeated sold-out answers, given before the web framework.

When a day's appointments open (放号) most of the crowd's requests name a slot that sold out a moment ago, and this
process already remembers that (app.admission_gate.SoldOutMemo): the answer needs neither Redis nor the database.
What it still cost was Flask: routing, a dozen hooks, the schema, the error handler, about 0.25 ms of CPU a request,
more than the answer itself. This WSGI layer gives exactly the answer the view gives (status, body, headers, the
access-log line and the request metrics) to a request that is unambiguously such a booking, and hands every other
request to Flask untouched:

- POST /api/mp/v1/orders, a JSON body of at most 1 KiB holding exactly a booking's five fields, the ids positive
  integers and the channel the token's (anything the schema might refuse or read differently goes to Flask);
- a bearer token whose signature, claims and expiry hold: the check the view makes before asking the gate (the
  session itself is confirmed only before database work, README "Security");
- no Idempotency-Key (a keyed request's stored first answer wins) and no Origin (CORS answers stay Flask's);
- a sold-out answer this process remembers for that clinic, item, slot and channel
  (app.services.booking.remembered_sold_out); nothing here asks Redis, so nothing here can take a place.

Answers given here are counted in `hpay_booking_sold_out_from_memory_total`.
"""
from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterable

from werkzeug.http import HTTP_STATUS_CODES

from app import metrics
from app.domain.errors import DomainError
from app.errors import error_document
from app.http_basics import REQUEST_ID_HEADER, log_access, request_id, security_headers
from app.runtime import Runtime
from app.services.booking import remembered_sold_out, remembers_sold_out
from app.services.common.staff_scope import MAX_ROW_ID
from app.services.people.mp_auth import read_session
from config.logging import request_id_var

PATH = "/api/mp/v1/orders"
ENDPOINT = "mp_orders.create_order"  # the view's endpoint name: its metrics and these are one series
MAX_BODY_BYTES = 1024
BOOKING_FIELDS = frozenset({"type", "channel", "item_id", "slot_id", "patient_id"})
IDS = ("item_id", "slot_id", "patient_id")


class SoldOutEdge:
    """WSGI middleware in front of the Flask app (installed by app.factory when the gate and its memory are on)."""

    def __init__(self, wsgi_app, rt: Runtime, encode: Callable[[dict], str], hsts: bool, vary_origin: bool) -> None:
        self.wsgi_app, self.rt, self.encode = wsgi_app, rt, encode
        self.headers = [("Content-Type", "application/json"), *security_headers(PATH, "application/json", hsts)]
        if vary_origin:
            # Flask's CORS hook marks every answer of the mini-program API as depending on Origin.
            self.headers.append(("Vary", "Origin"))

    def __call__(self, environ: dict, start_response) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") == "POST" and environ.get("PATH_INFO") == PATH:
            started = time.perf_counter()
            refusal = self._remembered_refusal(environ)
            if refusal is not None:
                return self._answer(environ, start_response, refusal, started)
        return self.wsgi_app(environ, start_response)

    def _remembered_refusal(self, environ: dict) -> DomainError | None:
        """The sold-out refusal the view would give this request from this process's memory, or None."""
        if not remembers_sold_out(self.rt):
            return None  # outside a crowd: no body read, no token checked twice
        if "HTTP_IDEMPOTENCY_KEY" in environ or "HTTP_ORIGIN" in environ:
            return None
        if environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower() != "application/json":
            return None
        token = _bearer(environ.get("HTTP_AUTHORIZATION", ""))
        length = environ.get("CONTENT_LENGTH", "")
        if not token or not (length.isascii() and length.isdigit() and 0 < int(length) <= MAX_BODY_BYTES):
            return None
        booking = _booking(_read_and_put_back(environ, int(length)))
        if booking is None:
            return None
        try:
            principal = read_session(self.rt, token).principal
        except DomainError:
            return None  # Flask answers it (401 and its code)
        if booking["channel"] != principal.channel:
            return None
        return remembered_sold_out(self.rt, principal.clinic_id, booking["item_id"], booking["slot_id"],
                                   booking["channel"])

    def _answer(self, environ: dict, start_response, refusal: DomainError, started: float) -> list[bytes]:
        status = refusal.http_status
        body = (self.encode(error_document(refusal.message, refusal.code, refusal.details or None)) + "\n").encode()
        rid = request_id(environ.get("HTTP_X_REQUEST_ID"))
        start_response(f"{status} {HTTP_STATUS_CODES[status].upper()}",
                       [*self.headers, ("Content-Length", str(len(body))), (REQUEST_ID_HEADER, rid)])
        context = request_id_var.set(rid)
        try:
            log_access("POST", PATH, status, started)
        finally:
            request_id_var.reset(context)
        metrics.count_request(ENDPOINT, "POST", status, time.perf_counter() - started)
        metrics.SOLD_OUT_FROM_MEMORY.labels(refusal.code).inc()
        return [body]


def _bearer(header: str) -> str:
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _read_and_put_back(environ: dict, length: int) -> bytes:
    """The body, read once here and left for Flask to read again if the request goes on."""
    raw = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(raw)
    return raw


def _booking(raw: bytes) -> dict | None:
    """The body when it is exactly a booking the schema would take as it is, else None."""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if type(body) is not dict or body.keys() != BOOKING_FIELDS or body["type"] != "booking":
        return None
    if type(body["channel"]) is not str:
        return None
    if not all(type(body[name]) is int and 0 < body[name] <= MAX_ROW_ID for name in IDS):
        return None
    return body
