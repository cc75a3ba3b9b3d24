"""Sending the HIS outbox: one write at a time, retried with backoff, flagged after the horizon, and its
outcome applied through the table of write kinds.

Each kind of write (`WriteKind`) says how it is performed against the HIS client and what its outcome
means: `on_sent` and `on_rejected` run in the same transaction as the row's status change, so a write is
never marked sent without its consequence (an order completed, refund parts released) or the other way
round. The packages that create writes register their kinds (`register_kind`) in their own `his_kinds`
module; this module imports none of them, and `send` refuses a kind nobody registered.

A send takes two short transactions around the HIS call: one reads what the call needs, the other applies
the answer if the row is still pending. HisUnavailable (the outcome is unknown) schedules a retry under the
same idempotency key; after HIS_RETRY_HORIZON_S (scaled by HPAY_RETRY_TIME_SCALE) of failures the write
is flagged for a person.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from app import live_events
from app.db.models import Clinic, HisOutbox, Order
from app.db.types import utcnow
from app.domain.backoff import HIS_RETRY_HORIZON_S, HIS_RETRY_SCHEDULE, delay_after
from app.domain.his_writes import HisWriteStatus
from app.his.base import HisClient, HisRejected, HisUnavailable
from app.runtime import Runtime
from app.services.common.audit import record_system_event
from app.services.common.status import set_status, update_while
from app.services.his.gateway import his_client

log = logging.getLogger(__name__)

PENDING, SENT, REJECTED, FLAGGED = (HisWriteStatus.PENDING, HisWriteStatus.SENT, HisWriteStatus.REJECTED,
                                    HisWriteStatus.FLAGGED)
# How long a write that waits for another (a revert behind its registration) waits before looking again.
MIN_WAIT_S = 1.0


@dataclass(frozen=True)
class WriteRequest:
    """What a write needs from the database, read before the HIS call (no transaction spans the call)."""

    kind: str
    key: str
    order_no: str | None
    payload: dict
    context: dict = field(default_factory=dict)
    """What the kind's `prepare` read (e.g. the patient a registration is for)."""


@dataclass(frozen=True)
class Performed:
    """The HIS's answer to a write it made (or had made under this key)."""

    record_id: str | None
    """The HIS's record (a ledger record id, a bill id)."""
    detail: Any = None
    """Whatever `on_sent` needs from the answer."""


@dataclass(frozen=True)
class WriteKind:
    name: str
    perform: Callable[[HisClient, WriteRequest], Performed]
    """The HIS call, outside any transaction; raises HisUnavailable or HisRejected."""
    on_sent: Callable[[Session, HisOutbox, Performed], None] | None = None
    on_rejected: Callable[[Session, HisOutbox, HisRejected], None] | None = None
    prepare: Callable[[Session, HisOutbox], dict] | None = None
    """Reads what `perform` needs beyond the payload, in the first transaction."""
    not_yet: Callable[[Session, HisOutbox], bool] | None = None
    """True while the write must wait for another one to settle."""


class UnknownWriteKind(LookupError):
    """A HIS write whose kind no package registered (the use cases were not loaded through app.services)."""


KINDS: dict[str, WriteKind] = {}


def register_kind(kind: WriteKind) -> WriteKind:
    existing = KINDS.get(kind.name)
    if existing is not None and existing is not kind:
        raise ValueError(f"HIS write kind {kind.name!r} is registered twice")
    KINDS[kind.name] = kind
    return kind


def kind_of(name: str) -> WriteKind:
    try:
        return KINDS[name]
    except KeyError:
        raise UnknownWriteKind(f"no handler is registered for HIS write kind {name!r} (import app.services, which "
                               "loads every package's his_kinds)") from None


def send(rt: Runtime, outbox_id: int) -> str:
    """Send one pending write; returns the row's status afterwards."""
    with rt.db.session() as session:
        row = session.get(HisOutbox, outbox_id)
        if row is None or row.status != PENDING:
            return row.status if row else "missing"
        kind = kind_of(row.kind)
        if kind.not_yet is not None and kind.not_yet(session, row):
            wait = max(MIN_WAIT_S, 5 * rt.settings.RETRY_TIME_SCALE)
            update_while(session, row, PENDING, next_attempt_at=utcnow() + timedelta(seconds=wait))
            return row.status
        request = _request(session, row, kind)
        client = his_client(rt, session.get(Clinic, row.clinic_id))
    outcome: Performed | HisUnavailable | HisRejected
    try:
        outcome = kind.perform(client, request)
    except (HisUnavailable, HisRejected) as exc:
        outcome = exc
    with rt.db.session() as session:
        row = session.get(HisOutbox, outbox_id)
        if row.status != PENDING:
            return row.status
        if isinstance(outcome, HisUnavailable):
            _retry_or_flag(rt, session, row, f"{outcome.__class__.__name__}: {outcome}")
        elif isinstance(outcome, HisRejected):
            _reject(session, row, kind, outcome)
        else:
            _mark_sent(session, row, kind, outcome)
        return row.status


def _request(session: Session, row: HisOutbox, kind: WriteKind) -> WriteRequest:
    order_no = row.payload.get("order_no")
    if order_no is None and row.order_id is not None:
        order_no = session.get(Order, row.order_id).order_no
    context = kind.prepare(session, row) if kind.prepare is not None else {}
    return WriteRequest(row.kind, row.idempotency_key, order_no, dict(row.payload), context)


def _retry_or_flag(rt: Runtime, session: Session, row: HisOutbox, error: str) -> None:
    now = utcnow()
    attempts, last_error = row.attempts + 1, error[:500]
    horizon = timedelta(seconds=HIS_RETRY_HORIZON_S * rt.settings.RETRY_TIME_SCALE)
    if now - row.created_at >= horizon:
        if set_status(session, row, FLAGGED, reason=f"not sent after {attempts} attempts", attempts=attempts,
                      last_error=last_error):
            log.error("HIS write %s flagged for a person after %s attempts: %s", row.idempotency_key, attempts,
                      error)
            record_system_event(session, row.clinic_id, "his_write_flagged", "his_outbox", row.id,
                                after={"idempotency_key": row.idempotency_key, "kind": row.kind,
                                       "attempts": attempts, "last_error": last_error})
            live_events.announce(session, row.clinic_id, live_events.HIS_WRITE_FLAGGED,
                                 {"kind": row.kind, "order_no": row.payload.get("order_no") or _order_no(session, row),
                                  "attempts": attempts, "last_error": last_error})
        return
    delay = delay_after(HIS_RETRY_SCHEDULE, attempts) * rt.settings.RETRY_TIME_SCALE
    update_while(session, row, PENDING, attempts=attempts, last_error=last_error,
                 next_attempt_at=now + timedelta(seconds=delay))
    log.warning("HIS write %s failed (attempt %s), retrying in %.1fs: %s", row.idempotency_key, attempts, delay,
                error)


def _order_no(session: Session, row: HisOutbox) -> str | None:
    return session.get(Order, row.order_id).order_no if row.order_id is not None else None


def _reject(session: Session, row: HisOutbox, kind: WriteKind, exc: HisRejected) -> None:
    error = f"{exc.code}: {exc.message}"[:500]
    if not set_status(session, row, REJECTED, reason=f"the HIS refused it: {exc.code}", attempts=row.attempts + 1,
                      last_error=error):
        return
    log.error("HIS refused write %s: %s", row.idempotency_key, error)
    if kind.on_rejected is not None:
        kind.on_rejected(session, row, exc)


def _mark_sent(session: Session, row: HisOutbox, kind: WriteKind, performed: Performed) -> None:
    if not set_status(session, row, SENT, reason="the HIS recorded it", sent_at=utcnow(),
                      his_record_id=performed.record_id, attempts=row.attempts + 1):
        return
    if kind.on_sent is not None:
        kind.on_sent(session, row, performed)


def redrive(session: Session, row: HisOutbox, why: str, actor: str = "system") -> bool:
    """Send a sent or flagged write again under its own idempotency key (the HIS records it once); False when
    it is pending already or was moved meanwhile."""
    if row.status == PENDING:
        return False
    return set_status(session, row, PENDING, reason=f"re-driven: {why}", actor=actor, next_attempt_at=utcnow(),
                      last_error=f"re-driven: {why}"[:500])
