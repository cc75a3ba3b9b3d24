"""A reconciliation run's life and the status of what it finds."""
from __future__ import annotations

from enum import StrEnum

from app.domain.state_machine import StateMachine


class RunStatus(StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


RECONCILIATION_RUN = StateMachine("reconciliation run", RunStatus, {
    RunStatus.RUNNING: {RunStatus.DONE, RunStatus.FAILED},
    # Running a day again replaces its result.
    RunStatus.DONE: {RunStatus.RUNNING},
    RunStatus.FAILED: {RunStatus.RUNNING},
})


class DiscrepancyStatus(StrEnum):
    OPEN = "open"
    HELD = "held"
    """Looked for in the next day's bill before it is flagged."""
    REPAIRED = "repaired"
    RESOLVED = "resolved"
    """Decided by a person (finance)."""


DISCREPANCY = StateMachine("discrepancy", DiscrepancyStatus, {
    DiscrepancyStatus.OPEN: {DiscrepancyStatus.RESOLVED},
})


class ClaimStatus(StrEnum):
    """A claim against a channel (finance trusted our record): open until the channel pays or corrects it."""

    OPEN = "open"
    SETTLED = "settled"


CLAIM = StateMachine("claim", ClaimStatus, {ClaimStatus.OPEN: {ClaimStatus.SETTLED}})
