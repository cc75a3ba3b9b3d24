"""Access to the per-app Runtime (and what the composition root handed the app) from request code."""
from __future__ import annotations

from flask import current_app

from app.runtime import Runtime

# Set by app.monitoring.install: the dispatcher's lease specs, and the table each worker job's row is of.
LEASES = "hpay_leases"
JOB_ROWS = "hpay_job_rows"


def runtime() -> Runtime:
    return current_app.extensions["hpay_runtime"]


def lease_specs() -> tuple:
    """The dispatcher's lease specs (workers/dispatcher.py LEASES): every table of work."""
    return current_app.extensions[LEASES]


def job_rows() -> dict[str, type]:
    """{worker job function: the table its first argument is a row of}."""
    return current_app.extensions[JOB_ROWS]
