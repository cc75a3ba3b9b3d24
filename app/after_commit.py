"""Work that belongs after a transaction commits: a write to Redis (a live event, a place back at the gate).

Queued in the session under a name, done once the outermost transaction commits, and forgotten with the
transaction or savepoint it was queued in when that rolls back, so Redis never hears of what did not happen.
"""
from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker


def defer(session: Session, queue: str, item: object) -> None:
    """Hold `item` in the session's `queue` until its transaction commits."""
    owner = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(queue, []).append((owner, item))


def run_after_commit(factory: sessionmaker, queue: str, handle: Callable[[list], None]) -> None:
    """Give `handle` the items of `queue` once the outermost transaction of a session of `factory` commits."""

    def committed(session: Session) -> None:
        if session.in_nested_transaction():
            return  # a savepoint released: the transaction goes on
        pending = session.info.pop(queue, None)
        if pending:
            handle([item for _owner, item in pending])

    def rolled_back(session: Session, previous: SessionTransaction) -> None:
        pending = session.info.get(queue)
        if not pending:
            return
        if previous.parent is None:
            session.info.pop(queue, None)
        else:
            session.info[queue] = [(owner, item) for owner, item in pending if not _within(owner, previous)]

    event.listen(factory, "after_commit", committed)
    event.listen(factory, "after_soft_rollback", rolled_back)


def _within(owner: SessionTransaction | None, ended: SessionTransaction) -> bool:
    while owner is not None:
        if owner is ended:
            return True
        owner = owner.parent
    return False
