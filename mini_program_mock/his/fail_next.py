"""A counted fault: the next N calls to one HIS path answer 503, then the HIS answers again.

`his_error_rate` fails calls at random; this one is exact, so a test can show that a read failing
twice and then answering is retried into a success. Set with `POST /sandbox/his/fail-next {path,
count}` (path as the HIS sees it, e.g. `/his/cards/D0000001/bills`), cleared with
`DELETE /sandbox/his/fail-next`.
"""
from __future__ import annotations

import json

from ..world import World

_SETTING = "his_fail_next"


def _read(conn) -> dict[str, int]:
    row = conn.execute("SELECT value FROM settings WHERE key = ?", (_SETTING,)).fetchone()
    return json.loads(row["value"]) if row else {}


def _write(conn, counts: dict[str, int]) -> None:
    conn.execute("INSERT INTO settings(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                 (_SETTING, json.dumps(counts)))


def set_count(world: World, path: str, count: int) -> dict[str, int]:
    with world.tx() as conn:
        counts = _read(conn)
        if count:
            counts[path] = count
        else:
            counts.pop(path, None)
        _write(conn, counts)
    return counts


def clear(world: World) -> None:
    with world.tx() as conn:
        _write(conn, {})


def take(world: World, path: str) -> bool:
    """True when this call is one of the counted failures for its path (and counts it)."""
    if path not in world.get_setting(_SETTING, {}):
        return False
    with world.tx() as conn:
        counts = _read(conn)
        left = counts.get(path, 0)
        if left <= 0:
            return False
        if left == 1:
            counts.pop(path)
        else:
            counts[path] = left - 1
        _write(conn, counts)
    return True
