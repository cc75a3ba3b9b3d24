"""Access to the per-app Runtime from request code."""
from __future__ import annotations

from flask import current_app

from app.runtime import Runtime


def runtime() -> Runtime:
    return current_app.extensions["hpay_runtime"]
