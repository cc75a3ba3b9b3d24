"""Attacks on the deployment: a signing key anyone can read in the repository, a platform reachable
over plain HTTP, tokens that live for days.

Before this the development key was a constant in config/settings.py, so anyone could sign a staff
token for any user of a platform left on it.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import requests
from sqlalchemy import select

from app.db.models import StaffUser
from app.services.people.tokens import issue_token
from config.settings import PUBLISHED_SECRET_KEYS, ROOT
from tests.api.admin_helpers import ADMIN, make_user, sign_in

PRODUCTION_ENV = {
    "HPAY_ENV": "production",
    "HPAY_SECRET_KEY": "p" * 48,
    "HPAY_DATABASE_URL": "postgresql+psycopg://pay@127.0.0.1:1/pay",
    "HPAY_PUBLIC_BASE_URL": "https://pay.example-hospital.cn",
    "HPAY_DATA_KEYS": "bm90LWEtcmVhbC1rZXktanVzdC0zMi1ieXRlcyEhISE=",
    "HPAY_METRICS_LOOPBACK_ONLY": "true",
}


@pytest.mark.parametrize("published_key", sorted(PUBLISHED_SECRET_KEYS))
def test_a_token_signed_with_a_published_key_is_refused(client, rt, demo_clinic, published_key):
    username, _ = make_user(rt, "admin")
    with rt.db.session() as session:
        user = session.scalar(select(StaffUser).where(StaffUser.username == username))
        claims = {"uid": user.id, "ver": user.token_version}

    forged = issue_token(published_key, "admin", claims)
    resp = client.get(f"{ADMIN}/auth/me", headers={"Authorization": f"Bearer {forged}"})

    assert resp.status_code == 401 and resp.get_json()["error"] == "invalid_token"


def _start_production_app(**env) -> subprocess.CompletedProcess:
    """Import wsgi (what gunicorn does) with these settings, in a process of its own."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("HPAY_")}
    return subprocess.run([sys.executable, "-c", "import wsgi"], cwd=ROOT, env={**environ, **PRODUCTION_ENV, **env},
                          capture_output=True, text=True, timeout=60)


def test_production_starts_with_safe_settings():
    started = _start_production_app()
    assert started.returncode == 0, started.stderr[-2000:]


@pytest.mark.parametrize("env, complaint", [
    ({"HPAY_SECRET_KEY": ""}, "HPAY_SECRET_KEY"),
    *[({"HPAY_SECRET_KEY": key}, "HPAY_SECRET_KEY") for key in sorted(PUBLISHED_SECRET_KEYS)],
    ({"HPAY_PUBLIC_BASE_URL": "http://pay.example-hospital.cn"}, "https"),
    ({"HPAY_TOKEN_TTL_S": str(3 * 24 * 3600)}, "HPAY_TOKEN_TTL_S"),
])
def test_production_refuses_to_start_unsafe(env, complaint):
    started = _start_production_app(**env)
    assert started.returncode != 0 and complaint in started.stderr, started.stderr[-2000:]


def test_development_signs_with_a_private_generated_key(tmp_path):
    from app.factory import create_app
    from config.settings import DEV_SECRET_KEY_FILE, DevelopmentSettings

    app = create_app(DevelopmentSettings(DATABASE_URL=f"sqlite:///{tmp_path / 'dev.db'}"))
    try:
        key = app.extensions["hpay_runtime"].settings.SECRET_KEY
    finally:
        app.extensions["hpay_runtime"].close()

    assert key == DEV_SECRET_KEY_FILE.read_text().strip() and key not in PUBLISHED_SECRET_KEYS
    assert len(key) >= 48 and oct(DEV_SECRET_KEY_FILE.stat().st_mode & 0o777) == "0o600"


def test_the_test_session_shares_one_key_with_the_platform_processes(client, rt, platform, demo_clinic):
    """A token this process issues is good on the gunicorn platform, and the other way round."""
    username, password = make_user(rt, "staff")
    here = sign_in(client, username, password)
    there = requests.post(f"{platform.url}{ADMIN}/auth/login", json={"username": username, "password": password},
                          timeout=30)

    assert requests.get(f"{platform.url}{ADMIN}/auth/me", headers=here, timeout=30).status_code == 200
    assert client.get(f"{ADMIN}/auth/me",
                      headers={"Authorization": f"Bearer {there.json()['token']}"}).status_code == 200
