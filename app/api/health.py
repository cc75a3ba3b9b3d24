"""Liveness and readiness probes.

`/healthz` answers while the process is alive, nothing more. `/readyz` answers 200 only when the platform can do
its work: the database and Redis answer, the database has this release's migrations, and the dispatcher has run
within HPAY_DISPATCHER_STALE_S (its heartbeat in Redis). A dispatcher never seen since Redis last started is
given that long from this process's start before it counts against readiness (a stack starts in any order).
A database migrated by a newer release is reported (`ahead`) but stays ready: during a rolling deploy the
older processes keep serving until they are replaced.
"""
from __future__ import annotations

import logging
import time

from flask_smorest import Blueprint
from marshmallow import Schema, fields
from sqlalchemy import text

from app.db.migrate import revisions_on
from app.extensions import runtime
from app.services import ops

log = logging.getLogger(__name__)
blp = Blueprint("health", __name__, description="Liveness and readiness")
STARTED = time.monotonic()


class HealthSchema(Schema):
    status = fields.String(required=True)
    checks = fields.Dict(keys=fields.String(), values=fields.String(),
                         metadata={"description": "database, redis: ok | unreachable; migrations: ok | behind (…) | "
                                                  "ahead (…) | unknown; dispatcher: ok | stale (N s) | unknown"})


@blp.route("/healthz", methods=["GET"])
@blp.response(200, HealthSchema)
def healthz():
    """The process is alive."""
    return {"status": "ok"}


def _database(rt, checks: dict) -> bool:
    try:
        with rt.db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            found = revisions_on(conn)
    except Exception as exc:  # any driver error means "not ready", never a crash
        log.warning("readiness: database unreachable: %s", exc.__class__.__name__)
        checks["database"], checks["migrations"] = "unreachable", "unknown"
        return False
    checks["database"] = "ok"
    if found.at_head:
        checks["migrations"] = "ok"
    elif found.unknown:
        checks["migrations"] = f"ahead ({', '.join(found.current)}; this release's latest is {', '.join(found.heads)})"
    else:
        checks["migrations"] = (f"behind ({', '.join(found.current) or 'none'}; this release's latest is "
                                f"{', '.join(found.heads)}: run db-upgrade)")
    return not found.behind


def _redis(rt, checks: dict) -> bool:
    limit = rt.settings.DISPATCHER_STALE_S
    try:
        rt.redis.ping()
        beat = ops.last_beat(rt)
    except Exception as exc:
        log.warning("readiness: redis unreachable: %s", exc.__class__.__name__)
        checks["redis"], checks["dispatcher"] = "unreachable", "unknown"
        return False
    checks["redis"], checks["dispatcher"] = "ok", beat.describe(limit)
    if beat.stale(limit):
        log.warning("readiness: the dispatcher last ran %.0f s ago", beat.age_s)
        return False
    return beat.age_s is not None or time.monotonic() - STARTED <= limit


@blp.route("/readyz", methods=["GET"])
@blp.response(200, HealthSchema)
@blp.alt_response(503, schema=HealthSchema, description="A dependency is unreachable, the database lacks this "
                                                        "release's migrations, or the dispatcher has stopped")
def readyz():
    """The database and Redis answer, the migrations are applied and the dispatcher runs."""
    rt = runtime()
    checks: dict[str, str] = {}
    database_ready = _database(rt, checks)
    redis_ready = _redis(rt, checks)
    ready = database_ready and redis_ready
    return {"status": "ready" if ready else "not_ready", "checks": checks}, (200 if ready else 503)
