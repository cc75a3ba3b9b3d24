"""Rate limits: one table of {endpoint: limits}, applied by Flask-Limiter to the registered views.

Each limit is keyed by what is attacked: the username being guessed (with the address guessing it),
the card being probed or refunded, the mini-program user, the HIS key. A limit by client address
alone is only a ceiling that a hospital's shared Wi-Fi never reaches (at slot release a thousand
patients sign in from one address within a minute). The numbers are settings (`HPAY_RATE_*`,
config/settings.py), so a deployment or a test can change them.

A refused request is answered 429 with `Retry-After` (seconds) and our error body
`{"message", "error": "rate_limited"}`; every limited operation documents that answer in /openapi.json.

When Redis is down, each web process goes on counting in its own memory (Flask-Limiter's in-memory
fallback, the same limits) and tries Redis again with backoff. Sign-ins keep working, and nothing
becomes unlimited: an attacker gains at most a factor of the number of web processes, the staff
lockout (per username and address, in the database) does not depend on Redis at all, mini-program
login codes are one-time codes the channel issues, and refunds stay bounded by the money rules.
Failing closed instead would turn a Redis outage into nobody being able to sign in.
"""
from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask, Response, g, request
from flask_limiter import Limiter, RateLimitExceeded
from flask_smorest import Api
from flask_smorest.spec.plugins import FlaskPlugin
from limits import parse_many

from app import metrics
from app.errors import error_response
from app.extensions import runtime
from app.services.people.mp_auth import signed_principal
from app.services.people.staff_auth import normalized_username
from config.settings import Settings

log = logging.getLogger(__name__)

RATE_LIMITED = "rate_limited"
STORAGE_TIMEOUT_S = 0.5
_HIS_KEY_ID_MAX_LEN = 64
_CARD_NO_MAX_LEN = 64


# --- what a limit counts ---------------------------------------------------------------------------

def client_address() -> str:
    """The client's address: the socket peer, or (behind HPAY_PROXY_COUNT proxies) what they report."""
    return request.remote_addr or "unknown"


def _bearer() -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _mp_principal():
    """The mini-program user a well-signed token names (no database read; once per request)."""
    if "ratelimit_mp_principal" not in g:
        token = _bearer()
        g.ratelimit_mp_principal = signed_principal(runtime(), token) if token else None
    return g.ratelimit_mp_principal


def _mp_user() -> int | None:
    principal = _mp_principal()
    return principal.user_id if principal else None


def _clinic_of_token() -> str:
    principal = _mp_principal()
    return str(principal.clinic_id) if principal else "-"


def _json_field(name: str) -> str | None:
    body = request.get_json(silent=True)
    value = body.get(name) if isinstance(body, dict) else None
    return value[:_CARD_NO_MAX_LEN] if isinstance(value, str) and value else None


def _username() -> str:
    body = request.get_json(silent=True)
    name = body.get("username") if isinstance(body, dict) else None
    return normalized_username(name)[:100] if isinstance(name, str) else ""


def by_address() -> str:
    return f"addr:{client_address()}"


def by_username_and_address() -> str:
    return f"login:{_username()}@{client_address()}"


def by_mp_user() -> str:
    return f"mpuser:{_mp_user()}"


def by_bound_card() -> str:
    """The card named in the body, within the user's clinic's HIS (card numbers are per hospital)."""
    return f"card:{_clinic_of_token()}:{_json_field('card_no')}"


def by_path_card() -> str:
    card_no = str((request.view_args or {}).get("card_no", ""))[:_CARD_NO_MAX_LEN]
    return f"card:{_clinic_of_token()}:{card_no}"


def by_path_order() -> str:
    """The order named in the path (order numbers are unique across clinics)."""
    return f"order:{str((request.view_args or {}).get('order_no', ''))[:32]}"


def by_his_key() -> str:
    return f"his:{request.headers.get('X-HIS-Key-Id', '')[:_HIS_KEY_ID_MAX_LEN]}"


def not_signed_in() -> bool:
    """Exempt from the per-user and per-card limits: the view refuses the request (401) anyway."""
    return _mp_user() is None


def no_card_in_body() -> bool:
    return not_signed_in() or _json_field("card_no") is None


def sends_no_sms() -> bool:
    """A binding request sends an SMS code when it names a card and brings no code."""
    body = request.get_json(silent=True)
    return no_card_in_body() or not isinstance(body, dict) or "sms_code" in body


def no_his_key() -> bool:
    return not request.headers.get("X-HIS-Key-Id")


def refused_as_unauthorized(response: Response) -> bool:
    return response.status_code == 401


def not_refused_as_unauthorized(response: Response) -> bool:
    return response.status_code != 401


def not_404(response: Response) -> bool:
    return response.status_code != 404


@dataclass(frozen=True)
class Rule:
    """One limit on an endpoint: the Settings field holding it, what it counts, and when it applies.

    `deduct_when` makes a limit count only the answers it names (checked before the request, counted
    after it), e.g. failed logins only, or HIS calls whose signature passed.
    """

    setting: str
    key: Callable[[], str]
    exempt_when: Callable[[], bool] | None = None
    deduct_when: Callable[[Response], bool] | None = None


# Endpoint names as registered (blueprint.view); "blueprint.*" covers every view of a blueprint.
LIMITS: dict[str, tuple[Rule, ...]] = {
    "mp_auth.login": (
        Rule("RATE_MP_LOGIN_PER_ADDRESS", by_address),
        Rule("RATE_MP_LOGIN_FAILURES_PER_ADDRESS", by_address, deduct_when=refused_as_unauthorized),
    ),
    "admin_auth.login": (
        Rule("RATE_ADMIN_LOGIN_PER_USERNAME_ADDRESS", by_username_and_address),
        Rule("RATE_ADMIN_LOGIN_PER_ADDRESS", by_address),
    ),
    "mp_cards.add_card": (
        Rule("RATE_CARD_BIND_PER_USER", by_mp_user, exempt_when=not_signed_in),
        Rule("RATE_CARD_BIND_PER_CARD", by_bound_card, exempt_when=no_card_in_body),
        Rule("RATE_CARD_BIND_PER_ADDRESS", by_address),
        Rule("RATE_SMS_PER_USER", by_mp_user, exempt_when=sends_no_sms),
        Rule("RATE_SMS_PER_CARD", by_bound_card, exempt_when=sends_no_sms),
    ),
    "mp_refunds.refund_card": (
        Rule("RATE_CARD_REFUND_PER_USER", by_mp_user, exempt_when=not_signed_in),
        # Not counting 404s: asking about someone else's card must not use up its holder's refunds.
        Rule("RATE_CARD_REFUND_PER_CARD", by_path_card, exempt_when=not_signed_in, deduct_when=not_404),
        Rule("RATE_CARD_REFUND_PER_ADDRESS", by_address),
    ),
    # Each inquiry asks the channel: per user, and per order so that one order is not asked about in a loop.
    "mp_orders.inquire": (
        Rule("RATE_INQUIRY_PER_USER", by_mp_user, exempt_when=not_signed_in),
        Rule("RATE_INQUIRY_PER_ORDER", by_path_order, exempt_when=not_signed_in, deduct_when=not_404),
    ),
    # Key ids are not secret: only calls whose signature passed count against a key, so that nobody
    # can use up a hospital's budget by sending garbage under its key id.
    "his_api.*": (
        Rule("RATE_HIS_PER_KEY", by_his_key, exempt_when=no_his_key, deduct_when=not_refused_as_unauthorized),
        Rule("RATE_HIS_PER_ADDRESS", by_address),
    ),
}


# --- wiring ----------------------------------------------------------------------------------------

def scaled(limit: str, scale: float) -> str:
    """The limit string with every count multiplied by `scale` (at least 1)."""
    if scale == 1:
        return limit
    return ";".join(f"{max(1, int(item.amount * scale))} per {item.multiples} {item.GRANULARITY.name}"
                    for item in parse_many(limit))


def limited_endpoints(app: Flask) -> dict[str, tuple[Rule, ...]]:
    """Every registered endpoint the table limits, with its rules."""
    found: dict[str, tuple[Rule, ...]] = {}
    for endpoint in app.view_functions:
        blueprint = endpoint.rsplit(".", 1)[0] if "." in endpoint else ""
        rules = LIMITS.get(endpoint, ()) + LIMITS.get(f"{blueprint}.*", ())
        if rules:
            found[endpoint] = rules
    return found


def install(app: Flask, api: Api, settings: Settings) -> Limiter | None:
    """Wrap every limited view in its limits and document the 429; call after the blueprints are registered."""
    missing = sorted(name for name in LIMITS if not name.endswith(".*") and name not in app.view_functions)
    if missing:
        raise RuntimeError(f"rate limits name endpoints that do not exist: {missing}")
    endpoints = limited_endpoints(app)
    _document_429(app, api, endpoints)
    app.register_error_handler(RateLimitExceeded, _rate_limited_response)
    if not settings.RATE_LIMITS_ENABLED:
        return None
    limiter = Limiter(
        client_address,
        app=app,
        storage_uri=settings.RATE_LIMIT_STORAGE_URL or settings.REDIS_URL,
        storage_options={"socket_connect_timeout": STORAGE_TIMEOUT_S, "socket_timeout": STORAGE_TIMEOUT_S},
        strategy="sliding-window-counter",
        key_prefix=settings.RATE_LIMIT_PREFIX,
        in_memory_fallback_enabled=True,
        swallow_errors=True,
        on_breach=_remember_breach,
    )
    # Most endpoints have no limit: let their requests (a booking crowd's among them) skip the limiter's lookups.
    limiter.request_filter(lambda: request.endpoint not in endpoints)
    for endpoint, rules in endpoints.items():
        view = app.view_functions[endpoint]
        for rule in rules:
            limit = scaled(getattr(settings, rule.setting), settings.RATE_LIMIT_SCALE)
            # shared + a scope per setting: each rule has its own counters, and a limit on a whole
            # blueprint (the HIS key's) is one budget across its endpoints.
            view = limiter.shared_limit(limit, rule.setting, key_func=rule.key, exempt_when=rule.exempt_when,
                                        deduct_when=rule.deduct_when)(view)
        app.view_functions[endpoint] = view
    app.extensions["hpay_limiter"] = limiter
    return limiter


def _remember_breach(request_limit) -> None:
    g.ratelimit_breach = request_limit


def _rate_limited_response(exc: RateLimitExceeded):
    retry_after = _retry_after_s(exc)
    scope = exc.limit.scope if isinstance(exc.limit.scope, str) else "other"
    metrics.RATE_LIMITED.labels(scope.removeprefix("RATE_").lower()).inc()
    log.warning("rate limited %s %s (%s)", request.method, request.path, exc.description)
    return error_response(429, f"too many requests; try again in {retry_after} seconds", RATE_LIMITED,
                          headers=[("Retry-After", str(retry_after))])


def _retry_after_s(exc: RateLimitExceeded) -> int:
    breach = g.get("ratelimit_breach")
    try:
        if breach is not None:
            return max(1, math.ceil(breach.reset_at - time.time()))
    except Exception:  # noqa: BLE001  (the storage went away between counting and answering)
        log.warning("could not read the rate-limit window; answering with the whole window")
    return max(1, int(exc.limit.limit.get_expiry()))


def _document_429(app: Flask, api: Api, endpoints: dict[str, tuple[Rule, ...]]) -> None:
    paths = api.spec._paths  # apispec keeps the registered operations here until the document is built
    for rule in app.url_map.iter_rules():
        if rule.endpoint not in endpoints:
            continue
        operations = paths.get(FlaskPlugin.flaskpath2openapi(rule.rule), {})
        for method in rule.methods or ():
            operation = operations.get(method.lower())
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            existing = responses.get("429", {}).get("description")
            described = "`rate_limited`: too many requests; wait `Retry-After` seconds"
            responses["429"] = {
                "description": f"{existing}; {described}" if existing else described,
                "headers": {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}},
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ApiError"}}},
            }

