"""Shared state of the sandbox: its SQLite ledger, clock, faults and request log.

Every gateway (WeChat, Alipay, HIS) keeps its records in one SQLite file so that
its bills and exports are the truth for reconciliation and survive a restart.
"""
from __future__ import annotations

import json
import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from flask import current_app

SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")

_BASE_SCHEMA = """
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS request_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL
);
"""

DEFAULT_FAULTS = {
    "notify_drop_rate": 0.0,
    "notify_duplicate_rate": 0.0,
    "notify_delay_s": 0.0,
    "his_error_rate": 0.0,
    "his_latency_ms": 0,
    "his_timeout_rate": 0.0,
}

_LOG_KEEP = 2000


class World:
    """One sandbox instance: a data directory holding `sandbox.db`.

    `time_scale` compresses the channels' retry schedules (0.001 turns the
    24-hour WeChat schedule into about 87 seconds) so tests can run them.
    """

    def __init__(self, data_dir: str | Path, time_scale: float = 1.0, public_url: str = ""):
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.db_path = self.data_dir / "sandbox.db"
        self.time_scale = time_scale
        self.public_url = public_url.rstrip("/")
        self._local = threading.local()
        self._rng = random.Random()
        self._rng_lock = threading.Lock()
        self.execute_script(_BASE_SCHEMA)

    # --- database -------------------------------------------------------
    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.db_path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    def execute_script(self, ddl: str) -> None:
        self.conn().executescript(ddl)

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction taken up front, so concurrent writers queue instead of failing.

        Inside another transaction of this thread it joins that one, so a change and the work it
        queues (an outbound announcement, a log line) commit or roll back together.
        """
        conn = self.conn()
        if conn.in_transaction:
            yield conn
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def query(self, sql: str, params: tuple | dict = ()) -> list[sqlite3.Row]:
        return self.conn().execute(sql, params).fetchall()

    def query_one(self, sql: str, params: tuple | dict = ()) -> sqlite3.Row | None:
        return self.conn().execute(sql, params).fetchone()

    # --- settings -------------------------------------------------------
    def get_setting(self, key: str, default: Any = None) -> Any:
        row = self.query_one("SELECT value FROM settings WHERE key = ?", (key,))
        return json.loads(row["value"]) if row else default

    def set_setting(self, key: str, value: Any) -> None:
        with self.tx() as conn:
            conn.execute(
                "INSERT INTO settings(key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, json.dumps(value)),
            )

    # --- clock ----------------------------------------------------------
    def clock_offset_s(self) -> float:
        return float(self.get_setting("clock_offset_s", 0.0))

    def now(self) -> datetime:
        """The sandbox's idea of now (UTC, aware), shifted by the control API's clock offset."""
        return datetime.now(UTC) + timedelta(seconds=self.clock_offset_s())

    def now_shanghai(self) -> datetime:
        return self.now().astimezone(SHANGHAI)

    # --- faults ---------------------------------------------------------
    def faults(self) -> dict:
        return {**DEFAULT_FAULTS, **self.get_setting("faults", {})}

    def set_faults(self, changes: dict) -> dict:
        merged = {**self.faults(), **{k: v for k, v in changes.items() if k in DEFAULT_FAULTS}}
        self.set_setting("faults", merged)
        return merged

    def clear_faults(self) -> dict:
        self.set_setting("faults", {})
        return self.faults()

    def chance(self, rate: float) -> bool:
        if rate <= 0:
            return False
        with self._rng_lock:
            return self._rng.random() < rate

    # --- request log ----------------------------------------------------
    def log(self, kind: str, **data: Any) -> None:
        with self.tx() as conn:
            conn.execute(
                "INSERT INTO request_log(at, kind, data) VALUES (?, ?, ?)",
                (datetime.now(UTC).isoformat(), kind, json.dumps(data, ensure_ascii=False, default=str)),
            )
            conn.execute(
                "DELETE FROM request_log WHERE id <= (SELECT MAX(id) FROM request_log) - ?", (_LOG_KEEP,)
            )

    def recent_log(self, limit: int = 200) -> list[dict]:
        rows = self.query("SELECT * FROM request_log ORDER BY id DESC LIMIT ?", (limit,))
        return [{"at": r["at"], "kind": r["kind"], **json.loads(r["data"])} for r in reversed(rows)]

    def scaled(self, seconds: float) -> float:
        return seconds * self.time_scale

    def sleep_scaled(self, seconds: float) -> None:
        time.sleep(self.scaled(seconds))


def current_world() -> World:
    return current_app.extensions["sandbox_world"]
