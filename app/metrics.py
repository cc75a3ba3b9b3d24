"""The platform's counters and histograms (Prometheus), counted where things happen.

In multiprocess mode (PROMETHEUS_MULTIPROC_DIR set, config/metrics_files.py) every value lives in this
process's files, named by host and process id, and `/metrics` (app/monitoring.py) adds up the files of every
process; without it they live in this process's memory. What is read from the database or Redis when scraped
(backlogs, queue depths) is not here: app/monitoring.py computes it at scrape time.

Labels are bounded sets: endpoint names, never paths; reason classes, never messages.
"""
from __future__ import annotations

from prometheus_client import Counter, Histogram, values

from config import metrics_files

if metrics_files.directory() is not None:
    # Before any metric exists: each value is created in files named by host and pid (config/metrics_files.py).
    values.ValueClass = values.MultiProcessValue(process_identifier=metrics_files.identifier)

# Every metric has labels, so that its value (and in multiprocess mode its file) is made when first counted, not
# when a process imports this module: a CLI command may import it before the metrics directory exists.
REQUESTS = Counter("hpay_http_requests_total", "HTTP requests answered, by endpoint (the Flask endpoint name) and "
                   "status", ["endpoint", "method", "status"])
REQUEST_SECONDS = Histogram("hpay_http_request_duration_seconds", "Time to answer an HTTP request, by endpoint",
                            ["endpoint", "method"],
                            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0))
SOLD_OUT_FROM_MEMORY = Counter("hpay_booking_sold_out_from_memory_total", "Booking requests this process answered "
                               "sold out from its memory, before the web framework (app.api.mp.sold_out_edge), by "
                               "the answer's error code (slot_sold_out, inventory_sold_out)", ["error"])
NOTIFICATIONS = Counter("hpay_notifications_total", "Channel notifications received, by channel, kind, verdict "
                        "(accepted, rejected) and reason class", ["channel", "kind", "verdict", "reason"])
RECONCILIATION_RUNS = Counter("hpay_reconciliation_runs_total", "Reconciliation runs finished, by source and outcome "
                              "(done, failed)", ["source", "outcome"])
RECONCILIATION_FINDINGS = Counter("hpay_reconciliation_findings_total", "What finished reconciliation runs found, by "
                                  "source and status (open, held, repaired, resolved)", ["source", "status"])
LOGIN_FAILURES = Counter("hpay_login_failures_total", "Refused sign-ins, by who (staff, mini_program) and reason",
                         ["who", "reason"])
RATE_LIMITED = Counter("hpay_rate_limited_total", "Requests refused by a rate limit, by the limit's name",
                       ["limit"])


# Labels are bounded: a method name a client made up is counted as "other".
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def count_request(endpoint: str, method: str, status: int, seconds: float) -> None:
    """One answered request: `endpoint` is the Flask endpoint name (or "unmatched"), never a path."""
    method = method if method in _METHODS else "other"
    REQUESTS.labels(endpoint, method, str(status)).inc()
    REQUEST_SECONDS.labels(endpoint, method).observe(seconds)
