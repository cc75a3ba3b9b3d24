"""Shared plumbing of the benchmarks: throwaway servers, gunicorn, wrk runs, and the summary tables.

Every figure comes from wrk (https://github.com/wg/wrk, Debian package `wrk`) driving gunicorn
over loopback on the same machine; the Lua in bench/lua/ makes each request and counts the
answers, and prints one `BENCH {json}` line that `run_wrk` reads.
"""
from __future__ import annotations

import argparse
import json
import os
import platform as host
import pwd
import shutil
import statistics
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from tests.processes import ManagedProcess, SandboxProcess, wait_http  # noqa: E402
from tests.servers import PostgresServer, RedisServer, _pg_bin, _wait_port, free_port  # noqa: E402

LUA_DIR = Path(__file__).resolve().parent / "lua"
BENCH_SECRET_KEY = "bench-secret-key-not-for-production-0123456789"
PLATFORM_GUNICORN_CONFIG = ROOT / "config" / "gunicorn.conf.py"


class BenchPostgresServer(PostgresServer):
    """The tests' throwaway PostgreSQL, but by default flushing every commit to disk as a production
    server does (the tests run it with fsync=off, which would hide the cost of a durable commit)."""

    def __init__(self, fsync: bool = True) -> None:
        super().__init__()
        self.fsync = fsync

    def start(self) -> str:
        if not self.fsync:
            return super().start()
        if self._as_postgres:
            user = pwd.getpwnam("postgres")
            os.chown(self.tmp, user.pw_uid, user.pw_gid)
        self._run(_pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8")
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.tmp / "pg.log"), "-w", "-o",
                  f"-p {self.port} -k {self.tmp} -c listen_addresses=127.0.0.1 -c max_connections=300", "start")
        _wait_port(self.port)
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"


def add_server_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers for every variant (default 2)")
    parser.add_argument("--worker-threads", type=int, default=0,
                        help="gthread workers with this many threads each, instead of sync workers (default: sync)")
    parser.add_argument("--worker-class", choices=("sync", "gthread", "gevent"), default=None,
                        help="gunicorn worker class (default: gthread with --worker-threads, else sync); gevent "
                             "needs `pip install gevent` (not one of the platform's dependencies)")
    parser.add_argument("--worker-connections", type=int, default=1000,
                        help="greenlets per gevent worker (default 1000)")
    parser.add_argument("--pg-fsync-off", action="store_true",
                        help="run PostgreSQL with fsync=off as the test suite does (commits not flushed to disk)")


class BenchStack:
    """PostgreSQL with a migrated `hpay_bench` database, and redis-server; everything stops on exit."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.fsync = not args.pg_fsync_off
        self.workers, self.worker_threads = args.workers, args.worker_threads
        self.worker_class = args.worker_class or ("gthread" if args.worker_threads else "sync")
        self.worker_connections = args.worker_connections
        self._exit = ExitStack()
        self.database_url = ""
        self.redis_url = ""

    def __enter__(self) -> BenchStack:
        from app.db.migrate import upgrade

        self.workdir = Path(tempfile.mkdtemp(prefix="hpay-bench-run-"))
        self._exit.callback(shutil.rmtree, self.workdir, ignore_errors=True)
        try:
            postgres = BenchPostgresServer(self.fsync)
            admin_url = postgres.start()
            self._exit.callback(postgres.stop)
            redis = RedisServer()
            self.redis_url = redis.start()
            self._exit.callback(redis.stop)
            engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
            with engine.connect() as conn:
                conn.execute(text('CREATE DATABASE "hpay_bench"'))
                settings = dict(conn.execute(text(
                    "SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit')")).all())
            engine.dispose()
            self.pg_settings = settings
            self.database_url = admin_url.rsplit("/", 1)[0] + "/hpay_bench"
            upgrade(self.database_url)
        except BaseException:
            self._exit.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._exit.close()

    def settings(self):
        from config.settings import DevelopmentSettings

        return DevelopmentSettings(DATABASE_URL=self.database_url, REDIS_URL=self.redis_url,
                                   SECRET_KEY=BENCH_SECRET_KEY, LOG_LEVEL="WARNING")

    def env(self) -> dict[str, str]:
        """What the platform reads; INFO logging, as production runs (one access-log line a request)."""
        return {"HPAY_ENV": "development", "HPAY_DATABASE_URL": self.database_url,
                "HPAY_REDIS_URL": self.redis_url, "HPAY_SECRET_KEY": BENCH_SECRET_KEY, "HPAY_LOG_LEVEL": "INFO"}

    def gunicorn(self, app_spec: str, label: str, ready_path: str = "/", env: dict[str, str] | None = None,
                 platform_config: bool = False) -> Gunicorn:
        """One server; with `platform_config`, gunicorn reads config/gunicorn.conf.py as `make run` and the image
        do (its keep-alive, limits and hooks), the worker settings of the command line overriding its own."""
        server = Gunicorn(app_spec, {**self.env(), **(env or {})}, label, self.workers,
                          self.worker_threads, self.worker_class, self.worker_connections,
                          PLATFORM_GUNICORN_CONFIG if platform_config else None).start(ready_path)
        self._exit.callback(server.stop)
        return server


def seed_demo_clinic(rt) -> None:
    """The demo clinic and its merchant accounts, through `seed_demo` against a sandbox started for it."""
    from app.cli.demo import seed_demo

    sandbox = SandboxProcess().start()
    try:
        seed_demo(rt, sandbox.url)
    finally:
        sandbox.stop()
        shutil.rmtree(sandbox.data_dir, ignore_errors=True)
        sandbox.log_path.unlink(missing_ok=True)


class Gunicorn:
    """One gunicorn with the settings every variant shares (sync workers unless told), nothing else tuned."""

    def __init__(self, app_spec: str, env: dict[str, str], label: str, workers: int, threads: int,
                 worker_class: str = "", connections: int = 1000, config: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        bindir = Path(sys.executable).parent
        worker_class = worker_class or ("gthread" if threads else "sync")
        kind = ["--worker-class", worker_class]
        if worker_class == "gthread":
            kind += ["--threads", str(threads)]
        elif worker_class == "gevent":
            kind += ["--worker-connections", str(connections)]
        if config is not None:
            kind += ["--config", str(config)]
        self.process = ManagedProcess([str(bindir / "gunicorn"), app_spec, "--bind", f"127.0.0.1:{self.port}",
                                       "--workers", str(workers), *kind, "--timeout", "60"], env, f"bench-{label}")

    def start(self, ready_path: str) -> Gunicorn:
        self.ready_url = self.url + ready_path
        self.process.start()
        wait_http(self.ready_url, proc=self.process.proc)
        return self

    def drain(self) -> None:
        """Wait out the requests wrk left queued when it stopped (up to one per connection): the workers
        finish them even though nobody reads the answers, and they must not eat into the next run."""
        requests.get(self.ready_url, timeout=300)

    def stop(self) -> None:
        self.process.stop()
        self.process.log_path.unlink(missing_ok=True)


# --- wrk -------------------------------------------------------------------------------------------

def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("wrk is not installed: installing it with apt-get install -y wrk …", flush=True)
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
        found = shutil.which("wrk")
    if not found:
        sys.exit("wrk is required: apt-get install wrk (Debian/Ubuntu) or build it from github.com/wg/wrk")
    return found


@dataclass
class WrkRun:
    requests: int
    duration_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: dict[str, int]
    counts: dict[str, int]
    furthest_position: int

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s

    @property
    def socket_errors(self) -> int:
        return sum(v for k, v in self.errors.items() if k != "status")


def lua_script(name: str, workdir: Path) -> Path:
    """bench/lua/report.lua (counting and the BENCH line) followed by the variant's script."""
    script = workdir / name
    script.write_text((LUA_DIR / "report.lua").read_text() + "\n" + (LUA_DIR / name).read_text())
    return script


def run_wrk(url: str, script: Path, args: list[str], duration_s: float, connections: int, threads: int = 2,
            timeout_s: int = 10) -> WrkRun:
    argv = [ensure_wrk(), "--threads", str(threads), "--connections", str(connections),
            "--duration", f"{max(1, round(duration_s))}s", "--timeout", f"{timeout_s}s", "--latency",
            "--script", str(script), url, "--", *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration_s + 60)
    line = next((raw for raw in done.stdout.splitlines() if raw.startswith("BENCH ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    data = json.loads(line[len("BENCH "):])
    return WrkRun(requests=data["requests"], duration_s=data["duration_us"] / 1e6, p50_ms=data["p50_us"] / 1e3,
                  p99_ms=data["p99_us"] / 1e3, max_ms=data["max_us"] / 1e3, errors=data["errors"],
                  counts=data["counts"], furthest_position=data["furthest_position"])


# --- summaries -------------------------------------------------------------------------------------

@dataclass
class Series:
    """One variant's runs in one benchmark invocation."""

    label: str
    runs: list[WrkRun] = field(default_factory=list)

    @property
    def rps(self) -> list[float]:
        return [r.rps for r in self.runs]

    @property
    def p99(self) -> list[float]:
        return [r.p99_ms for r in self.runs]


def spread(values: list[float], digits: int = 0) -> str:
    fmt = f"{{:.{digits}f}}"
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def results_table(series: list[Series]) -> str:
    rows = [("variant", "req/s median (min-max)", "p99 ms median (min-max)", "p50 ms median", "runs")]
    for s in series:
        rows.append((s.label, spread(s.rps), spread(s.p99, 1), f"{statistics.median(r.p50_ms for r in s.runs):.1f}",
                     str(len(s.runs))))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def ratio_line(name: str, top: Series, bottom: Series) -> str:
    """Ratio of the medians, and the median of the per-round ratios (runs of one round are neighbours
    in time, so the second is the steadier figure on a noisy machine)."""
    of_medians = statistics.median(top.rps) / statistics.median(bottom.rps)
    per_round = [t.rps / b.rps for t, b in zip(top.runs, bottom.runs, strict=False)]
    return (f"{name} = {of_medians:.2f}x (ratio of medians); per round {statistics.median(per_round):.2f}x median, "
            f"{min(per_round):.2f}-{max(per_round):.2f}")


def revision() -> str:
    """HEAD, and whether tracked files differ from it (plumbing only: nothing in .git is written)."""
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
        changed = subprocess.run(["git", "-C", str(ROOT), "diff-index", "--quiet", "HEAD", "--"],
                                 timeout=10).returncode != 0
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head or 'unknown'}{' with uncommitted changes' if changed else ''}"


def describe_machine(stack: BenchStack) -> str:
    pg = ", ".join(f"{k}={v}" for k, v in sorted(stack.pg_settings.items()))
    return (f"{os.cpu_count()} cores, Python {host.python_version()}, PostgreSQL {pg}, gunicorn "
            f"{server_setting(stack)}, revision {revision()}; {load_average()}")


def server_setting(stack: BenchStack) -> str:
    if stack.worker_class == "gevent":
        return f"{stack.workers} gevent workers x {stack.worker_connections} connections"
    if stack.worker_threads:
        return f"{stack.workers} gthread workers x {stack.worker_threads} threads"
    return f"{stack.workers} sync workers"


def load_average() -> str:
    """Other work on the machine skews every figure: say how busy it was."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min)"
