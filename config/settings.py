"""Settings for development, test and production, read from HPAY_* environment variables.

Every field can be set as HPAY_<FIELD>. Production refuses to start with the
development secret key, the demo password or sandbox base URLs.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

ROOT = Path(__file__).resolve().parent.parent
DEV_SECRET_KEY = "dev-insecure-secret-key-change-me"
DEV_DEMO_PASSWORD = "demo-password"
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
    SECRET_KEY: str = DEV_SECRET_KEY
    DATABASE_URL: str = f"sqlite:///{ROOT / 'var' / 'hpay.db'}"
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
    TOPUP_MAX_FEN: int = 500_000
    # A patient may cancel a paid booking online until this long before the appointment.
    CANCEL_DEADLINE_S: int = 2 * 3600
    # Multiplies every retry and polling delay; tests compress a day into seconds.
    RETRY_TIME_SCALE: float = 1.0
    # How long a dispatched job owns its row before the dispatcher hands it out again (a worker
    # killed mid-job loses nothing: its rows come back after this).
    JOB_LEASE_S: int = 120
    HIS_TIMEOUT_S: float = 5.0
    CHANNEL_TIMEOUT_S: float = 10.0
    QUEUE_PREFIX: str = "hpay"
    # The Asia/Shanghai months (comma list of 1-12) in which checked statements may be settled.
    SETTLEMENT_MONTHS: str = "1,4,7,10"
    # When the daily reconciliation of the day before starts (HH:MM, Asia/Shanghai): after the channels
    # publish their bills (WeChat by 10:00).
    RECONCILE_AT: str = "10:30"
    SQL_ECHO: bool = False
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

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> "Settings":
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

    def sms_provider(self) -> tuple[str, str, str]:
        """(base URL, app key, secret) of the SMS provider: the configured one, else the sandbox's stand-in
        when there is a sandbox, else empty strings (sending then fails closed)."""
        if self.SMS_BASE_URL:
            return self.SMS_BASE_URL, self.SMS_APP_KEY, self.SMS_SECRET
        if self.SANDBOX_URL:
            return f"{self.SANDBOX_URL.rstrip('/')}/sms", SANDBOX_SMS_APP_KEY, SANDBOX_SMS_SECRET
        return "", "", ""

    def validate(self) -> None:
        if self.TOPUP_MIN_FEN <= 0 or self.TOPUP_MAX_FEN < self.TOPUP_MIN_FEN:
            raise ConfigurationError("HPAY_TOPUP_MIN_FEN must be positive and not above HPAY_TOPUP_MAX_FEN")
        if self.ORDER_TTL_S <= 0 or self.TOKEN_TTL_S <= 0:
            raise ConfigurationError("HPAY_ORDER_TTL_S and HPAY_TOKEN_TTL_S must be positive")
        if self.SMS_CODE_TTL_S <= 0 or not 1 <= self.SMS_CODE_MAX_TRIES <= 10:
            raise ConfigurationError("HPAY_SMS_CODE_TTL_S must be positive and HPAY_SMS_CODE_MAX_TRIES 1 to 10")
        if min(self.SMS_PHONE_INTERVAL_S, self.SMS_PHONE_DAILY_MAX, self.SMS_USER_DAILY_MAX) < 0:
            raise ConfigurationError("the HPAY_SMS_* limits must not be negative")


@dataclass
class DevelopmentSettings(Settings):
    ENV: str = "development"
    LOG_JSON: bool = True


@dataclass
class TestSettings(Settings):
    __test__ = False  # not a pytest test class
    ENV: str = "test"
    RETRY_TIME_SCALE: float = 0.001
    LOG_LEVEL: str = "WARNING"
    # Tests settle in any month; the window tests configure their own months.
    SETTLEMENT_MONTHS: str = "1,2,3,4,5,6,7,8,9,10,11,12"
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

    def validate(self) -> None:
        super().validate()
        problems = []
        if not self.SECRET_KEY or self.SECRET_KEY == DEV_SECRET_KEY or len(self.SECRET_KEY) < 32:
            problems.append("HPAY_SECRET_KEY must be set to a random value of at least 32 characters")
        if self.DEMO_PASSWORD:
            problems.append("HPAY_DEMO_PASSWORD must not be set in production (no demo users)")
        if self.SANDBOX_URL:
            problems.append("HPAY_SANDBOX_URL must be empty in production")
        if self.is_sqlite:
            problems.append("HPAY_DATABASE_URL must point at PostgreSQL in production")
        if any(marker in self.PUBLIC_BASE_URL for marker in ("127.0.0.1", "localhost")):
            problems.append("HPAY_PUBLIC_BASE_URL must be the public address the channels can reach")
        if looks_like_sandbox(self.SMS_BASE_URL):
            problems.append("HPAY_SMS_BASE_URL must be the SMS provider's address, not a loopback or sandbox one")
        if self.SMS_SECRET and (self.SMS_SECRET == SANDBOX_SMS_SECRET or len(self.SMS_SECRET) < 16):
            problems.append("HPAY_SMS_SECRET must be the provider's secret (16 characters or more), not a demo key")
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
