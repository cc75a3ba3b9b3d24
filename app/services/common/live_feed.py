"""A staff user's live feed as Server-Sent Events: the events of their clinics (app.live_events), from where their
`Last-Event-ID` left off or from now, with a heartbeat comment while nothing happens, ending after a while so
that no thread is held forever (the browser reconnects with the last id it saw, and misses nothing).

Each event's `id:` is the reader's whole position (every clinic's stream id), so resuming from it is exact
across clinics; the first thing sent is a `ready` event carrying the starting position, so a client that
drops before any event still resumes from where it connected.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator

from redis.exceptions import RedisError
from sqlalchemy import select

from app import live_events
from app.db.models import Clinic
from app.domain.errors import Unavailable
from app.runtime import Runtime
from app.services.common.principals import StaffPrincipal

log = logging.getLogger(__name__)

RECONNECT_MS = 3000


def sse(event: str, event_id: str, data: dict) -> str:
    return f"event: {event}\nid: {event_id}\ndata: {json.dumps(data, ensure_ascii=False, default=str)}\n\n"


class LiveFeed:
    """Opened in the request (it reads the user's clinics and the streams' positions), iterated as the body."""

    def __init__(self, rt: Runtime, principal: StaffPrincipal, types: frozenset[str], last_event_id: str | None):
        self.rt = rt
        self.types = types
        self.clinic_ids = principal.clinic_ids
        with rt.db.session() as session:
            self.codes = dict(session.execute(select(Clinic.id, Clinic.code).where(Clinic.id.in_(self.clinic_ids))
                                              ).all())
        self.redis = rt.stream_redis
        prefix = rt.settings.QUEUE_PREFIX
        try:
            self.positions = live_events.latest_positions(self.redis, prefix, self.clinic_ids)
        except (RedisError, OSError) as exc:
            raise Unavailable("live events are unavailable for the moment; the lists are up to date",
                              "live_events_unavailable") from exc
        self.positions.update(live_events.parse_cursor(last_event_id, self.clinic_ids))

    def __iter__(self) -> Iterator[str]:
        settings = self.rt.settings
        heartbeat_s, prefix = settings.LIVE_HEARTBEAT_S, settings.QUEUE_PREFIX
        yield f"retry: {RECONNECT_MS}\n\n"
        yield sse("ready", live_events.format_cursor(self.positions),
                  {"clinic_codes": sorted(self.codes.values()), "types": sorted(self.types)})
        deadline = time.monotonic() + settings.LIVE_STREAM_MAX_S
        last_write = time.monotonic()
        while (left := deadline - time.monotonic()) > 0:
            wait_s = max(0.1, min(heartbeat_s - (time.monotonic() - last_write), left))
            try:
                found = live_events.read(self.redis, prefix, self.positions, int(wait_s * 1000))
            except (RedisError, OSError) as exc:
                # The client reconnects (after `retry`) and resumes from its last id once Redis is back.
                log.warning("live feed ended: Redis is unreachable (%s)", exc)
                yield ": live events are unavailable for the moment\n\n"
                return
            for event in found:
                self.positions[event.clinic_id] = event.id
                if event.type in self.types:
                    last_write = time.monotonic()
                    yield sse(event.type, live_events.format_cursor(self.positions),
                              {**event.data, "type": event.type, "clinic_code": self.codes.get(event.clinic_id)})
            if time.monotonic() - last_write >= heartbeat_s:
                last_write = time.monotonic()
                yield ": heartbeat\n\n"
        yield ": this stream ends here; reconnect with Last-Event-ID\n\n"
