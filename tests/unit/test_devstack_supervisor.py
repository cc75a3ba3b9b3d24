"""The supervisor of `make run` (app/cli/devstack.py) on its own: the restart backoff, and stopping that goes on
when the terminal has gone (the whole stack, killed and restarted for real: tests/e2e/test_devstack_supervisor.py)."""
from __future__ import annotations

import io
import sys
import time

from app.cli.devstack import BACKOFF_MAX_S, STABLE_AFTER_S, EventLog, Supervised, Supervisor


def _wait_dead(child: Supervised) -> None:
    deadline = time.monotonic() + 30
    while child.proc.poll() is None:
        assert time.monotonic() < deadline, "the child did not exit"
        time.sleep(0.02)


def test_a_crashing_child_is_restarted_after_1_2_4_s_up_to_30_s_and_from_1_s_again_after_a_stable_minute():
    lines: list[str] = []
    child = Supervised("flaky", [sys.executable, "-c", "raise SystemExit(3)"], {}, lines.append)
    child.start()
    delays = []
    now = time.monotonic()
    for _ in range(7):
        _wait_dead(child)
        now = max(now, time.monotonic())
        child.check(now)  # notices the death and schedules the restart
        delays.append(child.restart_at - now)
        child.check(now + delays[-1] - 0.01)  # not yet
        assert child.proc.poll() is not None and child.restart_at is not None
        now += delays[-1]
        child.check(now)  # restarts
        assert child.restart_at is None
    assert delays == [1, 2, 4, 8, 16, BACKOFF_MAX_S, BACKOFF_MAX_S]
    _wait_dead(child)
    child.started_at = time.monotonic() - STABLE_AFTER_S  # as if this run had lasted a minute
    child.check(time.monotonic())
    assert child.backoff_s == 1
    assert lines[0].startswith("flaky started (pid ") and "flaky restarted (pid " in lines[2]
    assert lines[1].startswith("flaky exited with 3 after ") and lines[1].endswith("restarting in 1 s")
    child.stop()


def test_stopping_goes_on_when_the_terminal_is_gone(tmp_path, monkeypatch):
    class BrokenPipe(io.StringIO):
        def write(self, _text):
            raise BrokenPipeError(32, "Broken pipe")

    log = EventLog(tmp_path / "log" / "devstack.log")
    supervisor = Supervisor({}, log)
    supervisor.spawn("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"])
    child = supervisor.children[0]
    monkeypatch.setattr(sys, "stdout", BrokenPipe())  # `make run | tee` with tee killed by the same Ctrl-C
    supervisor.stop()
    assert child.proc.poll() is not None
    recorded = (tmp_path / "log" / "devstack.log").read_text().splitlines()
    assert [line.split(" ", 1)[1] for line in recorded[-3:]] == [
        "stopping…", f"sleeper stopped ({child.proc.returncode})", "all processes stopped"]
