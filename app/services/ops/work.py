"""How much work the dispatcher owes, read from the tables it leases from.

The lease specs (workers/dispatcher.py `LEASES`) are handed in by the caller: every table of work that has a
spec is measured the same way, so a new outbox is covered by its spec alone. A row is *backlog* while it is
in one of its spec's due statuses (and meets the spec's other conditions); it is *due* once its time has come
(or, for specs whose NULL time means "never looked at", while that time is NULL). The oldest due row's age is
counted from its time, or from the spec's `due_since` column when the time is NULL.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import case, func, or_, select

from app.db.types import utcnow
from app.runtime import Runtime


class WorkSpec(Protocol):
    """What this module reads of a lease spec (workers.dispatcher.LeaseSpec)."""

    name: str
    model: type
    status: Any
    due_statuses: tuple[str, ...]
    time: Any
    where: Callable[[datetime], list]
    due_when_null: bool
    queue: str
    job: str


@dataclass(frozen=True)
class Backlog:
    name: str
    queue: str
    backlog: int
    """Rows in a due status: work not done yet, whether due now or waiting (a lease, a retry's backoff)."""
    due: int
    """Of those, the rows whose time has come."""
    oldest_due_age_s: float
    """How long the oldest due row has been due (0 when none is)."""


def backlog_of(rt: Runtime, spec: WorkSpec, now: datetime | None = None) -> Backlog:
    now = now or utcnow()
    due = or_(spec.time.is_(None), spec.time <= now) if spec.due_when_null else spec.time <= now
    due_since = getattr(spec, "due_since", None)
    since = spec.time if due_since is None else func.coalesce(spec.time, due_since)
    query = (select(func.count(), func.coalesce(func.sum(case((due, 1), else_=0)), 0), func.min(case((due, since))))
             .select_from(spec.model)
             .where(spec.status.in_([str(s) for s in spec.due_statuses]), *spec.where(now)))
    with rt.db.session() as session:
        total, due_count, oldest = session.execute(query).one()
    age = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
    return Backlog(spec.name, spec.queue, int(total), int(due_count), age)


def backlogs(rt: Runtime, specs: Iterable[WorkSpec]) -> list[Backlog]:
    now = utcnow()
    return [backlog_of(rt, spec, now) for spec in specs]
