"""Structured JSON logs with a request id on every line and personal data masked.

A web request's lines carry its request id; a worker job's lines carry the job (id, function, the row it works
on and that row's order number) and the cron scheduler's lines its name, through `log_context`.
"""
from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
# Fields every line of the current job (or process) carries, e.g. {"job": "workers.jobs.send_his_write",
# "job_id": "…", "row": "his_outbox:12", "order_no": "…"}.
log_context_var: contextvars.ContextVar[dict | None] = contextvars.ContextVar("log_context", default=None)
_CONTEXT_FIELDS = ("scheduler", "job", "job_id", "row", "order_no")

# Mainland mobile numbers and resident ID numbers; masked wherever they appear in a message.
_PHONE = re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)")
_ID_NUMBER = re.compile(
    r"(?<![0-9A-Za-z])(\d{3})\d{3}(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])(\d{3}[0-9Xx])(?![0-9A-Za-z])"
)


def mask_phone(phone: str | None) -> str | None:
    if not phone:
        return phone
    digits = str(phone)
    if len(digits) < 7:
        return "*" * len(digits)
    return f"{digits[:3]}****{digits[-4:]}"


def mask_id_number(value: str | None) -> str | None:
    if not value:
        return value
    value = str(value)
    if len(value) <= 7:
        return "*" * len(value)
    return f"{value[:3]}{'*' * (len(value) - 7)}{value[-4:]}"


def mask_text(text: str) -> str:
    text = _ID_NUMBER.sub(lambda m: f"{m.group(1)}***********{m.group(2)}", text)
    return _PHONE.sub(lambda m: f"{m.group(1)}****{m.group(2)}", text)


SECRET_BEARING_LOGGERS = ("wechatpy.pay.utils", "urllib3.connectionpool")


@contextmanager
def log_context(**fields) -> Iterator[None]:
    """Every line logged in this block (this thread or task) carries `fields` (None values are left out)."""
    token = log_context_var.set({**(log_context_var.get() or {}),
                                 **{key: value for key, value in fields.items() if value is not None}})
    try:
        yield
    finally:
        log_context_var.reset(token)


def _stamp(record: logging.LogRecord) -> None:
    record.request_id = request_id_var.get()
    # Kept apart from the record's own attributes: a caller's `extra` (rq passes job_id) may name the same field.
    context = {key: value for key, value in (log_context_var.get() or {}).items() if key in _CONTEXT_FIELDS}
    record.hpay_context = context
    record.log_context = "".join(f" {key}={context[key]}" for key in _CONTEXT_FIELDS if key in context)


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "log_context"):
            _stamp(record)
        return True


class JsonFormatter(logging.Formatter):
    _RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "request_id", "asctime",
                                                                            "log_context", "hpay_context"}

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", request_id_var.get()),
            "message": mask_text(record.getMessage()),
        }
        entry.update(getattr(record, "hpay_context", None) or {})
        for key, value in vars(record).items():
            if key not in self._RESERVED and not key.startswith("_"):
                entry[key] = mask_text(value) if isinstance(value, str) else value
        if record.exc_info:
            entry["exc"] = mask_text(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


class PlainFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return mask_text(super().format(record))


_base_factory = logging.getLogRecordFactory()


def _record_with_request_id(*args, **kwargs) -> logging.LogRecord:
    record = _base_factory(*args, **kwargs)
    _stamp(record)
    return record


def configure_logging(level: str = "INFO", json_logs: bool = True) -> None:
    # Stamped at creation, so every handler (and every line) carries the request's id.
    logging.setLogRecordFactory(_record_with_request_id)
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if json_logs else PlainFormatter(
        "%(asctime)s %(levelname)s [%(request_id)s%(log_context)s] %(name)s: %(message)s"))
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, "_hpay", False):
            root.removeHandler(existing)
    handler._hpay = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # Libraries that write secrets at DEBUG, kept at INFO whatever the level: wechatpy logs its signing string,
    # which ends with `&key=<the merchant's API key>`; urllib3 logs request URLs, and WeChat's code2session
    # carries the mini-program secret in its query.
    for leaky in SECRET_BEARING_LOGGERS:
        logging.getLogger(leaky).setLevel(logging.INFO)
    # rq logs every enqueue and every finished job; our dispatcher runs each second.
    for noisy in ("rq.cron", "rq.worker", "rq.scheduler", "rq.queue", "alembic.runtime.plugins"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)
                                              if isinstance(level, str) else level))
