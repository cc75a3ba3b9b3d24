"""Sandbox Alipay users: their per-app open_id, one-time auth codes (my.getAuthCode) and oauth tokens."""
from __future__ import annotations

import hashlib
import secrets
import sqlite3
import string

from ..world import SHANGHAI, World
from .protocol import alipay_time

AUTH_CODE_TTL_S = 300
ACCESS_TOKEN_TTL_S = 15 * 24 * 3600
REFRESH_TOKEN_TTL_S = 30 * 24 * 3600

_ALNUM = string.ascii_letters + string.digits

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ali_users (
    app_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    open_id TEXT NOT NULL UNIQUE,
    PRIMARY KEY (app_id, user_id)
);
CREATE TABLE IF NOT EXISTS ali_auth_codes (
    code TEXT PRIMARY KEY,
    app_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    expires_at REAL NOT NULL,
    used INTEGER NOT NULL DEFAULT 0
);
"""


def new_user_id() -> str:
    return f"2088{secrets.randbelow(10**12):012d}"


def is_user_id(value: object) -> bool:
    return isinstance(value, str) and len(value) == 16 and value.startswith("2088") and value.isdigit()


class AlipayAccounts:
    def __init__(self, world: World):
        self.world = world
        world.execute_script(_SCHEMA)

    def _user(self, conn: sqlite3.Connection, app_id: str, user_id: str) -> sqlite3.Row:
        """The user as this app sees them, given an open_id on first sight (open_ids are per app)."""
        row = conn.execute("SELECT * FROM ali_users WHERE app_id = ? AND user_id = ?", (app_id, user_id)).fetchone()
        if row is None:
            open_id = "0" + "".join(secrets.choice(_ALNUM) for _ in range(46))
            conn.execute("INSERT INTO ali_users(app_id, user_id, open_id) VALUES (?, ?, ?)",
                         (app_id, user_id, open_id))
            row = conn.execute("SELECT * FROM ali_users WHERE open_id = ?", (open_id,)).fetchone()
        return row

    def ensure_user(self, app_id: str, user_id: str) -> dict:
        """The user as this app sees them (`user_id`, `open_id`), made on first sight."""
        with self.world.tx() as conn:
            return dict(self._user(conn, app_id, user_id))

    def user_of_open_id(self, app_id: str, open_id: str) -> str | None:
        row = self.world.query_one("SELECT user_id FROM ali_users WHERE app_id = ? AND open_id = ?", (app_id, open_id))
        return row["user_id"] if row else None

    def issue_code(self, app_id: str, user_id: str | None = None) -> dict:
        """What my.getAuthCode hands the mini-program: a code for one exchange within five minutes."""
        code = secrets.token_hex(16)
        with self.world.tx() as conn:
            user = self._user(conn, app_id, user_id or new_user_id())
            conn.execute("INSERT INTO ali_auth_codes(code, app_id, user_id, expires_at) VALUES (?, ?, ?, ?)",
                         (code, app_id, user["user_id"], self.world.now().timestamp() + AUTH_CODE_TTL_S))
        return {"code": code, "user_id": user["user_id"], "open_id": user["open_id"]}

    def redeem_code(self, app_id: str, code: str) -> dict | None:
        """The oauth.token answer for a live, unused code of this app (spending it), else None."""
        now = self.world.now()
        with self.world.tx() as conn:
            row = conn.execute("SELECT * FROM ali_auth_codes WHERE code = ? AND app_id = ?", (code, app_id)).fetchone()
            if row is None or row["used"] or row["expires_at"] < now.timestamp():
                return None
            conn.execute("UPDATE ali_auth_codes SET used = 1 WHERE code = ?", (code,))
            user = self._user(conn, app_id, row["user_id"])
        return {
            "user_id": user["user_id"],
            "open_id": user["open_id"],
            "access_token": "authusrB" + secrets.token_hex(16),
            "expires_in": ACCESS_TOKEN_TTL_S,
            "refresh_token": "authusrB" + secrets.token_hex(16),
            "re_expires_in": REFRESH_TOKEN_TTL_S,
            "auth_start": alipay_time(now.astimezone(SHANGHAI)),
        }

    def resolve_buyer(self, app_id: str, buyer_id: str | None, buyer_open_id: str | None) -> str:
        """The buyer's user id: given, or the one behind a known open_id, else a stable stand-in for it."""
        if buyer_id:
            return buyer_id
        row = self.world.query_one("SELECT user_id FROM ali_users WHERE app_id = ? AND open_id = ?",
                                   (app_id, buyer_open_id))
        if row:
            return row["user_id"]
        digest = int(hashlib.sha256(f"{app_id}:{buyer_open_id}".encode()).hexdigest(), 16)
        return f"2088{digest % 10**12:012d}"
