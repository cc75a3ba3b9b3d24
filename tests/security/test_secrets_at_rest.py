"""Attacks on the stored secrets: a stolen database dump, a short or empty key, a lost data key.

The channel and HIS secrets (clinics.his_secret, merchant_accounts.api_key, app_secret,
app_private_key) are Fernet tokens under HPAY_DATA_KEYS; the keys never reach the database.
"""
from __future__ import annotations

import os
import stat
import subprocess
import uuid

import pytest
import requests
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import StatementError

from app.cli import create_cli_app
from app.db.encrypted import TOKEN_PREFIX, Keyring, UndecryptableSecret, load_keyring, parse_data_keys
from app.db.migrate import alembic_config, upgrade
from app.db.models import Clinic, MerchantAccount
from app.db.types import utcnow
from app.domain.secrets import WeakSecret
from config.settings import ConfigurationError, TestSettings
from tests.e2e.refund_helpers import card_with_topups
from tests.servers import _pg_bin


def _demo_secrets(sandbox) -> dict[str, str]:
    world = sandbox.merchants()
    wechat = next(m for m in world["wechat"] if m.get("clinic_code", "demo") == "demo")
    alipay = next(m for m in world["alipay"] if m.get("clinic_code", "demo") == "demo")
    found = {"wechat api_key": wechat["api_key"], "wechat app_secret": wechat["app_secret"],
             "his secret": world["his"][0]["secret"]}
    # A PEM in a dump may be escaped line by line: look for each line of the key's body.
    body = [line for line in alipay["app_private_key"].splitlines() if line and not line.startswith("-----")]
    found.update({f"alipay private key line {n}": line for n, line in enumerate(body)})
    return found


def _pg_dump(database_url: str) -> str:
    url = make_url(database_url)
    dumped = subprocess.run([_pg_bin("pg_dump"), "-h", url.host, "-p", str(url.port), "-U", url.username or "postgres",
                             "--no-owner", url.database], check=True, capture_output=True, timeout=120)
    return dumped.stdout.decode("utf-8", "replace")


# --- the dump ----------------------------------------------------------------------------------

def test_a_database_dump_holds_no_secret_while_payments_go_through_with_them(platform, sandbox, rt, database_url):
    # Paying needs every secret: the WeChat login (app_secret), WeChat Pay (api_key), Alipay (app_private_key)
    # and the HIS recharge that completes a top-up (the HIS secret, HMAC-signed).
    card, _clients = card_with_topups(platform, sandbox, wechat=[1_100], alipay=[1_200])
    assert [o["status"] for o in card["orders"]["wechat"] + card["orders"]["alipay"]] == ["completed", "completed"]

    dump = _pg_dump(database_url)

    assert "merchant_accounts" in dump and "clinics" in dump  # the dump is of the right database
    leaked = [name for name, secret in _demo_secrets(sandbox).items() if secret in dump]
    assert leaked == []
    with rt.db.engine.connect() as conn:
        stored = conn.execute(text("SELECT c.his_secret, m.api_key, m.app_secret, m.app_private_key FROM clinics c "
                                   "JOIN merchant_accounts m ON m.clinic_id = c.id WHERE c.code = 'demo' "
                                   "AND m.active")).all()
    tokens = [value for row in stored for value in row if value is not None]
    assert len(tokens) >= 4 and all(value.startswith(TOKEN_PREFIX) for value in tokens)
    assert all(token in dump for token in tokens)


# --- short and empty secrets ---------------------------------------------------------------------

@pytest.mark.parametrize("model, fields", [
    (Clinic, {"his_secret": ""}),
    (Clinic, {"his_secret": "x" * 15}),
    (Clinic, {"his_secret": " " * 40}),
    (MerchantAccount, {"api_key": ""}),
    (MerchantAccount, {"api_key": "k" * 31}),
    (MerchantAccount, {"app_secret": ""}),
    (MerchantAccount, {"app_secret": "s" * 15}),
    (MerchantAccount, {"app_private_key": ""}),
], ids=["his empty", "his 15", "his blank", "api_key empty", "api_key 31", "app_secret empty",
        "app_secret 15", "private key empty"])
def test_an_empty_or_short_secret_is_refused_when_stored(model, fields):
    [(name, _value)] = fields.items()
    with pytest.raises(WeakSecret, match=name) as refused:
        model(**fields)
    assert refused.value.http_status == 422 and refused.value.code == "weak_secret"


def test_secrets_of_the_right_length_and_absent_ones_are_accepted():
    assert Clinic(his_secret="h" * 16).his_secret == "h" * 16
    assert Clinic(his_secret=None).his_secret is None  # a clinic whose HIS is not connected yet
    account = MerchantAccount(api_key="k" * 32, app_secret="s" * 32, app_private_key=None)
    assert (account.api_key, account.app_private_key) == ("k" * 32, None)


def test_a_short_secret_written_around_the_model_is_refused_by_the_column(rt, demo_clinic):
    with rt.db.session() as session:
        clinic_id = session.scalar(select(Clinic.id).where(Clinic.code == "demo"))
    with pytest.raises(StatementError) as refused:
        with rt.db.session() as session:
            session.execute(insert(MerchantAccount).values(
                clinic_id=clinic_id, channel="wechat", app_id=f"wx-short-{uuid.uuid4().hex[:8]}", sign_type="MD5",
                api_key="too-short", api_base_url="http://127.0.0.1:1/", refund_window_days=365, active=False,
                created_at=utcnow()))
    assert isinstance(refused.value.orig, WeakSecret)


# --- keys ---------------------------------------------------------------------------------------------

def _runtime(url: str, keys: str):
    """An app (with its CLI) of its own over `url`, reading secrets under `keys`."""
    return create_cli_app(TestSettings(DATABASE_URL=url, DATA_KEYS=keys, LOG_JSON=False))


def _store_secrets(app) -> dict[str, str]:
    plain = {"his_secret": "his-" + uuid.uuid4().hex, "api_key": uuid.uuid4().hex, "app_secret": uuid.uuid4().hex,
             "app_private_key": "-----BEGIN RSA PRIVATE KEY-----\n" + uuid.uuid4().hex * 4}
    with app.extensions["hpay_runtime"].db.session() as session:
        clinic = Clinic(code="keys", name="Keys", his_base_url="http://127.0.0.1:1/his/", his_key_id="his-keys",
                        his_secret=plain["his_secret"])
        session.add(clinic)
        session.flush()
        session.add(MerchantAccount(clinic_id=clinic.id, channel="wechat", app_id="wx-keys", sign_type="MD5",
                                    api_key=plain["api_key"], app_secret=plain["app_secret"],
                                    app_private_key=plain["app_private_key"], api_base_url="http://127.0.0.1:1/"))
    return plain


def _read_secrets(app) -> dict[str, str]:
    with app.extensions["hpay_runtime"].db.session() as session:
        clinic = session.scalar(select(Clinic).where(Clinic.code == "keys"))
        account = session.scalar(select(MerchantAccount).where(MerchantAccount.app_id == "wx-keys"))
        return {"his_secret": clinic.his_secret, "api_key": account.api_key, "app_secret": account.app_secret,
                "app_private_key": account.app_private_key}


def _raw_tokens(url: str) -> list[str]:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT his_secret FROM clinics UNION ALL SELECT api_key FROM merchant_accounts "
                                 "UNION ALL SELECT app_secret FROM merchant_accounts UNION ALL "
                                 "SELECT app_private_key FROM merchant_accounts")).scalars().all()
    engine.dispose()
    return rows


def test_rotate_data_key_then_dropping_the_old_key_still_decrypts(tmp_path):
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    upgrade(url)
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    apps = []
    try:
        apps.append(before := _runtime(url, old))
        plain = _store_secrets(before)
        tokens_before = _raw_tokens(url)
        assert not set(plain.values()) & set(tokens_before)

        apps.append(rotating := _runtime(url, f"{new},{old}"))
        result = rotating.test_cli_runner().invoke(args=["rotate-data-key"])
        assert result.exit_code == 0, result.output
        assert "clinics.his_secret: 1 re-encrypted" in result.output
        assert "merchant_accounts.api_key: 1 re-encrypted" in result.output

        apps.append(after := _runtime(url, new))
        assert _read_secrets(after) == plain
        assert not set(_raw_tokens(url)) & set(tokens_before)
        apps.append(old_only := _runtime(url, old))
        with pytest.raises(UndecryptableSecret):
            _read_secrets(old_only)
    finally:
        for app in apps:
            app.extensions["hpay_runtime"].close()


def test_rotation_with_a_missing_key_changes_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    upgrade(url)
    first, stranger = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    apps = [_runtime(url, first)]
    try:
        _store_secrets(apps[0])
        tokens = _raw_tokens(url)
        apps.append(wrong := _runtime(url, stranger))
        result = wrong.test_cli_runner().invoke(args=["rotate-data-key"])
        assert result.exit_code != 0 and "Nothing was changed" in result.output
        assert _raw_tokens(url) == tokens
    finally:
        for app in apps:
            app.extensions["hpay_runtime"].close()


def _fresh_postgres_database(postgres_url: str) -> str:
    name = f"hpay_keys_{uuid.uuid4().hex[:8]}"
    engine = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return postgres_url.rsplit("/", 1)[0] + f"/{name}"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_migration_encrypts_existing_plain_text_secrets(tmp_path, monkeypatch, postgres_url, backend):
    from alembic import command

    url = f"sqlite:///{tmp_path / 'm.db'}" if backend == "sqlite" else _fresh_postgres_database(postgres_url)
    key = Fernet.generate_key().decode()
    upgrade(url, "0008-1")
    plain = {"his": "his-plain-" + uuid.uuid4().hex, "api_key": uuid.uuid4().hex, "app_secret": uuid.uuid4().hex,
             "pem": "-----BEGIN RSA PRIVATE KEY-----\nMIIEplain" + uuid.uuid4().hex}
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO clinics (code, name, his_base_url, his_key_id, his_secret, created_at) "
                          "VALUES ('old', 'Old', 'http://127.0.0.1:1/his/', 'his-old', :his, :now)"),
                     {"his": plain["his"], "now": utcnow()})
        clinic_id = conn.execute(text("SELECT id FROM clinics WHERE code = 'old'")).scalar()
        for channel, values in (("wechat", (plain["api_key"], plain["app_secret"], None)),
                                ("alipay", (None, None, plain["pem"]))):
            conn.execute(text("INSERT INTO merchant_accounts (clinic_id, channel, app_id, api_key, app_secret, "
                              "sign_type, app_private_key, api_base_url, refund_window_days, active, created_at) "
                              "VALUES (:c, :channel, :app, :k, :s, 'MD5', :p, 'http://127.0.0.1:1/', 365, true, :now)"),
                         {"c": clinic_id, "channel": channel, "app": f"{channel}-old", "k": values[0],
                          "s": values[1], "p": values[2], "now": utcnow()})
    monkeypatch.setenv("HPAY_DATA_KEYS", key)
    try:
        upgrade(url)
        stored = _raw_tokens(url)
        keyring = Keyring(parse_data_keys(key))
        assert sorted(keyring.decrypt(t) for t in stored if t is not None) == sorted(plain.values())
        assert all(t.startswith(TOKEN_PREFIX) for t in stored if t is not None)

        command.downgrade(alembic_config(url), "0008-1")
        assert sorted(t for t in _raw_tokens(url) if t is not None) == sorted(plain.values())
    finally:
        engine.dispose()


def test_outside_production_a_key_is_generated_once_into_a_private_file(tmp_path):
    key_file = tmp_path / "var" / "data-keys"
    first = load_keyring("", "development", key_file)
    token = first.encrypt("a secret of sixteen+")
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert load_keyring("", "test", key_file).decrypt(token) == "a secret of sixteen+"


def test_production_never_generates_a_key(tmp_path):
    with pytest.raises(ConfigurationError, match="HPAY_DATA_KEYS"):
        load_keyring("", "production", tmp_path / "data-keys")
    assert not (tmp_path / "data-keys").exists()


def test_a_malformed_data_key_is_refused_without_being_echoed():
    with pytest.raises(ConfigurationError) as refused:
        load_keyring(f"{Fernet.generate_key().decode()},not-a-key-but-a-password", "production")
    assert "key 2" in str(refused.value) and "not-a-key-but-a-password" not in str(refused.value)


def test_the_sandbox_his_refuses_a_bearer_secret(sandbox):
    """The old scheme: the secret itself as a bearer token. Refused, whatever the secret."""
    his = sandbox.merchants()["his"][0]
    card = requests.post(f"{sandbox.url}/sandbox/his/cards", json={"name": "旧方案", "phone": "13900002222"},
                         timeout=5).json()["card_no"]
    for headers in ({"X-HIS-Client": his["key_id"], "Authorization": f"Bearer {his['secret']}"},
                    {"X-HIS-Key-Id": his["key_id"], "Authorization": f"Bearer {his['secret']}"}, {}):
        resp = requests.get(f"{sandbox.url}/his/cards/{card}/balance", headers=headers, timeout=5)
        assert resp.status_code == 401 and resp.json()["error"] == "unauthorized"
