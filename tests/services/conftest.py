"""The use cases on the session's real PostgreSQL (a database of their own, so they never race a running
platform), with the channels (payments and messages) and the HIS replaced by the in-memory fakes through the
Runtime's factories: no processes, no sandbox, no Redis (a test of live events passes the session's Redis);
the whole directory runs in seconds.
"""
from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from cryptography.fernet import Fernet

from app.channels.fake import FakeChannels, FakeMessages
from app.his.fake import FakeHis
from app.runtime import Runtime
from config.settings import TestSettings


@pytest.fixture(scope="session")
def services_database(postgres_url):
    from app.db.migrate import upgrade
    from tests.conftest import _create_database

    url = _create_database(postgres_url, "hpay_services")
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def data_keys():
    return Fernet.generate_key().decode()


@dataclass
class World:
    """The systems outside, as the fakes hold them, and a way to build Runtimes that talk to them."""

    channels: FakeChannels
    his: FakeHis
    runtime: Callable[..., Runtime]
    messages: FakeMessages


@pytest.fixture()
def world(services_database, data_keys):
    channels, his, messages = FakeChannels(), FakeHis(), FakeMessages()
    built: list[Runtime] = []

    def runtime(**overrides) -> Runtime:
        values = dict(DATABASE_URL=services_database, REDIS_URL="redis://127.0.0.1:1/0", SANDBOX_URL="",
                      PUBLIC_BASE_URL="https://pay.example.test", DATA_KEYS=data_keys, LOG_JSON=False,
                      SECRET_KEY=secrets.token_urlsafe(48))
        settings = TestSettings(**{**values, **overrides})
        rt = Runtime(settings, channel_factory=channels, his_factory=his, messenger_factory=messages)
        built.append(rt)
        return rt

    yield World(channels, his, runtime, messages)
    for rt in built:
        rt.close()


@pytest.fixture()
def rt(world):
    return world.runtime()


@pytest.fixture()
def redis(redis_url):
    """A client of the session's Redis, for tests that look at or take away what the platform keeps there."""
    from redis import Redis

    client = Redis.from_url(redis_url)
    yield client
    client.close()
