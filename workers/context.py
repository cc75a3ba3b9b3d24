"""The worker process's Runtime, built once from the same HPAY_* settings as the web app."""
from __future__ import annotations

from app.runtime import Runtime
from config.logging import configure_logging
from config.settings import load_settings

_runtime: Runtime | None = None


def runtime() -> Runtime:
    global _runtime
    if _runtime is None:
        settings = load_settings()
        configure_logging(settings.LOG_LEVEL, settings.LOG_JSON)
        _runtime = Runtime(settings)
    return _runtime
