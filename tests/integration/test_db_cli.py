"""`flask db-current [--check]` and `db-history` on PostgreSQL: a database at the latest migration, one
behind, one never migrated, and one that a newer release migrated."""
from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import create_engine, text

from app.cli import create_cli_app
from app.cli.migrations import describe, revisions
from app.db.migrate import upgrade
from tests.conftest import _create_database


@pytest.fixture(scope="module")
def behind_url(postgres_url):
    url = _create_database(postgres_url, "hpay_db_cli_behind")
    upgrade(url, "0005")
    return url


@pytest.fixture(scope="module")
def empty_url(postgres_url):
    return _create_database(postgres_url, "hpay_db_cli_empty")


def _cli(settings, database_url: str, *args: str):
    app = create_cli_app(dataclasses.replace(settings, DATABASE_URL=database_url))
    try:
        return app.test_cli_runner().invoke(args=list(args))
    finally:
        app.extensions["hpay_runtime"].close()


def test_db_current_names_the_latest_migration_and_check_passes(app):
    result = app.test_cli_runner().invoke(args=["db-current", "--check"])
    assert result.exit_code == 0, result.output
    latest = revisions(app.config["HPAY_SETTINGS"].DATABASE_URL).heads[0]
    assert f"current   {latest} (latest)" in result.output
    assert "postgresql+psycopg://postgres@127.0.0.1:" in result.output


def test_a_database_behind_says_how_many_migrations_remain_and_check_fails(settings, behind_url):
    found = revisions(behind_url)
    assert found.current == ("0005",) and not found.at_head
    remaining = len(found.known) - found.known.index("0005") - 1
    result = _cli(settings, behind_url, "db-current", "--check")
    assert result.exit_code == 1
    assert f"current   0005; latest {found.heads[0]}: {remaining} migration(s) to apply" in result.output
    assert _cli(settings, behind_url, "db-current").exit_code == 0


def test_db_history_lists_every_migration_oldest_first_marking_current_and_latest(settings, behind_url):
    result = _cli(settings, behind_url, "db-history")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    found = revisions(behind_url)
    assert [line.split()[0] for line in lines] == list(found.known)
    assert lines[0].startswith("0001  initial schema")
    assert lines[found.known.index("0005")].endswith("(current)")
    assert lines[-1].endswith("(latest)")


def test_a_never_migrated_database_and_one_a_newer_release_migrated(postgres_url, empty_url):
    found = revisions(empty_url)
    assert found.current == () and not found.at_head
    assert "none (never migrated)" in describe(empty_url, found)[1]

    newer = _create_database(postgres_url, "hpay_db_cli_newer")
    engine = create_engine(newer)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)"))
        conn.execute(text("INSERT INTO alembic_version VALUES ('9999')"))
    engine.dispose()
    found = revisions(newer)
    assert found.unknown == ("9999",) and not found.at_head
    assert "which this release does not ship" in describe(newer, found)[1]
