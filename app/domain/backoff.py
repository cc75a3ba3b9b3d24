"""Retry and query schedules, in seconds before scaling."""
from __future__ import annotations

# Querying a payment with no notification: quick at first (the patient is waiting), then sparse.
PAYMENT_QUERY_SCHEDULE = [10, 20, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600]
REFUND_QUERY_SCHEDULE = [30, 60, 120, 300, 600, 1800, 3600, 7200, 21600]
# HIS writes: retried for at least 24 hours, then flagged for a person.
HIS_RETRY_SCHEDULE = [5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 3600, 7200, 7200, 14400, 14400, 28800,
                      28800]
HIS_RETRY_HORIZON_S = 24 * 3600
# Pushing a message to a patient: soon at first (the bill is new), then sparse; failed after a day.
PUSH_RETRY_SCHEDULE = [5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200]
PUSH_RETRY_HORIZON_S = 24 * 3600


def delay_after(schedule: list[int], attempts_made: int) -> int:
    """The wait before the next try once `attempts_made` tries have failed (the last step repeats)."""
    if attempts_made <= 0:
        return schedule[0]
    return schedule[min(attempts_made - 1, len(schedule) - 1)]
