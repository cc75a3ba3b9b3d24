"""Durable outbound notifications with the channels' official retry schedules.

A notification is stored before the first attempt, so it survives a sandbox
restart. Delivery runs in one background thread; the schedule is multiplied by
the world's time scale so tests can compress a day into seconds.

Channel notifications are signed in their body when enqueued. A sender that signs
its request headers instead (the HIS announcing bills) registers a signer: it is
called on every attempt, so each retry carries a fresh timestamp and nonce.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping

import requests

from .world import World

log = logging.getLogger(__name__)

# Seconds between attempts after the first (PROTOCOLS.md).
WECHAT_RETRY_SCHEDULE = [15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600, 21600]
ALIPAY_RETRY_SCHEDULE = [240, 600, 600, 3600, 7200, 21600, 54000]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbound_notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    kind TEXT NOT NULL,
    ref TEXT NOT NULL,
    url TEXT NOT NULL,
    body TEXT NOT NULL,
    content_type TEXT NOT NULL,
    schedule TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    last_reply TEXT,
    sign_with TEXT
);
CREATE INDEX IF NOT EXISTS ix_outbound_due ON outbound_notifications(status, next_attempt_at);
"""

# A sender counts a delivery as acknowledged only on its own success reply: (HTTP status, body) -> acked.
ACK_CHECKS: dict[str, Callable[[int, str], bool]] = {
    "wechat": lambda status, body: status == 200 and (
        "<return_code><![CDATA[SUCCESS]]></return_code>" in body.replace(" ", "")
        or "<return_code>SUCCESS</return_code>" in body.replace(" ", "")),
    "alipay": lambda status, body: status == 200 and body.strip() == "success",
    "his": lambda status, body: 200 <= status < 300,
}

# (row) -> extra request headers, computed at each attempt; see register_signer.
Signer = Callable[[Mapping], dict]


class Notifier:
    def __init__(self, world: World, poll_interval: float = 0.05):
        self.world = world
        self.poll_interval = poll_interval
        world.execute_script(_SCHEMA)
        self._add_missing_columns()
        self._signers: dict[str, Signer] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._http = requests.Session()

    def _add_missing_columns(self) -> None:
        """A data directory made before sign_with existed keeps its rows; the column is added in place."""
        columns = {r["name"] for r in self.world.query("PRAGMA table_info(outbound_notifications)")}
        if "sign_with" not in columns:
            self.world.execute_script("ALTER TABLE outbound_notifications ADD COLUMN sign_with TEXT;")

    def register_signer(self, channel: str, signer: Signer) -> None:
        """Sign every attempt of `channel` with `signer(row)` (the row holds url, body and sign_with)."""
        self._signers[channel] = signer

    def enqueue(self, *, channel: str, kind: str, ref: str, url: str, body: str, content_type: str,
                schedule: list[int], sign_with: str | None = None) -> None:
        """Store a notification and let the delivery thread send it, honouring the fault settings."""
        faults = self.world.faults()
        if self.world.chance(faults["notify_drop_rate"]):
            self.world.log("notify_dropped", channel=channel, notification=kind, ref=ref, url=url)
            return
        copies = 2 if self.world.chance(faults["notify_duplicate_rate"]) else 1
        first_at = time.time() + float(faults["notify_delay_s"])
        with self.world.tx() as conn:
            for _ in range(copies):
                conn.execute(
                    "INSERT INTO outbound_notifications(channel, kind, ref, url, body, content_type, schedule,"
                    " next_attempt_at, sign_with) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (channel, kind, ref, url, body, content_type, json.dumps(schedule), first_at, sign_with),
                )
        self._wake.set()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="sandbox-notifier", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                due = self.world.query(
                    "SELECT * FROM outbound_notifications WHERE status = 'pending' AND next_attempt_at <= ?"
                    " ORDER BY next_attempt_at LIMIT 50",
                    (time.time(),),
                )
                for row in due:
                    self._attempt(row)
            except Exception:  # the delivery thread must outlive any single bad row
                log.exception("sandbox notifier loop failed")
            self._wake.wait(self.poll_interval)
            self._wake.clear()

    def _attempt(self, row) -> None:
        reply, acked, status_code = "", False, None
        try:
            headers = {"Content-Type": row["content_type"]}
            signer = self._signers.get(row["channel"])
            if signer is not None:
                headers.update(signer(row))
            resp = self._http.post(row["url"], data=row["body"].encode("utf-8"), headers=headers, timeout=5)
            reply, status_code = resp.text[:500], resp.status_code
            acked = ACK_CHECKS[row["channel"]](resp.status_code, resp.text)
        except requests.RequestException as exc:
            reply = f"error: {exc.__class__.__name__}"
        except LookupError as exc:  # the signer's key is gone: a failed attempt, never a stuck row
            reply = f"error: cannot sign ({exc})"
        attempts = row["attempts"] + 1
        schedule = json.loads(row["schedule"])
        if acked:
            status, next_at = "delivered", row["next_attempt_at"]
        elif attempts > len(schedule):
            status, next_at = "abandoned", row["next_attempt_at"]
        else:
            status, next_at = "pending", time.time() + self.world.scaled(schedule[attempts - 1])
        with self.world.tx() as conn:
            conn.execute(
                "UPDATE outbound_notifications SET attempts = ?, status = ?, next_attempt_at = ?, last_reply = ?"
                " WHERE id = ?",
                (attempts, status, next_at, reply, row["id"]),
            )
        self.world.log("notify_attempt", channel=row["channel"], notification=row["kind"], ref=row["ref"],
                       attempt=attempts, acked=acked, http_status=status_code, reply=reply[:200], outcome=status)
