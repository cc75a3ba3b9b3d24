"""Settings come from HPAY_* variables; production refuses unsafe defaults."""
from __future__ import annotations

import pytest

from config.settings import (DEV_SECRET_KEY, ConfigurationError, DevelopmentSettings, ProductionSettings,
                             load_settings)

SAFE_PRODUCTION = {
    "HPAY_SECRET_KEY": "x" * 48,
    "HPAY_DATABASE_URL": "postgresql+psycopg://pay@db/pay",
    "HPAY_PUBLIC_BASE_URL": "https://pay.example-hospital.cn",
    "HPAY_DATA_KEYS": "bm90LWEtcmVhbC1rZXktanVzdC0zMi1ieXRlcyEhISE=",
}


def test_environment_variables_override_defaults_with_types():
    settings = DevelopmentSettings.from_env({"HPAY_ORDER_TTL_S": "60", "HPAY_LOG_JSON": "false",
                                             "HPAY_RETRY_TIME_SCALE": "0.5"})
    assert settings.ORDER_TTL_S == 60 and settings.LOG_JSON is False and settings.RETRY_TIME_SCALE == 0.5


def test_a_malformed_number_is_a_clear_error():
    with pytest.raises(ConfigurationError, match="HPAY_ORDER_TTL_S"):
        DevelopmentSettings.from_env({"HPAY_ORDER_TTL_S": "soon"})


def test_production_starts_with_safe_settings():
    settings = ProductionSettings.from_env(SAFE_PRODUCTION)
    assert settings.SANDBOX_URL == "" and settings.DEMO_PASSWORD == ""


@pytest.mark.parametrize("override, complaint", [
    ({"HPAY_SECRET_KEY": DEV_SECRET_KEY}, "HPAY_SECRET_KEY"),
    ({"HPAY_DEMO_PASSWORD": "demo-password"}, "HPAY_DEMO_PASSWORD"),
    ({"HPAY_SANDBOX_URL": "http://127.0.0.1:8100"}, "HPAY_SANDBOX_URL"),
    ({"HPAY_DATABASE_URL": "sqlite:///var/hpay.db"}, "PostgreSQL"),
    ({"HPAY_PUBLIC_BASE_URL": "http://127.0.0.1:8000"}, "HPAY_PUBLIC_BASE_URL"),
    ({"HPAY_DATA_KEYS": ""}, "HPAY_DATA_KEYS"),
])
def test_production_refuses_unsafe_settings(override, complaint):
    with pytest.raises(ConfigurationError, match=complaint):
        ProductionSettings.from_env({**SAFE_PRODUCTION, **override})


def test_unknown_environment_name_is_refused(monkeypatch):
    monkeypatch.setenv("HPAY_ENV", "staging")
    with pytest.raises(ConfigurationError, match="HPAY_ENV"):
        load_settings()
