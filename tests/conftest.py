"""Session-wide real servers: PostgreSQL, Redis and the sandbox world.

`make test` starts PostgreSQL and Redis and passes their URLs in
HPAY_TEST_DATABASE_URL / HPAY_TEST_REDIS_URL; run bare, pytest starts its own.
"""
from __future__ import annotations

import os
import tempfile

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


# --- the order of the tests -------------------------------------------------------------------

def pytest_collection_modifyitems(session, config, items):
    """Every test that runs in-process goes before the first test that starts the platform (stable otherwise).

    Once up, the session's platform stays up, and its dispatcher moves every due row of the shared database within a
    second: a HIS write is sent, an unpaid order expires. A test that reads a state the workers would move must not
    share the database with them (CI caught one reading its HIS write as `sent` where it had just been `pending`).
    """
    items.sort(key=lambda item: "platform" in getattr(item, "fixturenames", ()))


# --- the platform -----------------------------------------------------------------------------

def _create_database(admin_url: str, name: str) -> str:
    from sqlalchemy import create_engine, text

    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(scope="session")
def database_url(postgres_url):
    """A fresh PostgreSQL database brought to the latest migration (the migrations are tested here too)."""
    from app.db.migrate import upgrade

    url = _create_database(postgres_url, "hpay_test")
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def secret_key():
    """One random signing key for the test session, shared by the in-process app and every platform process."""
    import secrets

    return secrets.token_urlsafe(48)


@pytest.fixture(scope="session")
def settings(database_url, redis_url, sandbox, secret_key):
    from config.settings import TestSettings

    # Attachments go to a folder of this session's, never the repository's var/.
    return TestSettings(DATABASE_URL=database_url, REDIS_URL=redis_url, SANDBOX_URL=sandbox.url,
                        PUBLIC_BASE_URL="http://127.0.0.1:1", LOG_JSON=True, SECRET_KEY=secret_key,
                        ATTACHMENTS_DIR=tempfile.mkdtemp(prefix="hpay-attachments-"))


@pytest.fixture(scope="session")
def app(settings):
    from app.cli import create_cli_app

    flask_app = create_cli_app(settings)
    yield flask_app
    flask_app.extensions["hpay_runtime"].close()


@pytest.fixture(scope="session")
def rt(app):
    return app.extensions["hpay_runtime"]


@pytest.fixture()
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def demo_clinic(rt, sandbox):
    """Clinic `demo` wired to the session's sandbox (seed-demo is idempotent, so tests may call it again)."""
    from app.cli.demo import seed_demo

    seed_demo(rt, sandbox.url)
    return "demo"


# --- the platform as real processes: gunicorn, rq workers and the cron scheduler --------------

class PlatformStack:
    def __init__(self, database_url: str, redis_url: str, sandbox_url: str, secret_key: str,
                 workers: int = 2, env: dict[str, str] | None = None) -> None:
        import sys
        import tempfile

        from tests.processes import ROOT, ManagedProcess
        from tests.servers import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # Every process of this stack counts its metrics into one fresh directory (config/metrics_files.py).
        self.metrics_dir = tempfile.mkdtemp(prefix="hpay-metrics-")
        self.env = {
            "HPAY_ENV": "test", "HPAY_DATABASE_URL": database_url, "HPAY_REDIS_URL": redis_url,
            "HPAY_SANDBOX_URL": sandbox_url, "HPAY_PUBLIC_BASE_URL": self.url, "HPAY_RETRY_TIME_SCALE": "0.001",
            "HPAY_LOG_LEVEL": "INFO", "HPAY_DISPATCH_INTERVAL_S": "1", "HPAY_JOB_LEASE_S": "10",
            "HPAY_SECRET_KEY": secret_key,
            # A closed console page frees its live-event stream at the next heartbeat (the only write that finds
            # the connection gone): soon, since browser tests open and close many pages.
            "HPAY_LIVE_HEARTBEAT_S": "2",
            # /readyz turns red this soon after the dispatcher stops (a test stops the cron to see it).
            "HPAY_DISPATCHER_STALE_S": "10",
            "PROMETHEUS_MULTIPROC_DIR": self.metrics_dir,
            "HPAY_ATTACHMENTS_DIR": tempfile.mkdtemp(prefix="hpay-attachments-"),
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        bindir = os.path.dirname(sys.executable)
        # gunicorn as production runs it (config/gunicorn.conf.py, its metrics hooks among them: gthread, so staff's
        # live event streams hold a thread each and never a whole worker).
        self.web_env = {"HPAY_WEB_BIND": f"127.0.0.1:{self.port}", "HPAY_WEB_WORKERS": "2", "HPAY_WEB_THREADS": "8",
                        "HPAY_WEB_TIMEOUT_S": "60", "HPAY_WEB_LOG_LEVEL": "warning"}
        self.web = ManagedProcess([os.path.join(bindir, "gunicorn"), "-c", str(ROOT / "config" / "gunicorn.conf.py"),
                                   "wsgi:app"], {**self.env, **self.web_env}, "web")
        self.workers = [ManagedProcess([sys.executable, "-m", "workers"] + ([] if i == 0 else ["--no-scheduler"]),
                                       self.env, f"worker{i}") for i in range(workers)]
        self.cron = ManagedProcess([sys.executable, "-m", "workers.cron"], self.env, "cron")

    def start(self) -> PlatformStack:
        from tests.processes import wait_http

        self.web.start()
        for worker in self.workers:
            worker.start()
        self.cron.start()
        wait_http(f"{self.url}/readyz", proc=self.web.proc)
        return self

    def announce_bills_here(self, sandbox_url: str) -> None:
        """Have the sandbox HIS announce its bills to this platform (signed with its first HIS key, the demo
        clinic's), as `make run` wires it."""
        import requests

        resp = requests.post(f"{sandbox_url}/sandbox/his/events", json={"url": f"{self.url}/api/his/v1/events"},
                             timeout=10)
        assert resp.status_code == 200, resp.text

    def restart_worker(self, index: int) -> None:
        self.workers[index].stop()
        self.workers[index].start()

    def stop(self) -> None:
        for proc in [self.cron, *self.workers, self.web]:
            proc.stop()

    def logs(self) -> str:
        return "\n".join(f"--- {p.log_path}\n{p.output()[-4000:]}" for p in [self.web, *self.workers, self.cron])


@pytest.fixture(scope="session")
def platform(database_url, redis_url, sandbox, demo_clinic, secret_key):
    """The whole platform on real processes, pointed at the session's PostgreSQL, Redis and sandbox."""
    stack = PlatformStack(database_url, redis_url, sandbox.url, secret_key).start()
    stack.announce_bills_here(sandbox.url)
    yield stack
    stack.stop()
