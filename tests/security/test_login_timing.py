"""Attack: tell which usernames exist by how long a failed sign-in takes.

Before this, an unknown username was refused in ~6 ms and a known one in ~250 ms (the argon2
verification was skipped for the unknown): the dummy hash was there but never verified against.
The two kinds of attempt are interleaved, so that load from elsewhere on the machine falls on both.
"""
from __future__ import annotations

import statistics
import time

from sqlalchemy import update

from app.db.models import StaffUser
from tests.api.admin_helpers import ADMIN, label, make_user

TRIES = 10


def _refusal_s(client, username: str, address: str) -> float:
    started = time.perf_counter()
    resp = client.post(f"{ADMIN}/auth/login", json={"username": username, "password": "not-the-password"},
                       environ_base={"REMOTE_ADDR": address})
    elapsed = time.perf_counter() - started
    assert resp.status_code == 401, resp.get_json()
    return elapsed


def _median_ratio(client, username: str, octet: int) -> tuple[float, float]:
    """Median refusal times (this username, an unknown one), each try from a new address so that the
    per-address lockout never answers early."""
    unknown = label("nobody")
    _refusal_s(client, label("warm-up"), f"10.{octet}.255.1")  # first-use costs out of the way
    mine, theirs = [], []
    for n in range(TRIES):
        mine.append(_refusal_s(client, username, f"10.{octet}.1.{n + 1}"))
        theirs.append(_refusal_s(client, unknown, f"10.{octet}.2.{n + 1}"))
    return statistics.median(mine), statistics.median(theirs)


def test_unknown_and_known_usernames_take_the_same_time_to_refuse(client, rt, demo_clinic):
    known, _ = make_user(rt, "finance")

    known_s, unknown_s = _median_ratio(client, known, 21)

    assert 0.5 <= known_s / unknown_s <= 2, f"known {known_s * 1000:.1f} ms, unknown {unknown_s * 1000:.1f} ms"


def test_an_inactive_user_takes_as_long_as_an_unknown_one(client, rt, demo_clinic):
    inactive, _ = make_user(rt, "staff")
    with rt.db.session() as session:
        session.execute(update(StaffUser).where(StaffUser.username == inactive).values(active=False))

    inactive_s, unknown_s = _median_ratio(client, inactive, 22)

    assert 0.5 <= inactive_s / unknown_s <= 2, f"inactive {inactive_s * 1000:.1f} ms, unknown {unknown_s * 1000:.1f} ms"
