"""Session-wide real servers: PostgreSQL, Redis and the sandbox world.

`make test` starts PostgreSQL and Redis and passes their URLs in
HPAY_TEST_DATABASE_URL / HPAY_TEST_REDIS_URL; run bare, pytest starts its own.
"""
from __future__ import annotations

import os

import pytest

from tests.processes import SandboxProcess
from tests.servers import PostgresServer, RedisServer


@pytest.fixture(scope="session")
def postgres_url():
    url = os.environ.get("HPAY_TEST_DATABASE_URL")
    if url:
        yield url
        return
    server = PostgresServer()
    url = server.start()
    yield url
    server.stop()


@pytest.fixture(scope="session")
def redis_server():
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server):
    return f"redis://127.0.0.1:{redis_server.port}/0"


@pytest.fixture(scope="session")
def sandbox():
    """One sandbox world for the session; tests make their own merchants or orders to stay apart."""
    proc = SandboxProcess().start()
    yield proc
    proc.stop()
    print(proc.output()[-3000:]) if proc.proc.returncode not in (0, -15, None) else None
