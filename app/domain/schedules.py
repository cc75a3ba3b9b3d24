"""Slots from a weekly pattern: which days, which hours, how long each slot, how many places, and when the
hospital releases them to patients.

Times are Asia/Shanghai wall-clock times (China keeps no daylight saving time, so a fixed +08:00 offset is
exact). A schedule is a pure description: the same schedule always plans the same slots, which is what makes
posting it twice create nothing twice (the slots' (item, start) is unique where they are stored).

Release: either one moment for every slot of the posting (`release_at`), or per slot "N days before its day
at HH:MM" (`release_days_before` + `release_time`), the way hospitals open a day's registrations each
morning. No release rule: the slots are visible at once.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone

from app.domain.errors import InvalidInput

SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
MAX_DAYS = 92
MAX_SLOTS = 2000
MIN_SLOT_MINUTES, MAX_SLOT_MINUTES = 5, 24 * 60
MAX_CAPACITY = 10_000
MAX_RELEASE_DAYS_BEFORE = 90


@dataclass(frozen=True)
class WeeklySchedule:
    first_day: date
    last_day: date
    weekdays: frozenset[int]
    """ISO weekdays, 1 = Monday ... 7 = Sunday."""
    start: time
    end: time
    slot_minutes: int
    capacity: int
    closed_dates: frozenset[date] = frozenset()
    release_at: datetime | None = None
    release_days_before: int | None = None
    release_time: time | None = None


@dataclass(frozen=True)
class PlannedSlot:
    starts_at: datetime
    ends_at: datetime
    release_at: datetime | None
    """Aware UTC; None = visible at once."""


def _refuse(field: str, message: str, code: str = "invalid_schedule") -> InvalidInput:
    return InvalidInput(f"The schedule is not valid: {message}", code, {field: [message]})


def check(schedule: WeeklySchedule) -> None:
    """InvalidInput (`invalid_schedule`) naming the first field that makes no sense."""
    if schedule.last_day < schedule.first_day:
        raise _refuse("to", "must not be before `from`")
    days = (schedule.last_day - schedule.first_day).days + 1
    if days > MAX_DAYS:
        raise _refuse("to", f"one posting covers at most {MAX_DAYS} days (this one covers {days})",
                      "schedule_too_large")
    if not schedule.weekdays or not schedule.weekdays <= set(range(1, 8)):
        raise _refuse("weekdays", "one or more of 1 (Monday) to 7 (Sunday)")
    if not MIN_SLOT_MINUTES <= schedule.slot_minutes <= MAX_SLOT_MINUTES:
        raise _refuse("slot_minutes", f"between {MIN_SLOT_MINUTES} and {MAX_SLOT_MINUTES}")
    if _minutes(schedule.end) - _minutes(schedule.start) < schedule.slot_minutes:
        raise _refuse("end", "must be at least one slot after `start`")
    if not 1 <= schedule.capacity <= MAX_CAPACITY:
        raise _refuse("capacity", f"between 1 and {MAX_CAPACITY}")
    per_day = (schedule.release_days_before is not None, schedule.release_time is not None)
    if any(per_day) and not all(per_day):
        raise _refuse("release_time", "release_days_before and release_time go together")
    if schedule.release_at is not None and any(per_day):
        raise _refuse("release_at", "give either release_at or release_days_before with release_time")
    if schedule.release_at is not None and schedule.release_at.tzinfo is None:
        raise _refuse("release_at", "needs a UTC offset")
    if schedule.release_days_before is not None and not 0 <= schedule.release_days_before <= MAX_RELEASE_DAYS_BEFORE:
        raise _refuse("release_days_before", f"between 0 and {MAX_RELEASE_DAYS_BEFORE}")


def _minutes(moment: time) -> int:
    return moment.hour * 60 + moment.minute


def _release(schedule: WeeklySchedule, day: date) -> datetime | None:
    if schedule.release_at is not None:
        return schedule.release_at.astimezone(UTC)
    if schedule.release_days_before is not None:
        release_day = day - timedelta(days=schedule.release_days_before)
        return datetime.combine(release_day, schedule.release_time, SHANGHAI).astimezone(UTC)
    return None


def plan(schedule: WeeklySchedule) -> list[PlannedSlot]:
    """Every slot the schedule describes, in time order; InvalidInput when it is not valid or makes more than
    MAX_SLOTS slots (`schedule_too_large`)."""
    check(schedule)
    step = timedelta(minutes=schedule.slot_minutes)
    slots: list[PlannedSlot] = []
    day = schedule.first_day
    while day <= schedule.last_day:
        if day.isoweekday() in schedule.weekdays and day not in schedule.closed_dates:
            release = _release(schedule, day)
            starts = datetime.combine(day, schedule.start, SHANGHAI)
            closes = datetime.combine(day, schedule.end, SHANGHAI)
            while starts + step <= closes:
                slots.append(PlannedSlot(starts.astimezone(UTC), (starts + step).astimezone(UTC), release))
                if len(slots) > MAX_SLOTS:
                    raise _refuse("to", f"one posting makes at most {MAX_SLOTS} slots", "schedule_too_large")
                starts += step
        day += timedelta(days=1)
    return slots
