"""The dispatcher's heartbeat: each run that got through writes the time into Redis; readiness and the metrics
read how long ago that was."""
from __future__ import annotations

import time
from dataclasses import dataclass

from app.runtime import Runtime


def heartbeat_key(rt: Runtime) -> str:
    return f"{rt.settings.QUEUE_PREFIX}:dispatcher:heartbeat"


def beat(rt: Runtime, at: float | None = None) -> None:
    """The dispatcher ran to the end (at `at`, unix seconds; default now)."""
    rt.redis.set(heartbeat_key(rt), repr(time.time() if at is None else at))


@dataclass(frozen=True)
class Heartbeat:
    age_s: float | None
    """Seconds since the dispatcher last ran to the end; None when it never did (as far as Redis knows)."""

    def stale(self, limit_s: float) -> bool:
        return self.age_s is not None and self.age_s > limit_s

    def describe(self, limit_s: float) -> str:
        if self.age_s is None:
            return "unknown"
        return f"stale ({self.age_s:.0f} s)" if self.stale(limit_s) else "ok"


def last_beat(rt: Runtime) -> Heartbeat:
    """Raises redis' errors: an unreachable Redis is the caller's to report."""
    raw = rt.redis.get(heartbeat_key(rt))
    if raw is None:
        return Heartbeat(None)
    try:
        return Heartbeat(max(0.0, time.time() - float(raw)))
    except ValueError:
        return Heartbeat(None)
