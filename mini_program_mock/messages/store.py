"""What users granted (wx.requestSubscribeMessage / my.requestSubscribeMessage) and the messages delivered.

A one-time subscription allows one message: every `accept` of a template adds one allowance for that
user and template, and each delivered message spends one, by a conditional update in the same
transaction that records the message (so two concurrent sends cannot spend one allowance twice).
`reject` changes nothing that was granted before; `ban` (the user switched the template off) takes every
allowance away and refuses sends until the user accepts again.
"""
from __future__ import annotations

import json
import sqlite3

from ..world import World

SCHEMA = """
CREATE TABLE IF NOT EXISTS msg_subscriptions (
    channel TEXT NOT NULL,
    app_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    template_id TEXT NOT NULL,
    allowance INTEGER NOT NULL DEFAULT 0 CHECK (allowance >= 0),
    banned INTEGER NOT NULL DEFAULT 0,
    last_result TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (channel, app_id, user_id, template_id)
);
CREATE TABLE IF NOT EXISTS msg_delivered (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    app_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    open_id TEXT,
    template_id TEXT NOT NULL,
    purpose TEXT,
    page TEXT,
    data TEXT NOT NULL,
    msgid TEXT NOT NULL,
    extra TEXT,
    received_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_msg_delivered_user ON msg_delivered(channel, app_id, user_id);
"""

# What each answer of the subscription dialog does to the user's standing for a template.
_GRANT_CHANGES = {
    "accept": "allowance = allowance + 1, banned = 0",
    "reject": "banned = banned",
    "ban": "allowance = 0, banned = 1",
}
RESULTS = tuple(_GRANT_CHANGES)


class NoAllowance(Exception):
    """The user has no subscription left for the template (WeChat 43101)."""


def _stamp(world: World) -> str:
    return world.now_shanghai().replace(microsecond=0).isoformat()


def record_grant(world: World, channel: str, app_id: str, user_id: str, template_ids: list[str],
                 result: str) -> None:
    now = _stamp(world)
    with world.tx() as conn:
        for template_id in template_ids:
            conn.execute("INSERT OR IGNORE INTO msg_subscriptions(channel, app_id, user_id, template_id, last_result,"
                         " updated_at) VALUES (?, ?, ?, ?, ?, ?)", (channel, app_id, user_id, template_id, result, now))
            conn.execute(f"UPDATE msg_subscriptions SET {_GRANT_CHANGES[result]}, last_result = ?, updated_at = ?"
                         " WHERE channel = ? AND app_id = ? AND user_id = ? AND template_id = ?",
                         (result, now, channel, app_id, user_id, template_id))


def subscriptions(world: World, channel: str, app_id: str, user_id: str) -> list[dict]:
    rows = world.query("SELECT template_id, allowance, banned, last_result, updated_at FROM msg_subscriptions"
                       " WHERE channel = ? AND app_id = ? AND user_id = ? ORDER BY template_id",
                       (channel, app_id, user_id))
    return [{"template_id": r["template_id"], "allowance": r["allowance"], "banned": bool(r["banned"]),
             "last_result": r["last_result"], "updated_at": r["updated_at"]} for r in rows]


def deliver(world: World, *, channel: str, app_id: str, user_id: str, open_id: str | None, template: dict,
            page: str | None, data: dict, msgid: str, extra: dict | None = None) -> dict:
    """Spend one allowance and record the message, or NoAllowance with nothing changed."""
    with world.tx() as conn:
        spent = conn.execute(
            "UPDATE msg_subscriptions SET allowance = allowance - 1 WHERE channel = ? AND app_id = ? AND user_id = ?"
            " AND template_id = ? AND allowance > 0 AND banned = 0",
            (channel, app_id, user_id, template["template_id"])).rowcount
        if not spent:
            raise NoAllowance()
        cursor = conn.execute(
            "INSERT INTO msg_delivered(channel, app_id, user_id, open_id, template_id, purpose, page, data, msgid,"
            " extra, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (channel, app_id, user_id, open_id, template["template_id"], template["purpose"], page,
             json.dumps(data, ensure_ascii=False), msgid, json.dumps(extra or {}, ensure_ascii=False), _stamp(world)))
        return _message(conn.execute("SELECT * FROM msg_delivered WHERE id = ?", (cursor.lastrowid,)).fetchone())


def _message(row: sqlite3.Row) -> dict:
    return {"channel": row["channel"], "app_id": row["app_id"], "user": row["user_id"], "open_id": row["open_id"],
            "template_id": row["template_id"], "purpose": row["purpose"], "page": row["page"],
            "data": json.loads(row["data"]), "msgid": row["msgid"], **json.loads(row["extra"] or "{}"),
            "received_at": row["received_at"]}


def delivered(world: World, channel: str | None, app_id: str | None, user: str | None, limit: int) -> list[dict]:
    """Delivered messages, newest last; `user` matches the user id or the open id."""
    rows = world.query(
        "SELECT * FROM (SELECT * FROM msg_delivered WHERE (:channel IS NULL OR channel = :channel)"
        " AND (:app_id IS NULL OR app_id = :app_id) AND (:user IS NULL OR user_id = :user OR open_id = :user)"
        " ORDER BY id DESC LIMIT :limit) ORDER BY id",
        {"channel": channel, "app_id": app_id, "user": user, "limit": limit})
    return [_message(r) for r in rows]
