"""`make run`'s supervisor (app/cli/devstack.py): a crashed process is restarted and the platform carries on;
only Ctrl-C stops everything, and then nothing is left behind.

The stack runs as `make run` runs it (`python -m app.cli.devstack`, without the front-end build) on free
ports and a temporary HPAY_VAR_DIR, with its own embedded Redis, sandbox and SQLite database.
"""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from mini_program_mock.patient import MiniProgramClient
from tests.processes import ROOT
from tests.servers import free_port

STARTED = re.compile(r"^\[devstack\] (\w+) (started|restarted) \(pid (\d+)\)$", re.M)


class Devstack:
    def __init__(self, var_dir: Path) -> None:
        self.var_dir = var_dir
        self.web_port, self.sandbox_port, self.redis_port = free_port(), free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.web_port}"
        self.sandbox_url = f"http://127.0.0.1:{self.sandbox_port}"
        self.output_path = var_dir.parent / "devstack.out"
        env = {k: v for k, v in os.environ.items() if not k.startswith("HPAY_")}
        env.update(HPAY_VAR_DIR=str(var_dir), HPAY_WEB_PORT=str(self.web_port), SANDBOX_PORT=str(self.sandbox_port),
                   HPAY_EMBEDDED_REDIS_PORT=str(self.redis_port), HPAY_WEB_WORKERS="1", PYTHONUNBUFFERED="1")
        with self.output_path.open("wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "app.cli.devstack", "--no-build"], cwd=ROOT, env=env,
                                         stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def output(self) -> str:
        return self.output_path.read_text(errors="replace")

    def wait_for(self, pattern: str, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.output(), re.M)
            if found:
                return found
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"no {pattern!r} within {timeout}s; devstack said:\n{self.output()[-6000:]}")

    def pid(self, name: str) -> int:
        """The pid of the newest start of `name`."""
        return [int(m[3]) for m in STARTED.finditer(self.output()) if m[1] == name][-1]

    def leftovers(self) -> list[str]:
        """Every live process started for this stack: they all carry its HPAY_VAR_DIR."""
        marker = f"HPAY_VAR_DIR={self.var_dir}".encode()
        found = []
        for proc_dir in Path("/proc").glob("[0-9]*"):
            try:
                if marker in (proc_dir / "environ").read_bytes().split(b"\0"):
                    cmdline = (proc_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                    found.append(f"{proc_dir.name} {cmdline[:200]}")
            except OSError:
                continue
        return found

    def kill_everything(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        for line in self.leftovers():
            try:
                os.killpg(int(line.split()[0]), signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie the supervisor has not reaped yet is dead all the same.
    return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"


def _children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _ready(url: str) -> bool:
    try:
        return requests.get(f"{url}/readyz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _top_up(stack: Devstack, amount_fen: int) -> dict:
    """A patient tops up a card through the mini-program API and the sandbox's pay endpoint; returns the order
    once the platform has it completed (the HIS recorded the recharge)."""
    client = MiniProgramClient(stack.url, stack.sandbox_url, "wechat", say=lambda _line: None)
    client.login()
    return client.topup(card_no="D0000004", amount_fen=amount_fen)


def test_devstack_restarts_what_dies_and_ctrl_c_stops_everything(tmp_path):
    stack = Devstack(tmp_path / "var")
    try:
        stack.wait_for(r"^Clinic payment platform is up", timeout=75)
        assert (tmp_path / "var" / "hpay.db").exists() and (tmp_path / "var" / "secret_key").exists()

        # A worker killed outright is restarted, and a paid order then completes.
        worker = stack.pid("worker")
        os.kill(worker, signal.SIGKILL)
        stack.wait_for(r"^\[devstack\] worker exited with -9 after [0-9.]+ s; restarting in 1 s$", timeout=10)
        stack.wait_for(r"^\[devstack\] worker restarted \(pid \d+\)$", timeout=10)
        assert stack.pid("worker") != worker and _alive(stack.pid("worker"))
        first = _top_up(stack, 1000)
        assert first["status"] == "completed" and first["amount_fen"] == 1000

        # The embedded Redis server itself dies: it is restarted and the platform serves and pays again.
        wrapper = stack.pid("redis")
        (server,) = _children(wrapper)
        os.kill(server, signal.SIGKILL)
        stack.wait_for(r"^\[devstack\] redis exited with \S+ after [0-9.]+ s; restarting in 1 s$", timeout=10)
        stack.wait_for(r"^\[devstack\] redis restarted \(pid \d+\)$", timeout=10)
        assert not _alive(wrapper)
        deadline = time.monotonic() + 20
        while not _ready(stack.url) and time.monotonic() < deadline:
            time.sleep(0.3)
        assert _ready(stack.url), stack.output()[-4000:]
        second = _top_up(stack, 1200)
        assert second["status"] == "completed" and second["order_no"] != first["order_no"]
        assert (tmp_path / "var" / "log" / "devstack.log").read_text().count("restarted (pid") >= 2

        # Ctrl-C: everything stops, newest first, and nothing is left running or listening.
        seen = {int(m[3]) for m in STARTED.finditer(stack.output())}
        os.kill(stack.proc.pid, signal.SIGINT)
        assert stack.proc.wait(60) == 0
        stack.wait_for(r"^\[devstack\] all processes stopped$", timeout=1)
        assert stack.leftovers() == []
        assert not [pid for pid in seen if _alive(pid)]
        for port in (stack.web_port, stack.sandbox_port, stack.redis_port):
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
        stopped = re.findall(r"^\[devstack\] (\w+) stopped \(", stack.output(), re.M)
        assert stopped == ["cron", "worker", "web", "sandbox", "redis"]
    finally:
        stack.kill_everything()
