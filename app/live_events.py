"""Live events for staff and finance (a booking paid, a late payment, a discrepancy, a HIS write flagged),
carried by Redis Streams, one stream per clinic.

A use case announces an event in its own transaction (`announce(session, …)`); the event is published only
after that transaction commits (the Runtime installs `publish_after_commit` on its sessions) and dropped
when it rolls back, so nobody hears of a payment that was not recorded. Publishing is best effort: with
Redis down the notice is lost and logged, the transaction is not affected, and the database remains the
record (the paid booking is still in the list staff work from).

Streams rather than pub/sub: XADD keeps the last ~MAXLEN events of each clinic with ids, so a console that
lost its connection for a few seconds resumes with `Last-Event-ID` exactly where it stopped (pub/sub drops
whatever was published while nobody listened). A reader's position over several clinics is one cursor
string, `<clinic_id>:<stream id>` per clinic, comma-separated, which is what the SSE `id:` carries.
"""
from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy.orm import Session, sessionmaker

from app.after_commit import defer, run_after_commit

log = logging.getLogger(__name__)

BOOKING_PAID = "booking_paid"
LATE_PAYMENT = "late_payment"
DISCREPANCY_FOUND = "discrepancy_found"
HIS_WRITE_FLAGGED = "his_write_flagged"
TYPES = (BOOKING_PAID, LATE_PAYMENT, DISCREPANCY_FOUND, HIS_WRITE_FLAGGED)

MAXLEN = 10_000
_PENDING = "hpay_live_events"
_CURSOR_PART = re.compile(r"([0-9]{1,10}):([0-9]{1,20}-[0-9]{1,20})")
MAX_CURSOR_LEN = 2000
START = "0-0"


@dataclass(frozen=True)
class LiveEvent:
    clinic_id: int
    type: str
    data: dict
    id: str = ""
    """The stream id (set when read back)."""


def announce(session: Session, clinic_id: int, type_: str, data: dict) -> None:
    """Queue an event to be published once this session's transaction commits (dropped if the transaction, or
    the savepoint it was announced in, rolls back)."""
    if type_ not in TYPES:
        raise ValueError(f"unknown live event type {type_!r}")
    defer(session, _PENDING, LiveEvent(clinic_id, type_, data))


def stream_key(prefix: str, clinic_id: int) -> str:
    return f"{prefix}:live:clinic:{clinic_id}"


class Publisher:
    """XADDs events to their clinic's stream; a Redis failure loses the notice, never the transaction."""

    def __init__(self, redis: Callable[[], Redis], prefix: str) -> None:
        self._redis = redis
        self.prefix = prefix

    def publish(self, events: list[LiveEvent]) -> None:
        try:
            with self._redis().pipeline(transaction=False) as pipe:
                for item in events:
                    payload = {"type": item.type, "at": datetime.now(UTC).isoformat(),
                               "data": json.dumps(item.data, ensure_ascii=False, default=str)}
                    pipe.xadd(stream_key(self.prefix, item.clinic_id), payload, maxlen=MAXLEN, approximate=True)
                pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("live events not published (the database still holds what happened): %s %s",
                        [(e.clinic_id, e.type) for e in events], exc)


def publish_after_commit(factory: sessionmaker, publisher: Publisher) -> None:
    """Publish each session's announced events once its outermost transaction commits; forget those of a
    transaction or savepoint that rolls back."""
    run_after_commit(factory, _PENDING, publisher.publish)


# --- reading ------------------------------------------------------------------------------------------------

def parse_cursor(text: str | None, clinic_ids: tuple[int, ...]) -> dict[int, str]:
    """The positions a Last-Event-ID names for these clinics (others, and anything malformed, ignored)."""
    positions: dict[int, str] = {}
    if not text or len(text) > MAX_CURSOR_LEN:
        return positions
    for part in text.split(","):
        match = _CURSOR_PART.fullmatch(part.strip())
        if match and int(match.group(1)) in clinic_ids:
            positions[int(match.group(1))] = match.group(2)
    return positions


def format_cursor(positions: dict[int, str]) -> str:
    return ",".join(f"{clinic_id}:{position}" for clinic_id, position in sorted(positions.items()))


def latest_positions(redis: Redis, prefix: str, clinic_ids: tuple[int, ...]) -> dict[int, str]:
    """Each clinic's newest event id (START for a stream with none): reading from here gets only new events."""
    positions = {}
    for clinic_id in clinic_ids:
        newest = redis.xrevrange(stream_key(prefix, clinic_id), count=1)
        positions[clinic_id] = _text(newest[0][0]) if newest else START
    return positions


def read(redis: Redis, prefix: str, positions: dict[int, str], block_ms: int, count: int = 100) -> list[LiveEvent]:
    """Events after `positions` (waiting up to block_ms for one), in stream order per clinic."""
    streams = {stream_key(prefix, clinic_id): position for clinic_id, position in positions.items()}
    by_key = {stream_key(prefix, clinic_id): clinic_id for clinic_id in positions}
    found: list[LiveEvent] = []
    for key, entries in redis.xread(streams, count=count, block=block_ms) or []:
        clinic_id = by_key[_text(key)]
        for entry_id, fields in entries:
            fields = {_text(k): _text(v) for k, v in fields.items()}
            try:
                data = json.loads(fields.get("data") or "{}")
            except ValueError:
                data = {}
            found.append(LiveEvent(clinic_id, fields.get("type", ""), {**data, "at": fields.get("at")},
                                   _text(entry_id)))
    return found


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
