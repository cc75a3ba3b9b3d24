"""Settings come from HPAY_* variables; production refuses unsafe defaults."""
from __future__ import annotations

import os
import stat

import pytest

from config.dev_secret_key import dev_secret_key
from config.settings import (
    MAX_TOKEN_TTL_S,
    PUBLISHED_SECRET_KEYS,
    ConfigurationError,
    DevelopmentSettings,
    ProductionSettings,
    TestSettings,
    load_settings,
)

SAFE_PRODUCTION = {
    "HPAY_SECRET_KEY": "x" * 48,
    "HPAY_DATABASE_URL": "postgresql+psycopg://pay@db/pay",
    "HPAY_PUBLIC_BASE_URL": "https://pay.example-hospital.cn",
    "HPAY_DATA_KEYS": "bm90LWEtcmVhbC1rZXktanVzdC0zMi1ieXRlcyEhISE=",
    "HPAY_METRICS_LOOPBACK_ONLY": "true",
}


def test_environment_variables_override_defaults_with_types():
    settings = DevelopmentSettings.from_env({"HPAY_ORDER_TTL_S": "60", "HPAY_LOG_JSON": "false",
                                             "HPAY_RETRY_TIME_SCALE": "0.5", "HPAY_SECRET_KEY": "k" * 40})
    assert settings.ORDER_TTL_S == 60 and settings.LOG_JSON is False and settings.RETRY_TIME_SCALE == 0.5


def test_a_malformed_number_is_a_clear_error():
    with pytest.raises(ConfigurationError, match="HPAY_ORDER_TTL_S"):
        DevelopmentSettings.from_env({"HPAY_ORDER_TTL_S": "soon", "HPAY_SECRET_KEY": "k" * 40})


def test_a_malformed_rate_limit_is_a_clear_error():
    with pytest.raises(ConfigurationError, match="HPAY_RATE_HIS_PER_KEY"):
        DevelopmentSettings.from_env({"HPAY_RATE_HIS_PER_KEY": "plenty", "HPAY_SECRET_KEY": "k" * 40})


def test_production_starts_with_safe_settings():
    settings = ProductionSettings.from_env(SAFE_PRODUCTION)
    assert settings.SANDBOX_URL == "" and settings.DEMO_PASSWORD == ""


@pytest.mark.parametrize("override, complaint", [
    *[({"HPAY_SECRET_KEY": key}, "HPAY_SECRET_KEY") for key in sorted(PUBLISHED_SECRET_KEYS)],
    ({"HPAY_SECRET_KEY": "short-key"}, "HPAY_SECRET_KEY"),
    ({"HPAY_DEMO_PASSWORD": "demo-password"}, "HPAY_DEMO_PASSWORD"),
    ({"HPAY_SANDBOX_URL": "http://127.0.0.1:8100"}, "HPAY_SANDBOX_URL"),
    ({"HPAY_DATABASE_URL": "sqlite:///var/hpay.db"}, "PostgreSQL"),
    ({"HPAY_PUBLIC_BASE_URL": "http://127.0.0.1:8000"}, "HPAY_PUBLIC_BASE_URL"),
    ({"HPAY_DATA_KEYS": ""}, "HPAY_DATA_KEYS"),
    ({"HPAY_PUBLIC_BASE_URL": "http://pay.example-hospital.cn"}, "https"),
    ({"HPAY_TOKEN_TTL_S": str(MAX_TOKEN_TTL_S + 1)}, "HPAY_TOKEN_TTL_S"),
])
def test_production_refuses_unsafe_settings(override, complaint):
    with pytest.raises(ConfigurationError, match=complaint):
        ProductionSettings.from_env({**SAFE_PRODUCTION, **override})


def test_production_never_makes_up_a_secret_key():
    without_key = {k: v for k, v in SAFE_PRODUCTION.items() if k != "HPAY_SECRET_KEY"}
    with pytest.raises(ConfigurationError, match="HPAY_SECRET_KEY"):
        ProductionSettings.from_env(without_key)


def test_production_accepts_a_twelve_hour_token():
    settings = ProductionSettings.from_env({**SAFE_PRODUCTION, "HPAY_TOKEN_TTL_S": str(MAX_TOKEN_TTL_S)})
    assert settings.TOKEN_TTL_S == 12 * 3600


def test_unknown_environment_name_is_refused(monkeypatch):
    monkeypatch.setenv("HPAY_ENV", "staging")
    with pytest.raises(ConfigurationError, match="HPAY_ENV"):
        load_settings()


def test_development_generates_a_private_key_once_and_reuses_it(tmp_path):
    path = tmp_path / "var" / "secret_key"

    first = dev_secret_key(path)
    again = dev_secret_key(path)

    assert first == again and len(first) >= 48 and first not in PUBLISHED_SECRET_KEYS
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert dev_secret_key(tmp_path / "elsewhere" / "secret_key") != first
    assert [p.name for p in path.parent.iterdir()] == ["secret_key"]  # no temporary file left behind


def test_development_without_a_key_uses_the_generated_file():
    from config.settings import DEV_SECRET_KEY_FILE

    settings = DevelopmentSettings.from_env({})
    assert settings.SECRET_KEY == DEV_SECRET_KEY_FILE.read_text().strip()
    assert stat.S_IMODE(os.stat(DEV_SECRET_KEY_FILE).st_mode) == 0o600


def test_test_settings_without_a_key_get_a_random_one_shared_within_the_process():
    assert TestSettings().SECRET_KEY == TestSettings().SECRET_KEY
    assert len(TestSettings().SECRET_KEY) >= 48 and TestSettings().SECRET_KEY not in PUBLISHED_SECRET_KEYS
    assert TestSettings(SECRET_KEY="given-" + "k" * 40).SECRET_KEY == "given-" + "k" * 40
