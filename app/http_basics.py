"""What every answer of the platform carries and leaves behind, whoever builds it: the security headers, the
request id and the access-log line. Flask's hooks (app.factory) apply them to every response; the booking
crowd's sold-out answers given before Flask (app.api.mp.sold_out_edge) apply the same, so an operator and a
client see one platform."""
from __future__ import annotations

import logging
import re
import time
import uuid

access_log = logging.getLogger("hpay.access")

REQUEST_ID_HEADER = "X-Request-Id"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
HSTS = ("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
# Headers an answer may set for itself (setdefault); Cache-Control is always ours.
ALWAYS_SET = frozenset({"Cache-Control"})


def security_headers(path: str, mimetype: str | None, hsts: bool) -> list[tuple[str, str]]:
    """No MIME sniffing, no framing (clickjacking), no referrer; API answers (tokens among them) are never stored
    by a cache; HTTPS only, remembered by the browser, in production."""
    headers = [("X-Content-Type-Options", "nosniff"), ("X-Frame-Options", "DENY"), ("Referrer-Policy", "no-referrer")]
    if mimetype == "text/html":
        # The docs page (Swagger UI from our own static files) runs its own inline start-up script.
        headers.append(("Content-Security-Policy", "frame-ancestors 'none'"))
    else:
        headers.append(("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"))
    if path.startswith("/api/") or mimetype == "application/json":
        headers += [("Cache-Control", "no-store"), ("Pragma", "no-cache")]
    if hsts:
        headers.append(HSTS)
    return headers


def request_id(incoming: str | None) -> str:
    """The caller's X-Request-Id when it is a sane token (a proxy's or a client's), else a new one."""
    return incoming if incoming and _REQUEST_ID.match(incoming) else uuid.uuid4().hex


def log_access(method: str, path: str, status: int, started: float) -> None:
    """One line a request; the logging setup adds the request id of the context (config.logging)."""
    access_log.info("%s %s -> %s", method, path, status,
                    extra={"status": status, "duration_ms": round((time.perf_counter() - started) * 1000, 1)})
