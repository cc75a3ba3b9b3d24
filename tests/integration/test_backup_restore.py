"""A backup taken by config/deploy/backup.sh restores with pg_restore into a new database that the platform
then runs on: at the same migration, every table with the same rows, the encrypted secrets readable with
the same data keys, and an order read back through the mini-program API.

The source is a database of this test's own (seeded, one order placed), so nothing else writes to it
between the dump and the comparison.
"""
from __future__ import annotations

import dataclasses
import os
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from app.cli.demo import seed_demo
from app.cli.migrations import revisions
from app.db.base import Base
from app.db.encrypted import TOKEN_PREFIX
from app.db.migrate import upgrade
from app.db.models import Clinic
from app.factory import create_app
from config.settings import ROOT
from tests.api.order_helpers import MP, add_patient, booking, created, place_order, user
from tests.conftest import _create_database
from tests.e2e.helpers import fresh_slot
from tests.servers import _pg_bin

BACKUP_SCRIPT = ROOT / "config" / "deploy" / "backup.sh"


def _libpq(url: str) -> dict[str, str]:
    parsed = make_url(url)
    return {"PGHOST": parsed.host, "PGPORT": str(parsed.port), "PGUSER": parsed.username or "postgres",
            "PGDATABASE": parsed.database}


def _counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {name: conn.scalar(select(func.count()).select_from(table))
                    for name, table in sorted(Base.metadata.tables.items())}
    finally:
        engine.dispose()


@pytest.fixture()
def source(postgres_url, settings, sandbox):
    """A seeded database with one booking placed through the API; yields (url, order_no, user label)."""
    url = _create_database(postgres_url, "hpay_backup_source")
    upgrade(url)
    app = create_app(dataclasses.replace(settings, DATABASE_URL=url))
    try:
        rt = app.extensions["hpay_runtime"]
        seed_demo(rt, sandbox.url)
        client = app.test_client()
        label = "backup-restore-patient"
        headers = user(client, sandbox, label)
        patient = add_patient(client, headers)
        item_id, slot_id = fresh_slot(rt, capacity=3)
        order = created(place_order(client, headers, booking(item_id, slot_id, patient["id"])))
        yield url, order["order_no"], label
    finally:
        app.extensions["hpay_runtime"].close()


def test_a_backup_restores_into_a_new_database_the_platform_runs_on(source, postgres_url, settings, sandbox,
                                                                    tmp_path):
    url, order_no, label = source
    env = {**os.environ, **_libpq(url), "BACKUP_DIR": str(tmp_path / "backups"), "BACKUP_KEEP_DAYS": "14",
           "PATH": f"{Path(_pg_bin('pg_dump')).parent}:{os.environ['PATH']}"}
    done = subprocess.run(["bash", str(BACKUP_SCRIPT)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    (dump,) = (tmp_path / "backups").glob("hpay_backup_source-*.dump")
    assert f"backup: {dump}" in done.stdout and not list((tmp_path / "backups").glob("*.partial"))

    restored = _create_database(postgres_url, "hpay_backup_restored")
    target = make_url(restored).set(drivername="postgresql").render_as_string(hide_password=False)
    done = subprocess.run([_pg_bin("pg_restore"), "--no-owner", "--exit-on-error", "-d", target, str(dump)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr

    assert revisions(restored).current == revisions(url).current and revisions(restored).at_head
    before, after = _counts(url), _counts(restored)
    assert after == before and before["orders"] >= 1 and before["clinics"] >= 1

    app = create_app(dataclasses.replace(settings, DATABASE_URL=restored))
    try:
        rt = app.extensions["hpay_runtime"]
        with rt.db.session() as session:
            clinic = session.scalar(select(Clinic).where(Clinic.code == "demo"))
            stored = session.execute(text("SELECT his_secret FROM clinics WHERE id = :id"), {"id": clinic.id}).scalar()
            assert stored.startswith(TOKEN_PREFIX)  # the dump holds tokens only; the keys stay in the environment
            assert clinic.his_secret == sandbox.merchants()["his"][0]["secret"]
        client = app.test_client()
        answer = client.get(f"{MP}/orders/{order_no}", headers=user(client, sandbox, label))
        assert answer.status_code == 200, answer.get_json()
        assert answer.get_json()["order_no"] == order_no and answer.get_json()["status"] == "created"
    finally:
        app.extensions["hpay_runtime"].close()
