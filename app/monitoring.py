"""Prometheus metrics at `/metrics`: what the processes counted, and what is owed, measured when scraped.

Counted where it happens (app/metrics.py): requests by endpoint (the Flask endpoint name, never the path), status
and latency (the hooks below); notifications by verdict; reconciliation outcomes; refused sign-ins; rate-limit
refusals. Under gunicorn and rq the counts of every process are added up from PROMETHEUS_MULTIPROC_DIR
(config/metrics_files.py); without it, `/metrics` shows this process's own.

Measured at scrape time, once, by the web process answering (`WorkCollector`): for each of the dispatcher's lease
specs (workers/dispatcher.py `LEASES`: the inbox, the HIS outbox, payments to query, expired orders, refunds,
no-shows, registration syncs, and any outbox added later) the rows owed, the rows due now and the age of the oldest
due one; each rq queue's jobs by state (failed included); the dispatcher's heartbeat age. A source that does not
answer is reported by `hpay_scrape_source_up{source}` = 0 and its series are left out; the scrape still answers.

Who may read it (settings): with HPAY_METRICS_TOKEN, a client sending `Authorization: Bearer <token>`; without one,
only a loopback client (127.0.0.0/8, ::1: a Prometheus or a curl on the same host), and only while
HPAY_METRICS_LOOPBACK_ONLY is on (production requires one of the two to be set on purpose). Behind a reverse proxy
the client address is the one HPAY_PROXY_COUNT hops back, so a request through the proxy is not loopback.
"""
from __future__ import annotations

import hmac
import ipaddress
import logging
import time
from collections.abc import Iterable, Iterator, Mapping

from flask import Flask, Response, current_app, g, request
from flask_smorest import Api, Blueprint
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from app import metrics
from app.domain.errors import Forbidden, Unauthorized
from app.extensions import JOB_ROWS as JOB_ROWS_EXTENSION
from app.extensions import LEASES as LEASES_EXTENSION
from app.extensions import runtime
from app.runtime import Runtime
from app.services import ops
from config import metrics_files
from workers.dispatcher import LEASES
from workers.logcontext import JOB_ROWS

log = logging.getLogger(__name__)

blp = Blueprint("monitoring", __name__, description="Prometheus metrics")

_REGISTRY = "hpay_metrics_registry"


class WorkCollector:
    """The backlogs, queues and heartbeat, read from the database and Redis when a scrape asks."""

    def __init__(self, rt: Runtime, specs: Iterable[ops.WorkSpec]) -> None:
        self.rt = rt
        self.specs = list(specs)

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("hpay_scrape_source_up", "1 when the source answered this scrape, 0 when it did not",
                               labels=["source"])
        yield from self._work(up)
        yield from self._queues(up)
        yield up

    def _work(self, up: GaugeMetricFamily) -> Iterator[Metric]:
        labels = ["work", "queue"]
        backlog = GaugeMetricFamily("hpay_work_backlog", "Rows owed work (a due status), by lease spec", labels=labels)
        due = GaugeMetricFamily("hpay_work_due", "Rows owed work whose time has come, by lease spec", labels=labels)
        age = GaugeMetricFamily("hpay_work_oldest_due_age_seconds", "How long the oldest due row has waited (0: none)",
                                labels=labels)
        try:
            found = ops.backlogs(self.rt, self.specs)
        except Exception:  # noqa: BLE001  (the scrape answers with the database reported down)
            log.warning("metrics: the work backlog could not be read", exc_info=True)
            up.add_metric(["database"], 0)
            return
        for item in found:
            backlog.add_metric([item.name, item.queue], item.backlog)
            due.add_metric([item.name, item.queue], item.due)
            age.add_metric([item.name, item.queue], round(item.oldest_due_age_s, 3))
        up.add_metric(["database"], 1)
        yield from (backlog, due, age)

    def _queues(self, up: GaugeMetricFamily) -> Iterator[Metric]:
        jobs = GaugeMetricFamily("hpay_queue_jobs", "rq jobs by queue and state (queued, started, scheduled, deferred, "
                                 "failed)", labels=["queue", "state"])
        heartbeat = GaugeMetricFamily("hpay_dispatcher_heartbeat_age_seconds",
                                      "Seconds since the dispatcher last ran to the end")
        try:
            depths = ops.depths(self.rt)
            beat = ops.last_beat(self.rt)
        except Exception:  # noqa: BLE001
            log.warning("metrics: the queues could not be read", exc_info=True)
            up.add_metric(["redis"], 0)
            return
        for depth in depths:
            for state in ("queued", "started", "scheduled", "deferred", "failed"):
                jobs.add_metric([depth.name, state], getattr(depth, state))
        up.add_metric(["redis"], 1)
        yield jobs
        if beat.age_s is not None:
            heartbeat.add_metric([], round(beat.age_s, 3))
            yield heartbeat


class _ThisProcess:
    """Without multiprocess files: this process's own counters (prometheus_client's default registry)."""

    def collect(self) -> Iterator[Metric]:
        return REGISTRY.collect()


def _registry(app: Flask) -> CollectorRegistry:
    registry = app.extensions.get(_REGISTRY)
    if registry is None:
        registry = CollectorRegistry(auto_describe=False)
        path = metrics_files.directory()
        if path is not None:
            MultiProcessCollector(registry, str(path))
        else:
            registry.register(_ThisProcess())
        registry.register(WorkCollector(app.extensions["hpay_runtime"], app.extensions[LEASES_EXTENSION]))
        app.extensions[_REGISTRY] = registry
    return registry


def _loopback(address: str | None) -> bool:
    try:
        ip = ipaddress.ip_address((address or "").split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


def _check_access() -> None:
    settings = runtime().settings
    if settings.METRICS_TOKEN:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(),
                                                                 settings.METRICS_TOKEN.encode()):
            raise Unauthorized("send Authorization: Bearer <HPAY_METRICS_TOKEN>", "metrics_token_required")
        return
    if not (settings.METRICS_LOOPBACK_ONLY and _loopback(request.remote_addr)):
        raise Forbidden("metrics answer only to clients on this host (set HPAY_METRICS_TOKEN to read them from "
                        "elsewhere)", "metrics_forbidden")


@blp.route("/metrics", methods=["GET"])
@blp.doc(responses={
    "200": {"description": "Prometheus text exposition format 0.0.4",
            "content": {"text/plain": {"schema": {"type": "string"}}}},
    "401": {"description": "`metrics_token_required`: HPAY_METRICS_TOKEN is set and was not sent",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ApiError"}}}},
    "403": {"description": "`metrics_forbidden`: no token is configured and the client is not on this host",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ApiError"}}}},
}, security=[{"bearer": []}])
def metrics_endpoint():
    """Prometheus metrics (counters of every process; backlogs, queue depths and the heartbeat measured now)."""
    _check_access()
    return Response(generate_latest(_registry(current_app)), mimetype=CONTENT_TYPE_LATEST)


def _install_request_metrics(app: Flask) -> None:
    @app.before_request
    def start_timing():
        g.metrics_started = time.perf_counter()

    @app.after_request
    def count_request(response):
        started = g.pop("metrics_started", None)
        if started is not None:
            endpoint = request.url_rule.endpoint if request.url_rule is not None else "unmatched"
            metrics.count_request(endpoint, request.method, response.status_code, time.perf_counter() - started)
        return response


def install(app: Flask, api: Api, leases: Iterable[ops.WorkSpec] = LEASES,
            job_rows: Mapping[str, type] = JOB_ROWS) -> None:
    """Serve /metrics, count every request, and hand the lease specs to the admin API's queue screens; call
    after the other blueprints and before the rate limits (so that a refused request is counted too)."""
    app.extensions[LEASES_EXTENSION] = tuple(leases)
    app.extensions[JOB_ROWS_EXTENSION] = dict(job_rows)
    api.register_blueprint(blp)
    _install_request_metrics(app)
