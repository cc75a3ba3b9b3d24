"""Whether an error means the database did not answer (restarted, unreachable, out of connections), as opposed
to a fault in what was asked of it. The first is answered 503 with Retry-After and retried by the caller; the
second is a bug and stays one."""
from __future__ import annotations

import psycopg
from sqlalchemy import exc as sa_exc


def database_unavailable(error: BaseException) -> bool:
    if isinstance(error, (sa_exc.OperationalError, sa_exc.InterfaceError)):
        return True  # connection refused or lost, server shutting down or starting, SQLite busy beyond its timeout
    if isinstance(error, sa_exc.DBAPIError):
        return bool(error.connection_invalidated)
    if isinstance(error, sa_exc.TimeoutError):
        return True  # no connection could be had from the pool in time
    return isinstance(error, (psycopg.OperationalError, psycopg.InterfaceError))
