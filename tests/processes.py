"""Real processes the tests talk to over loopback: the sandbox world, the platform, rq workers."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from tests.servers import free_port

ROOT = Path(__file__).resolve().parent.parent


def wait_http(url: str, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {proc.returncode}")
        try:
            if requests.get(url, timeout=1).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


class ManagedProcess:
    """A child process in its own process group, so stopping it leaves nothing behind."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None, log_name: str = "proc") -> None:
        self.argv = argv
        self.env = {**os.environ, **(env or {})}
        self.log_path = Path(tempfile.mkstemp(prefix=f"hpay-{log_name}-", suffix=".log")[1])
        self.proc: subprocess.Popen | None = None

    def start(self) -> ManagedProcess:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, timeout: float = 10.0) -> None:
        if not self.proc or self.proc.poll() is not None:
            return
        self.kill(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill(signal.SIGKILL)
            self.proc.wait(5)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


class SandboxProcess(ManagedProcess):
    """`python -m mini_program_mock` on a free port with its own data directory."""

    def __init__(self, data_dir: Path | None = None, time_scale: float = 0.001, port: int | None = None) -> None:
        self.port = port or free_port()
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix="hpay-sandbox-"))
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__(
            [sys.executable, "-m", "mini_program_mock", "--port", str(self.port), "--data-dir", str(self.data_dir),
             "--time-scale", str(time_scale)],
            log_name="sandbox",
        )

    def start(self) -> SandboxProcess:
        super().start()
        wait_http(f"{self.url}/sandbox/health", proc=self.proc)
        return self

    def merchants(self) -> dict:
        return requests.get(f"{self.url}/sandbox/merchants", timeout=5).json()
