"""Settings for development, test and production, read from HPAY_* environment variables.

Every field can be set as HPAY_<FIELD>. Production refuses to start without its own secret key,
with the demo password, sandbox base URLs, a public base URL that is not https, or tokens that
live longer than MAX_TOKEN_TTL_S. Development without HPAY_SECRET_KEY generates a random key
once into var/secret_key (mode 0600) and reuses it, so every local process shares it.

HPAY_VAR_DIR (default `var/` in the repository; a relative path is taken from the repository root)
is where a development process keeps what it makes: the SQLite file, the generated secret key and
data keys, and what `make run` keeps (Redis and sandbox data, logs). It is read once, at import.
"""
from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from limits import parse_many

from config.dev_secret_key import dev_secret_key
from config.origins import browser_origin

ROOT = Path(__file__).resolve().parent.parent


def var_dir(environ: Mapping[str, str] | None = None) -> Path:
    """HPAY_VAR_DIR as an absolute path (relative: from the repository root), default ROOT/var."""
    raw = (os.environ if environ is None else environ).get("HPAY_VAR_DIR", "").strip()
    return (ROOT / Path(raw).expanduser()).resolve() if raw else ROOT / "var"


VAR_DIR = var_dir()
DEV_SECRET_KEY_FILE = VAR_DIR / "secret_key"
# Keys that were ever published in this repository: never accepted in production.
PUBLISHED_SECRET_KEYS = frozenset({"dev-insecure-secret-key-change-me",
                                   "bench-secret-key-not-for-production-0123456789"})
SECRET_KEY_MIN_LEN = 32
METRICS_TOKEN_MIN_LEN = 32
DEV_DEMO_PASSWORD = "demo-password"
_RATE_LIMIT_OPTIONS = frozenset({"RATE_LIMITS_ENABLED", "RATE_LIMIT_STORAGE_URL", "RATE_LIMIT_PREFIX",
                                 "RATE_LIMIT_SCALE"})
# A stolen staff or mini-program token is good for at most this long in production.
MAX_TOKEN_TTL_S = 12 * 3600
SANDBOX_HOST_MARKERS = ("127.0.0.1", "localhost", "[::1]", "/wxpay/", "/wxlogin/", "/alipay/gateway.do")
# The sandbox SMS stand-in's published demo account (GET /sandbox/merchants, `sms`): what development and
# test sign with when no SMS provider is configured. Production refuses this secret.
SANDBOX_SMS_APP_KEY = "sandbox-sms-demo"
SANDBOX_SMS_SECRET = "sandbox-sms-demo-secret-not-for-production"


class ConfigurationError(RuntimeError):
    pass


def _parse(value: str, kind: type) -> Any:
    if kind is bool:
        return value.strip().lower() in ("1", "true", "yes", "on")
    if kind is int:
        return int(value)
    if kind is float:
        return float(value)
    return value


@dataclass
class Settings:
    ENV: str = "development"
    # Signs session tokens. Empty: development reads or creates var/secret_key; test uses one random
    # key per process (the test session passes its own to every process it starts); production refuses.
    SECRET_KEY: str = ""
    DATABASE_URL: str = f"sqlite:///{VAR_DIR / 'hpay.db'}"
    REDIS_URL: str = "redis://127.0.0.1:6390/0"
    # Where the channels reach our notify endpoints.
    PUBLIC_BASE_URL: str = "http://127.0.0.1:8000"
    # The sandbox world; empty in production.
    SANDBOX_URL: str = "http://127.0.0.1:8100"
    DEMO_PASSWORD: str = DEV_DEMO_PASSWORD
    LOG_LEVEL: str = "INFO"
    LOG_JSON: bool = True
    TOKEN_TTL_S: int = 7200
    ORDER_TTL_S: int = 900
    TOPUP_MIN_FEN: int = 100
    # The booking admission gate (app/admission_gate.py): open slots' places mirrored in Redis, so a crowd's
    # sold-out answers need no database work. Off: every booking request tries the database.
    BOOKING_GATE_ENABLED: bool = True
    # After a Redis error the gate stays out of the way (bookings use the database alone) for this long.
    BOOKING_GATE_RETRY_S: float = 5.0
    # A process answers a request for a slot it just found sold out from memory this long, without asking Redis;
    # a place another process gives back (expiry, cancellation) is offered here at most this late. 0: always ask.
    BOOKING_GATE_SOLD_OUT_MEMO_S: float = 0.5
    # Bookings one mini-program user may make per Asia/Shanghai day (those cancelled or expired unpaid do not
    # count); more: 409 booking_limit_reached. 0: no limit.
    BOOKINGS_PER_USER_PER_DAY: int = 5
    TOPUP_MAX_FEN: int = 500_000
    # A patient may cancel a paid booking online until this long before the appointment.
    CANCEL_DEADLINE_S: int = 2 * 3600
    # Multiplies every retry and polling delay; tests compress a day into seconds.
    RETRY_TIME_SCALE: float = 1.0
    # How long a dispatched job owns its row before the dispatcher hands it out again (a worker
    # killed mid-job loses nothing: its rows come back after this).
    JOB_LEASE_S: int = 120
    # How often the dispatcher hands due work to the queues (workers.cron).
    DISPATCH_INTERVAL_S: int = 1
    HIS_TIMEOUT_S: float = 5.0
    CHANNEL_TIMEOUT_S: float = 10.0
    # After a channel app's WeChat API key or Alipay public key is replaced, notifications signed with the old
    # one are still accepted for this long (the channel may be sending some already signed).
    KEY_ROTATION_GRACE_S: int = 24 * 3600
    QUEUE_PREFIX: str = "hpay"
    # The Asia/Shanghai months (comma list of 1-12) in which checked statements may be settled.
    SETTLEMENT_MONTHS: str = "1,4,7,10"
    # The buyer a clinic's invoice for a cash settlement is made out to: the platform operator's company name and
    # its unified social credit code (tax number). Shown on every cash settlement.
    INVOICE_TITLE: str = "平台运营方（请在 HPAY_INVOICE_TITLE 设置公司全称）"
    INVOICE_TAX_NO: str = ""
    # When the daily reconciliation of the day before starts (HH:MM, Asia/Shanghai): after the channels
    # publish their bills (WeChat by 10:00).
    RECONCILE_AT: str = "10:30"
    SQL_ECHO: bool = False
    # Data keys that encrypt stored channel and HIS secrets (comma list of Fernet keys: the first encrypts,
    # all decrypt; app/db/encrypted.py). Unset outside production: a key generated into var/data-keys.
    DATA_KEYS: str = field(default="", repr=False)
    # How many reverse proxies in front of the web processes append to X-Forwarded-For; the client
    # address (rate limits, login lockout) is read that many hops back. 0: the socket's peer.
    PROXY_COUNT: int = 0
    # Rate limits (Flask-Limiter on Redis; app/ratelimit.py), in the `limits` notation
    # ("N/minute", "N per 10 minutes", ";" between several). Per-address ceilings stay far above a
    # hospital's shared Wi-Fi: at slot release a thousand patients sign in from one address in a minute.
    RATE_LIMITS_ENABLED: bool = True
    # Where the counters live; empty: HPAY_REDIS_URL.
    RATE_LIMIT_STORAGE_URL: str = ""
    RATE_LIMIT_PREFIX: str = "hpay-rl"
    # Multiplies every count below (the test suite raises them so tests sharing 127.0.0.1 never collide).
    RATE_LIMIT_SCALE: float = 1.0
    RATE_MP_LOGIN_PER_ADDRESS: str = "5000/minute"
    # Failed mini-program logins (a refused code) from one address: each costs a call to the channel.
    RATE_MP_LOGIN_FAILURES_PER_ADDRESS: str = "100/minute"
    RATE_ADMIN_LOGIN_PER_USERNAME_ADDRESS: str = "20/minute"
    RATE_ADMIN_LOGIN_PER_ADDRESS: str = "300/minute"
    RATE_CARD_BIND_PER_USER: str = "30/hour"
    RATE_CARD_BIND_PER_CARD: str = "20/hour"
    RATE_CARD_BIND_PER_ADDRESS: str = "5000/minute"
    # Binding requests that send an SMS code (a card_no without sms_code).
    RATE_SMS_PER_USER: str = "3/minute;10/hour"
    RATE_SMS_PER_CARD: str = "3/minute;10/hour"
    RATE_CARD_REFUND_PER_USER: str = "10/minute;60/hour"
    RATE_CARD_REFUND_PER_CARD: str = "10/minute;60/hour"
    RATE_CARD_REFUND_PER_ADDRESS: str = "5000/minute"
    # "I paid but it does not show" (POST /api/mp/v1/orders/{order_no}/inquiry): each one asks the channel.
    RATE_INQUIRY_PER_USER: str = "10/minute;60/hour"
    RATE_INQUIRY_PER_ORDER: str = "5/minute;30/hour"
    RATE_HIS_PER_KEY: str = "1200/minute"
    RATE_HIS_PER_ADDRESS: str = "6000/minute"
    # The SMS provider that sends card-binding codes (HTTP API of app/channels/sms.py). Left empty outside
    # production, the sandbox's stand-in at HPAY_SANDBOX_URL + "/sms" and its demo keys are used.
    SMS_BASE_URL: str = ""
    SMS_APP_KEY: str = ""
    SMS_SECRET: str = ""
    SMS_TEMPLATE_CODE: str = "SMS_CARD_BIND"
    SMS_SIGN_NAME: str = "诊所支付"
    SMS_TIMEOUT_S: float = 5.0
    # A binding code: how long it is valid and how many wrong tries it survives.
    SMS_CODE_TTL_S: int = 300
    SMS_CODE_MAX_TRIES: int = 5
    # Texts per phone (checked before calling the provider) and code requests per mini-program user, per
    # Asia/Shanghai day; 0 turns a limit off.
    SMS_PHONE_INTERVAL_S: int = 60
    SMS_PHONE_DAILY_MAX: int = 10
    SMS_USER_DAILY_MAX: int = 20
    # Who may read /metrics (app/monitoring.py): with a token, any client that sends it as `Authorization: Bearer
    # <token>`; without one, only loopback clients (the address as the app sees it, HPAY_PROXY_COUNT hops back),
    # and only while METRICS_LOOPBACK_ONLY is on. Production sets one of the two on purpose.
    METRICS_TOKEN: str = field(default="", repr=False)
    METRICS_LOOPBACK_ONLY: bool = True
    # /readyz fails when the dispatcher's last run is older than this (seconds).
    DISPATCHER_STALE_S: int = 60
    # The most rows one transaction export (GET /api/admin/v1/transactions/export) may hold; a wider filter is
    # refused (422 export_too_large) before anything is sent.
    TRANSACTION_EXPORT_MAX_ROWS: int = 100_000
    # Web origins (comma list of exact `scheme://host[:port]`) whose pages may call the mini-program API from a
    # browser (app/cors.py), such as the sandbox's H5 pages. Empty: outside production the origin of
    # HPAY_SANDBOX_URL; in production none.
    CORS_ORIGINS: str = ""
    # Staff's live events (GET /api/admin/v1/events/stream, Server-Sent Events): a comment line this often keeps
    # proxies from closing an idle stream; a stream ends after LIVE_STREAM_MAX_S (the console reconnects with
    # Last-Event-ID), and a web process serves at most LIVE_STREAMS_PER_PROCESS at once (each holds a gthread
    # thread): keep it at most half of HPAY_WEB_THREADS so streams never take the threads other requests need.
    LIVE_HEARTBEAT_S: int = 15
    LIVE_STREAM_MAX_S: int = 300
    LIVE_STREAMS_PER_PROCESS: int = 4
    # How often clinics whose HIS cannot announce bills (bill_push_mode `poll`) have their subscribed patients'
    # cards read for new bills (workers.cron).
    BILL_POLL_INTERVAL_S: int = 60
    # A staff refund of more than this (fen) waits for a finance user other than the requester to approve it.
    REFUND_APPROVAL_FEN: int = 50_000
    # Order attachments (a panoramic X-ray at redemption): the largest file accepted, and where the files live.
    # Empty ATTACHMENTS_S3_BUCKET: under HPAY_VAR_DIR/attachments (ATTACHMENTS_DIR overrides the folder);
    # set: in that bucket of any S3-compatible store (endpoint empty: AWS itself), under ATTACHMENTS_S3_PREFIX.
    ATTACHMENT_MAX_BYTES: int = 10 * 1024 * 1024
    ATTACHMENTS_DIR: str = ""
    ATTACHMENTS_S3_ENDPOINT: str = ""
    ATTACHMENTS_S3_BUCKET: str = ""
    ATTACHMENTS_S3_PREFIX: str = "attachments/"
    ATTACHMENTS_S3_REGION: str = "us-east-1"
    ATTACHMENTS_S3_ACCESS_KEY: str = field(default="", repr=False)
    ATTACHMENTS_S3_SECRET_KEY: str = field(default="", repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = environ.get(f"HPAY_{f.name}")
            if raw is not None:
                kind = type(f.default)
                try:
                    values[f.name] = _parse(raw, kind)
                except ValueError as exc:
                    raise ConfigurationError(f"HPAY_{f.name}={raw!r} is not a valid {kind.__name__}") from exc
        values.update(overrides)
        settings = cls(**values)
        settings.validate()
        return settings

    @property
    def is_sqlite(self) -> bool:
        return self.DATABASE_URL.startswith("sqlite")

    def __post_init__(self) -> None:
        if not self.SECRET_KEY:
            self.SECRET_KEY = self.default_secret_key()

    def default_secret_key(self) -> str:
        """The key used when HPAY_SECRET_KEY is not set (production sets it and refuses an empty one)."""
        return ""

    def sms_provider(self) -> tuple[str, str, str]:
        """(base URL, app key, secret) of the SMS provider: the configured one, else the sandbox's stand-in
        when there is a sandbox, else empty strings (sending then fails closed)."""
        if self.SMS_BASE_URL:
            return self.SMS_BASE_URL, self.SMS_APP_KEY, self.SMS_SECRET
        if self.SANDBOX_URL:
            return f"{self.SANDBOX_URL.rstrip('/')}/sms", SANDBOX_SMS_APP_KEY, SANDBOX_SMS_SECRET
        return "", "", ""

    def cors_origins(self) -> frozenset[str]:
        """The origins allowed to call the mini-program API from a browser."""
        if self.CORS_ORIGINS.strip():
            return frozenset(browser_origin(value) for value in self.CORS_ORIGINS.split(",") if value.strip())
        if self.ENV != "production" and self.SANDBOX_URL:
            return frozenset({browser_origin(self.SANDBOX_URL, path_allowed=True)})
        return frozenset()

    def validate(self) -> None:
        try:
            self.cors_origins()
        except ValueError as exc:
            raise ConfigurationError(f"HPAY_CORS_ORIGINS: {exc}") from None
        if self.TOPUP_MIN_FEN <= 0 or self.TOPUP_MAX_FEN < self.TOPUP_MIN_FEN:
            raise ConfigurationError("HPAY_TOPUP_MIN_FEN must be positive and not above HPAY_TOPUP_MAX_FEN")
        if self.ORDER_TTL_S <= 0 or self.TOKEN_TTL_S <= 0:
            raise ConfigurationError("HPAY_ORDER_TTL_S and HPAY_TOKEN_TTL_S must be positive")
        if self.DISPATCH_INTERVAL_S <= 0 or self.CHANNEL_TIMEOUT_S <= 0 or self.HIS_TIMEOUT_S <= 0:
            raise ConfigurationError("HPAY_DISPATCH_INTERVAL_S, HPAY_CHANNEL_TIMEOUT_S and HPAY_HIS_TIMEOUT_S must be "
                                     "positive")
        if self.KEY_ROTATION_GRACE_S < 0:
            raise ConfigurationError("HPAY_KEY_ROTATION_GRACE_S must not be negative")
        if self.PROXY_COUNT < 0 or self.RATE_LIMIT_SCALE <= 0:
            raise ConfigurationError("HPAY_PROXY_COUNT must be 0 or more and HPAY_RATE_LIMIT_SCALE positive")
        for name, value in self.rate_limits().items():
            try:
                if not parse_many(value):
                    raise ValueError("empty")
            except ValueError:
                raise ConfigurationError(f"HPAY_{name}={value!r} is not a rate limit such as '20/minute' or "
                                         "'3/minute;10/hour'") from None
        if self.SMS_CODE_TTL_S <= 0 or not 1 <= self.SMS_CODE_MAX_TRIES <= 10:
            raise ConfigurationError("HPAY_SMS_CODE_TTL_S must be positive and HPAY_SMS_CODE_MAX_TRIES 1 to 10")
        if self.TRANSACTION_EXPORT_MAX_ROWS <= 0:
            raise ConfigurationError("HPAY_TRANSACTION_EXPORT_MAX_ROWS must be positive")
        if min(self.SMS_PHONE_INTERVAL_S, self.SMS_PHONE_DAILY_MAX, self.SMS_USER_DAILY_MAX) < 0:
            raise ConfigurationError("the HPAY_SMS_* limits must not be negative")
        if min(self.LIVE_HEARTBEAT_S, self.LIVE_STREAM_MAX_S, self.LIVE_STREAMS_PER_PROCESS,
               self.BILL_POLL_INTERVAL_S) <= 0:
            raise ConfigurationError("HPAY_LIVE_HEARTBEAT_S, HPAY_LIVE_STREAM_MAX_S, HPAY_LIVE_STREAMS_PER_PROCESS and "
                                     "HPAY_BILL_POLL_INTERVAL_S must be positive")
        if self.DISPATCHER_STALE_S <= 0:
            raise ConfigurationError("HPAY_DISPATCHER_STALE_S must be positive")
        if self.REFUND_APPROVAL_FEN < 0 or self.ATTACHMENT_MAX_BYTES <= 0:
            raise ConfigurationError("HPAY_REFUND_APPROVAL_FEN must not be negative and HPAY_ATTACHMENT_MAX_BYTES "
                                     "must be positive")

    def rate_limits(self) -> dict[str, str]:
        """The RATE_* limit strings by field name."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name.startswith("RATE_") and f.name not in _RATE_LIMIT_OPTIONS}


_PROCESS_TEST_KEY = secrets.token_urlsafe(48)


@dataclass
class DevelopmentSettings(Settings):
    ENV: str = "development"
    LOG_JSON: bool = True

    def default_secret_key(self) -> str:
        return dev_secret_key(DEV_SECRET_KEY_FILE)


@dataclass
class TestSettings(Settings):
    __test__ = False  # not a pytest test class
    ENV: str = "test"
    RETRY_TIME_SCALE: float = 0.001
    LOG_LEVEL: str = "WARNING"
    # Tests settle in any month; the window tests configure their own months.
    SETTLEMENT_MONTHS: str = "1,2,3,4,5,6,7,8,9,10,11,12"
    # Every test shares 127.0.0.1 and the session's Redis; the rate-limit tests build apps of their own.
    RATE_LIMIT_SCALE: float = 1000.0
    # Many tests book for one user within seconds; the tests of the daily cap set their own.
    BOOKINGS_PER_USER_PER_DAY: int = 1000

    def default_secret_key(self) -> str:
        return _PROCESS_TEST_KEY
    # Many tests bind the sandbox's few demo cards (one phone each) within seconds; the throttling tests run
    # an app of their own with the production limits.
    SMS_PHONE_INTERVAL_S: int = 1
    SMS_PHONE_DAILY_MAX: int = 1000
    SMS_USER_DAILY_MAX: int = 1000


@dataclass
class ProductionSettings(Settings):
    ENV: str = "production"
    SANDBOX_URL: str = ""
    DEMO_PASSWORD: str = ""
    # Off unless set: a deployment says how its Prometheus reads /metrics (a token, or from this host only).
    METRICS_LOOPBACK_ONLY: bool = False

    def validate(self) -> None:
        super().validate()
        problems = []
        if len(self.SECRET_KEY) < SECRET_KEY_MIN_LEN or self.SECRET_KEY in PUBLISHED_SECRET_KEYS:
            problems.append(f"HPAY_SECRET_KEY must be set to a random value of at least {SECRET_KEY_MIN_LEN} "
                            "characters (e.g. python -c 'import secrets; print(secrets.token_urlsafe(48))')")
        if self.DEMO_PASSWORD:
            problems.append("HPAY_DEMO_PASSWORD must not be set in production (no demo users)")
        if self.SANDBOX_URL:
            problems.append("HPAY_SANDBOX_URL must be empty in production")
        if self.is_sqlite:
            problems.append("HPAY_DATABASE_URL must point at PostgreSQL in production")
        if any(marker in self.PUBLIC_BASE_URL for marker in ("127.0.0.1", "localhost")):
            problems.append("HPAY_PUBLIC_BASE_URL must be the public address the channels can reach")
        # Stored secrets are encrypted under HPAY_DATA_KEYS; production never generates a key file.
        if not self.DATA_KEYS.strip():
            problems.append("HPAY_DATA_KEYS must be set (comma list of Fernet keys; the first one encrypts)")
        if not self.PUBLIC_BASE_URL.lower().startswith("https://"):
            problems.append("HPAY_PUBLIC_BASE_URL must be an https:// address")
        if self.TOKEN_TTL_S > MAX_TOKEN_TTL_S:
            problems.append(f"HPAY_TOKEN_TTL_S must be at most {MAX_TOKEN_TTL_S} seconds (12 hours) in production")
        if looks_like_sandbox(self.SMS_BASE_URL):
            problems.append("HPAY_SMS_BASE_URL must be the SMS provider's address, not a loopback or sandbox one")
        if any(not origin.startswith("https://") for origin in self.cors_origins()):
            problems.append("HPAY_CORS_ORIGINS must list https:// origins only in production")
        if self.SMS_SECRET and (self.SMS_SECRET == SANDBOX_SMS_SECRET or len(self.SMS_SECRET) < 16):
            problems.append("HPAY_SMS_SECRET must be the provider's secret (16 characters or more), not a demo key")
        if self.METRICS_TOKEN and len(self.METRICS_TOKEN) < METRICS_TOKEN_MIN_LEN:
            problems.append(f"HPAY_METRICS_TOKEN must be at least {METRICS_TOKEN_MIN_LEN} random characters")
        if not self.METRICS_TOKEN and not self.METRICS_LOOPBACK_ONLY:
            problems.append("say who reads /metrics: HPAY_METRICS_TOKEN (a bearer token for your Prometheus) or "
                            "HPAY_METRICS_LOOPBACK_ONLY=true (only clients on this host)")
        if problems:
            raise ConfigurationError("production settings refused: " + "; ".join(problems))


SETTINGS_BY_ENV = {"development": DevelopmentSettings, "test": TestSettings, "production": ProductionSettings}


def load_settings(env: str | None = None, **overrides: Any) -> Settings:
    env = env or os.environ.get("HPAY_ENV", "development")
    try:
        cls = SETTINGS_BY_ENV[env]
    except KeyError:
        raise ConfigurationError(f"HPAY_ENV must be one of {', '.join(SETTINGS_BY_ENV)}") from None
    return cls.from_env(**overrides)


def looks_like_sandbox(url: str | None) -> bool:
    """A merchant or HIS base URL that points at loopback or the sandbox's paths."""
    return bool(url) and any(marker in url for marker in SANDBOX_HOST_MARKERS)
