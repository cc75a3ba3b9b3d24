"""`GET /api/admin/v1/events/stream`: Server-Sent Events of the user's clinics, as they happen.

Staff hear of bookings paid and waiting for confirmation; finance of late payments, discrepancies found and
HIS writes flagged; admins of all four. Authenticated with the bearer token like every admin call (a
browser's EventSource cannot send it: the console reads the stream with fetch), resumable with
`Last-Event-ID`.

Each open stream holds a web thread (gunicorn's gthread worker) until it ends (HPAY_LIVE_STREAM_MAX_S), so
a process serves at most HPAY_LIVE_STREAMS_PER_PROCESS streams at once and answers the next one 503
`too_many_streams` with Retry-After: streams can never take all the threads other requests need.
"""
from __future__ import annotations

import threading

from flask import Response, current_app, request
from flask_smorest import Blueprint

from admin_api.schemas import AdminErrorSchema
from admin_api.security import ADMIN, ADMIN_PREFIX, FINANCE, STAFF, current_staff, staff_required
from app import live_events
from app.domain.errors import Unavailable
from app.extensions import runtime
from app.services.common.live_feed import LiveFeed

blp = Blueprint("admin_live_events", __name__, url_prefix=ADMIN_PREFIX, description="Live events (SSE)")

TYPES_BY_ROLE = {
    STAFF: frozenset({live_events.BOOKING_PAID}),
    FINANCE: frozenset({live_events.LATE_PAYMENT, live_events.DISCREPANCY_FOUND, live_events.HIS_WRITE_FLAGGED}),
    ADMIN: frozenset(live_events.TYPES),
}
BUSY_RETRY_AFTER_S = 10
_SLOTS = "hpay_live_stream_slots"
_slots_lock = threading.Lock()

_STREAM_DOC = {
    "200": {"description": "`text/event-stream`: `ready` (the starting position), then `booking_paid`, "
                           "`late_payment`, `discrepancy_found`, `his_write_flagged` as they happen, each with "
                           "`id:` (send it back as Last-Event-ID to resume) and JSON `data`; comment lines as a "
                           "heartbeat; the stream ends after a few minutes (reconnect)",
            "content": {"text/event-stream": {"schema": {"type": "string"}}}},
    "503": {"description": "`too_many_streams`: this server holds as many streams as it may (Retry-After); "
                           "`live_events_unavailable`: Redis is unreachable",
            "content": {"application/json": {"schema": AdminErrorSchema}}},
}


def _slots() -> threading.BoundedSemaphore:
    slots = current_app.extensions.get(_SLOTS)
    if slots is None:
        with _slots_lock:
            slots = current_app.extensions.setdefault(
                _SLOTS, threading.BoundedSemaphore(runtime().settings.LIVE_STREAMS_PER_PROCESS))
    return slots


@blp.route("/events/stream", methods=["GET"])
@staff_required(STAFF, FINANCE)
@blp.doc(parameters=[{"in": "header", "name": "Last-Event-ID", "required": False,
                      "schema": {"type": "string", "maxLength": live_events.MAX_CURSOR_LEN},
                      "description": "the `id:` of the last event received: the stream resumes right after it"}],
         responses=_STREAM_DOC)
def events_stream():
    """The live events of your clinics (Server-Sent Events)."""
    slots = _slots()
    if not slots.acquire(blocking=False):
        raise Unavailable("too many live streams on this server; reconnect in a moment", "too_many_streams",
                          retry_after_s=BUSY_RETRY_AFTER_S)
    try:
        principal = current_staff()
        feed = LiveFeed(runtime(), principal, TYPES_BY_ROLE[principal.role], request.headers.get("Last-Event-ID"))
    except BaseException:
        slots.release()
        raise

    return Response(_Held(feed, slots), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


class _Held:
    """The feed as a response body that gives its slot back when the server closes it (WSGI calls `close` at
    the end, after a client went away, and also when the body was never started)."""

    def __init__(self, feed: LiveFeed, slots: threading.BoundedSemaphore) -> None:
        self._chunks = iter(feed)
        self._slots = slots
        self._held = True

    def __iter__(self):
        return self

    def __next__(self) -> str:
        return next(self._chunks)

    def close(self) -> None:
        if self._held:
            self._held = False
            self._chunks.close()
            self._slots.release()

    def __del__(self) -> None:
        # A body dropped without being closed (never by a WSGI server; a test client may) still frees its slot.
        self.close()
