"""Where the processes of one host keep their Prometheus counters (prometheus_client's multiprocess mode).

Each web and worker process writes its counters to files of its own in `PROMETHEUS_MULTIPROC_DIR`; `/metrics`
adds them up. The process starters set that variable (config/gunicorn.conf.py for the web processes, `make run`,
the tests' platform, the compose file), and the same directory is given to every process of a deployment, so
that what a worker counts (reconciliation outcomes) is seen by the web process that answers `/metrics`.

Files are named by process identifier: the host name and the process id, so that containers sharing the
directory through a volume never write to one file (their process ids repeat: each container starts at 1).
At start, a process removes the files of this host's processes that are gone (`prepare`): their counts end
with them, and Prometheus reads the drop as the counter reset a restart is.

This module imports no metric: gunicorn's master process loads it from its configuration without counting.
"""
from __future__ import annotations

import os
import re
import socket
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"
_HOST = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname())[:64] or "host"
# `<type>_<host>-<pid>.db`, e.g. counter_web-1-42.db or histogram_ab12cd-7.db.
_FILE = re.compile(r"^[a-z_]+?_(?P<host>[A-Za-z0-9.-]+)-(?P<pid>\d+)\.db$")
_LIVE_GAUGE_MODES = ("liveall", "livesum", "livemax", "livemin", "livemostrecent")


def directory() -> Path | None:
    """The multiprocess directory of this process, or None when metrics are per process (not configured)."""
    raw = os.environ.get(ENV, "").strip()
    return Path(raw) if raw else None


def identifier(pid: int | None = None) -> str:
    """The name this host's process `pid` (default: this one) writes its files under."""
    return f"{_HOST}-{os.getpid() if pid is None else pid}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def prepare(path: Path | None = None) -> list[str]:
    """Create the directory and remove the files of this host's processes that are no longer running; returns
    the names removed. Files of other hosts (other containers) are theirs to clean."""
    path = path or directory()
    if path is None:
        return []
    path.mkdir(parents=True, exist_ok=True)
    removed = []
    for entry in path.glob("*.db"):
        match = _FILE.match(entry.name)
        if match is None or match["host"] != _HOST or _alive(int(match["pid"])):
            continue
        entry.unlink(missing_ok=True)
        removed.append(entry.name)
    return removed


def mark_dead(pid: int, path: Path | None = None) -> None:
    """A process of this host ended (gunicorn's child_exit): its live gauges go; its counters stay in the totals."""
    path = path or directory()
    if path is None:
        return
    for mode in _LIVE_GAUGE_MODES:
        (path / f"gauge_{mode}_{identifier(pid)}.db").unlink(missing_ok=True)
