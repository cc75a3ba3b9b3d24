"""Cross-origin calls to the mini-program API from the pages of allowed web origins (HPAY_CORS_ORIGINS).

The sandbox's H5 pages (served on another port, so another origin) call `/api/mp/v1/*` from a browser. Only the
configured origins get `Access-Control-Allow-*` headers, only on the mini-program API, and never with credentials:
the pages send their session token in `Authorization`, so a cookie or a browser's stored login is never in play.
Any other origin gets no CORS headers at all, which the browser enforces by refusing to hand it the answer; the
admin API, the HIS API and the notify endpoints never answer a preflight.

`GET /openapi.json`, the published contract, is readable too: a page checks once which endpoints the platform
offers (an endpoint added later switches its feature on without a new build).
"""
from __future__ import annotations

from flask import Flask, Response, request

from config.settings import Settings

MP_API_PREFIX = "/api/mp/v1/"
CONTRACT_PATH = "/openapi.json"
ALLOWED_METHODS = "GET, POST"
ALLOWED_HEADERS = "Authorization, Content-Type, Idempotency-Key"
# What the page may read from an answer besides the simple headers: how long to wait after a 429, the request id
# to quote when asking for help, and a receipt's file name.
EXPOSED_HEADERS = "Retry-After, X-Request-Id, Content-Disposition"
PREFLIGHT_MAX_AGE_S = "600"


def _in_scope(path: str, method: str) -> bool:
    if path.startswith(MP_API_PREFIX):
        return True
    return path == CONTRACT_PATH and method in ("GET", "HEAD", "OPTIONS")


def _preflight_method_allowed(path: str) -> bool:
    wanted = request.headers.get("Access-Control-Request-Method", "").upper()
    if path == CONTRACT_PATH:
        return wanted == "GET"
    return wanted in ("GET", "POST")


def install_cors(app: Flask, settings: Settings) -> None:
    origins = settings.cors_origins()
    if not origins:
        return

    def allowed_origin() -> str | None:
        origin = request.headers.get("Origin")
        if origin and origin in origins and _in_scope(request.path, request.method):
            return origin
        return None

    def answer_preflight():
        # Only a real route of the API: an unknown path stays a 404, unseen by any other hook.
        if request.method != "OPTIONS" or request.url_rule is None:
            return None
        origin = allowed_origin()
        if origin is None or not _preflight_method_allowed(request.path):
            return None
        response = Response(status=204)
        response.headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS if request.path != CONTRACT_PATH else "GET"
        response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
        response.headers["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE_S
        return response

    def add_headers(response):
        origin = allowed_origin()
        # The answer depends on the Origin header for every response in scope: caches must keep them apart.
        if _in_scope(request.path, request.method):
            response.vary.add("Origin")
        if origin is not None:
            response.headers["Access-Control-Allow-Origin"] = origin
            if request.method != "OPTIONS":
                response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
        return response

    # First of the before-request hooks: a preflight is answered before rate limits or authentication look at it
    # (it carries no token and no body, by the browser's rules).
    app.before_request_funcs.setdefault(None, []).insert(0, answer_preflight)
    app.after_request(add_headers)
