"""What a run finds: the discrepancy types and statuses, and a finding before it is stored."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone

from app.domain.reconciliation_runs import DiscrepancyStatus

SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
SOURCES = ("wechat", "alipay", "his")
CHANNEL_SOURCES = ("wechat", "alipay")

# The channel took money (or refunded) and we hold no settled record of it.
MISSING_ON_PLATFORM = "missing_on_platform"
# We hold a settled payment or refund the channel's bill does not list.
MISSING_AT_CHANNEL = "missing_at_channel"
AMOUNT_MISMATCH = "amount_mismatch"
STATUS_MISMATCH = "status_mismatch"
# A write we made (or owe) that the HIS's export does not hold.
MISSING_IN_HIS = "missing_in_his"
# A record in the HIS's export that the platform never wrote.
UNKNOWN_IN_HIS = "unknown_in_his"
TYPES = (MISSING_ON_PLATFORM, MISSING_AT_CHANNEL, AMOUNT_MISMATCH, STATUS_MISMATCH, MISSING_IN_HIS, UNKNOWN_IN_HIS)

OPEN, HELD, REPAIRED, RESOLVED = (DiscrepancyStatus.OPEN, DiscrepancyStatus.HELD, DiscrepancyStatus.REPAIRED,
                                  DiscrepancyStatus.RESOLVED)
STATUSES = tuple(DiscrepancyStatus)

TRUST_CHANNEL, TRUST_PLATFORM, IGNORE = "trust_channel", "trust_platform", "ignore"
RESOLUTIONS = (TRUST_CHANNEL, TRUST_PLATFORM, IGNORE)


@dataclass
class Finding:
    type: str
    status: str
    kind: str
    ref: str
    channel_trade_no: str | None = None
    their_amount_fen: int | None = None
    our_amount_fen: int | None = None
    their_status: str | None = None
    our_status: str | None = None
    occurred_at: datetime | None = None
    detail: str | None = None
    repair_id: int | None = None


@dataclass
class RunOutcome:
    """A run's result, written over the run's previous one in one transaction."""

    matched: int = 0
    findings: list[Finding] = field(default_factory=list)
    totals: dict = field(default_factory=dict)

    def count(self, status: str) -> int:
        return sum(1 for finding in self.findings if finding.status == status)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The Asia/Shanghai business day as a half-open UTC interval."""
    start = datetime.combine(day, time(0), SHANGHAI)
    return start.astimezone(UTC), (start + timedelta(days=1)).astimezone(UTC)


def shanghai_today(now: datetime) -> date:
    return now.astimezone(SHANGHAI).date()
