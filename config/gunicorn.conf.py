"""Gunicorn settings for the web processes: `gunicorn -c config/gunicorn.conf.py wsgi:app`.

Used by the image (config/deploy/Dockerfile) and by `make run`. Each value can be set from the
environment; the defaults suit one container on a small host.

| variable | default | meaning |
|---|---|---|
| HPAY_WEB_BIND | 0.0.0.0:8000 | address and port (comma list for several) |
| HPAY_WEB_WORKERS | number of CPUs, at least 2 | worker processes |
| HPAY_WEB_THREADS | 8 | threads per worker (gthread) |
| HPAY_WEB_WORKER_CLASS | gthread | gunicorn worker class |
| HPAY_WEB_TIMEOUT_S | 30 | a worker silent this long is killed and replaced |
| HPAY_WEB_GRACEFUL_TIMEOUT_S | 20 | on SIGTERM, in-flight requests get this long to finish |
| HPAY_WEB_KEEPALIVE_S | 5 | idle keep-alive with the reverse proxy; keep it below the proxy's own |
| HPAY_WEB_MAX_REQUESTS | 0 (off) | recycle a worker after this many requests (plus up to 10% jitter) |
| HPAY_WEB_CONTROL_SOCKET | (off) | path of gunicorn's control socket (for gunicornc) |

Threads, not processes, carry the concurrency: a request mostly waits on PostgreSQL, Redis, the
HIS or a channel, and the app keeps per-thread connections (notification ingest) and a pooled
engine. gthread, deliberately, also because of staff's live events (Server-Sent Events,
`/api/admin/v1/events/stream`): an open stream holds one thread of its worker for up to
HPAY_LIVE_STREAM_MAX_S while it waits on Redis, which a sync worker could not do without being
taken out of service for everyone. Measured for a slot-release crowd (bench/booking_flash.py, README
"Benchmarks": 1,000 patients at once on 2 cores): 2 gthread workers x 8 threads, 3 x 8, 2 x 4 and 2 sync
workers served the booking crowd within the machine's noise of each other (1611-1770 req/s), and a sync worker
cannot hold a stream; gevent workers were the slowest (about 280 req/s, measured earlier). So the
default stays 2 (or one per CPU) x 8 threads. gthread's timeout watches the worker's main loop, not a request,
so a long stream is not killed as a hung worker. Each process serves at most
HPAY_LIVE_STREAMS_PER_PROCESS streams (default 4) and refuses more with 503 and Retry-After, so with
8 threads at least 4 are always left for every other request: keep HPAY_WEB_THREADS at least
twice HPAY_LIVE_STREAMS_PER_PROCESS (and add workers for more screens).

Proxies and client addresses: the app is the one place that believes forwarding headers. With
HPAY_PROXY_COUNT=N (app/factory.py) it applies werkzeug's ProxyFix, reading the client address and
scheme N hops back in X-Forwarded-For / X-Forwarded-Proto, so a value the client wrote itself is
never believed. Gunicorn therefore trusts no peer for forwarding headers (`forwarded_allow_ips`
empty, no `secure_scheme_headers`): otherwise a second, differently configured layer could mark a
request https or rewrite its path on a header from an untrusted hop.

Access log off: the app logs every request itself (hpay.access, JSON, with the request id and
duration); gunicorn's error log goes to stderr.

Metrics: the workers count into PROMETHEUS_MULTIPROC_DIR (config/metrics_files.py), which the process
starters set to a directory shared with the rq workers (make run: $HPAY_VAR_DIR/metrics; the image:
/var/lib/hpay-metrics, a volume in compose). Left unset, a temporary directory of this server's own is
used, so that the web workers at least add up. At start the files of processes that are gone are
removed; a worker that exits is marked dead (its live gauges go, its counters stay in the totals).
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

# Loaded by path, before the app: the repository root is where `config` is importable from.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from config import metrics_files  # noqa: E402


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


bind = [address.strip() for address in os.environ.get("HPAY_WEB_BIND", "0.0.0.0:8000").split(",") if address.strip()]
workers = _int("HPAY_WEB_WORKERS", max(2, os.cpu_count() or 1))
worker_class = os.environ.get("HPAY_WEB_WORKER_CLASS", "gthread")
threads = _int("HPAY_WEB_THREADS", 8)
timeout = _int("HPAY_WEB_TIMEOUT_S", 30)
graceful_timeout = _int("HPAY_WEB_GRACEFUL_TIMEOUT_S", 20)
keepalive = _int("HPAY_WEB_KEEPALIVE_S", 5)
max_requests = _int("HPAY_WEB_MAX_REQUESTS", 0)
max_requests_jitter = max_requests // 10

# The app logs requests (hpay.access); gunicorn's own errors go to stderr.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("HPAY_WEB_LOG_LEVEL", "info")

# See the docstring: ProxyFix in the app (HPAY_PROXY_COUNT) is the only reader of X-Forwarded-*.
forwarded_allow_ips = ""
secure_scheme_headers: dict[str, str] = {}

# gunicornc's control socket defaults to one path per user ($HOME/.gunicorn/gunicorn.ctl), shared by every
# gunicorn of that user on the host; off unless HPAY_WEB_CONTROL_SOCKET names a path for this one.
control_socket = os.environ.get("HPAY_WEB_CONTROL_SOCKET", "")
control_socket_disable = not control_socket

# Request size limits in front of the app's own (MAX_CONTENT_LENGTH, 2 MiB).
limit_request_line = 8190
limit_request_fields = 100


def on_starting(server) -> None:
    # In the master, before any worker exists: the workers inherit the variable (the app is loaded after the fork).
    if metrics_files.directory() is None:
        os.environ[metrics_files.ENV] = tempfile.mkdtemp(prefix="hpay-metrics-")
    metrics_files.prepare()


def child_exit(server, worker) -> None:
    metrics_files.mark_dead(worker.pid)
