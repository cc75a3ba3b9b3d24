"""Slots from a weekly pattern (app.domain.schedules): which days and hours, closed dates, release times, limits;
who may call which admin route (admin_api.security.admitted_roles); write-only secrets' fingerprints; the
refund certificate's private files."""
from __future__ import annotations

import hashlib
import os
import stat
from datetime import UTC, date, datetime, time, timedelta, timezone

import pytest

from admin_api.security import admitted_roles
from app.channels import cert_files
from app.domain import schedules
from app.domain.errors import InvalidInput
from app.domain.secrets import fingerprint

SHANGHAI = timezone(timedelta(hours=8))
MONDAY = date(2027, 3, 1)


def weekly(**fields) -> schedules.WeeklySchedule:
    base = dict(first_day=MONDAY, last_day=MONDAY + timedelta(days=6), weekdays=frozenset({1, 3}),
                start=time(9, 0), end=time(10, 30), slot_minutes=30, capacity=4)
    return schedules.WeeklySchedule(**{**base, **fields})


def test_slots_fall_on_the_chosen_weekdays_and_hours_in_shanghai_time():
    planned = schedules.plan(weekly())

    starts = [s.starts_at.astimezone(SHANGHAI) for s in planned]
    assert [(s.date().isoweekday(), s.strftime("%H:%M")) for s in starts] == [
        (1, "09:00"), (1, "09:30"), (1, "10:00"), (3, "09:00"), (3, "09:30"), (3, "10:00")]
    assert all(s.starts_at.tzinfo == UTC and s.ends_at - s.starts_at == timedelta(minutes=30) for s in planned)
    assert planned[0].starts_at == datetime(2027, 3, 1, 1, 0, tzinfo=UTC)
    assert all(s.release_at is None for s in planned)


def test_a_slot_that_would_end_after_the_end_is_not_made_and_closed_dates_are_skipped():
    planned = schedules.plan(weekly(end=time(10, 50), closed_dates=frozenset({MONDAY})))

    assert [s.starts_at.astimezone(SHANGHAI).strftime("%a %H:%M") for s in planned] == [
        "Wed 09:00", "Wed 09:30", "Wed 10:00"]


def test_the_same_schedule_plans_the_same_slots():
    assert schedules.plan(weekly()) == schedules.plan(weekly())


def test_release_n_days_before_at_a_time_or_all_at_one_moment():
    per_day = schedules.plan(weekly(release_days_before=7, release_time=time(8, 0)))
    moment = datetime(2027, 2, 20, 12, 0, tzinfo=SHANGHAI)
    at_once = schedules.plan(weekly(release_at=moment))

    assert {s.starts_at.astimezone(SHANGHAI).date(): s.release_at for s in per_day} == {
        MONDAY: datetime(2027, 2, 22, 8, 0, tzinfo=SHANGHAI),
        MONDAY + timedelta(days=2): datetime(2027, 2, 24, 8, 0, tzinfo=SHANGHAI)}
    assert {s.release_at for s in at_once} == {moment} and at_once[0].release_at.tzinfo == UTC


@pytest.mark.parametrize("fields, field, code", [
    ({"last_day": MONDAY - timedelta(days=1)}, "to", "invalid_schedule"),
    ({"last_day": MONDAY + timedelta(days=92)}, "to", "schedule_too_large"),
    ({"weekdays": frozenset()}, "weekdays", "invalid_schedule"),
    ({"weekdays": frozenset({0, 1})}, "weekdays", "invalid_schedule"),
    ({"slot_minutes": 4}, "slot_minutes", "invalid_schedule"),
    ({"end": time(9, 20)}, "end", "invalid_schedule"),
    ({"capacity": 0}, "capacity", "invalid_schedule"),
    ({"release_days_before": 1}, "release_time", "invalid_schedule"),
    ({"release_at": datetime(2027, 2, 1, 8, 0)}, "release_at", "invalid_schedule"),
    ({"release_at": datetime(2027, 2, 1, tzinfo=UTC), "release_days_before": 1, "release_time": time(8)},
     "release_at", "invalid_schedule"),
    ({"release_days_before": 91, "release_time": time(8)}, "release_days_before", "invalid_schedule"),
    ({"last_day": MONDAY + timedelta(days=91), "weekdays": frozenset(range(1, 8)), "start": time(0, 0),
      "end": time(23, 55), "slot_minutes": 5}, "to", "schedule_too_large"),
])
def test_a_schedule_that_makes_no_sense_or_too_many_slots_is_refused(fields, field, code):
    with pytest.raises(InvalidInput) as refused:
        schedules.plan(weekly(**fields))
    assert (refused.value.code, list(refused.value.details)) == (code, [field])


def test_ninety_two_days_and_two_thousand_slots_are_the_limits_and_allowed():
    days = schedules.plan(weekly(last_day=MONDAY + timedelta(days=91), weekdays=frozenset({1})))
    slots = schedules.plan(weekly(last_day=MONDAY + timedelta(days=19), weekdays=frozenset(range(1, 8)),
                                  start=time(0, 0), end=time(16, 40), slot_minutes=10))
    assert len(days) == 14 * 3 and len(slots) == schedules.MAX_SLOTS


@pytest.mark.parametrize("named, admitted", [
    ((), {"staff", "finance", "admin", "operator"}),
    (("staff",), {"staff", "admin"}),
    (("finance",), {"finance", "admin"}),
    (("admin",), {"admin"}),
    (("operator",), {"operator"}),
    (("admin", "operator"), {"admin", "operator"}),
])
def test_admins_take_every_clinic_route_and_operators_only_their_own(named, admitted):
    assert admitted_roles(named) == admitted


def test_a_fingerprint_tells_keys_apart_without_revealing_them():
    key = "0123456789abcdef0123456789abcdef"
    assert fingerprint(key) == hashlib.sha256(key.encode()).hexdigest()[:12]
    assert fingerprint(key) != fingerprint(key[:-1] + "0") and key[:6] not in fingerprint(key)


def test_the_refund_certificate_is_written_once_to_files_only_this_process_reads():
    cert, key = "-----BEGIN CERTIFICATE-----\ncert\n", "-----BEGIN PRIVATE KEY-----\nkey\n"
    cert_path, key_path = cert_files.pem_paths(cert, key)
    again = cert_files.pem_paths(cert, key)
    rotated = cert_files.pem_paths(cert, key + "2")

    assert again == (cert_path, key_path) and rotated[1] != key_path
    assert open(key_path).read() == key and open(cert_path).read() == cert
    assert stat.S_IMODE(os.stat(key_path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(key_path)).st_mode) == 0o700
