"""Throwaway PostgreSQL and Redis servers for the test suite.

PostgreSQL runs as the `postgres` user from a temporary directory on a free
loopback port; Redis is the real `redis-server`. Both stop when the tests end.
"""
from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for version_dir in sorted(Path("/usr/lib/postgresql").glob("*"), reverse=True):
        candidate = version_dir / "bin" / name
        if candidate.exists():
            return str(candidate)
    raise RuntimeError(f"PostgreSQL's {name} was not found; install postgresql")


def _wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listened on port {port} within {timeout}s")


class PostgresServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.tmp = Path(tempfile.mkdtemp(prefix="hpay-pg-"))
        self.data = self.tmp / "data"
        self._as_postgres = os.geteuid() == 0

    def _run(self, *argv: str) -> None:
        cmd = list(argv)
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self) -> str:
        if self._as_postgres:
            user = pwd.getpwnam("postgres")
            os.chown(self.tmp, user.pw_uid, user.pw_gid)
        self._run(_pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                  "--no-sync")
        self.resume()
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def pause(self) -> None:
        """Stop the server as an administrator's `pg_ctl -m fast restart` does (clients are disconnected)."""
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def resume(self) -> None:
        """Start it again on the same port and data (the second half of a restart)."""
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.tmp / "pg.log"), "-w", "-o",
                  f"-p {self.port} -k {self.tmp} -c listen_addresses=127.0.0.1 -c max_connections=300 "
                  "-c fsync=off -c full_page_writes=off", "start")
        _wait_port(self.port)

    def restart(self) -> None:
        """`pg_ctl -m fast restart`: every connection is cut, and the server is back within a second or two."""
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "restart")
        _wait_port(self.port)

    def stop(self) -> None:
        try:
            self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.tmp, ignore_errors=True)


class RedisServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.tmp = Path(tempfile.mkdtemp(prefix="hpay-redis-"))
        self.proc: subprocess.Popen | None = None

    def start(self) -> str:
        binary = shutil.which("redis-server")
        if not binary:
            raise RuntimeError("redis-server is not installed (make test installs it: apt-get install redis-server)")
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.tmp),
             "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        _wait_port(self.port)
        return f"redis://127.0.0.1:{self.port}/0"

    def restart(self) -> None:
        """Stop and start on the same port: what a Redis outage looks like to the platform."""
        self.stop_process()
        self.start()

    def stop_process(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def stop(self) -> None:
        self.stop_process()
        shutil.rmtree(self.tmp, ignore_errors=True)
