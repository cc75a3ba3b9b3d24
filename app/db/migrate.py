"""Alembic driven from code (no alembic.ini at the top level): upgrade, compare models with the schema, and where
a database stands among this release's migrations (the `db-current` command and `/readyz` read the same)."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, create_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def autogenerate(database_url: str, message: str) -> None:
    command.revision(alembic_config(database_url), message=message, autogenerate=True)


@dataclass(frozen=True)
class Revisions:
    current: tuple[str, ...]
    """What the database's alembic_version table holds (empty: never migrated)."""
    heads: tuple[str, ...]
    """This release's latest migration(s)."""
    known: tuple[str, ...]
    """Every revision this release ships, oldest first."""

    @property
    def at_head(self) -> bool:
        return bool(self.current) and set(self.current) == set(self.heads)

    @property
    def unknown(self) -> tuple[str, ...]:
        """Revisions of the database that this release does not ship (a newer release migrated it)."""
        return tuple(rev for rev in self.current if rev not in self.known)

    @property
    def behind(self) -> bool:
        """The database lacks migrations this release ships (never migrated, or migrated by an older release)."""
        return not self.at_head and not self.unknown


def script() -> ScriptDirectory:
    """This release's migration scripts (the URL plays no part in reading them)."""
    return ScriptDirectory.from_config(alembic_config("sqlite://"))


@cache
def shipped() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(heads, every revision oldest first) of this release: read once per process, they ship with the code."""
    scripts = script()
    return tuple(scripts.get_heads()), tuple(rev.revision for rev in reversed(list(scripts.walk_revisions())))


def revisions_on(connection: Connection) -> Revisions:
    """Where the database behind `connection` stands."""
    heads, known = shipped()
    return Revisions(current=tuple(MigrationContext.configure(connection).get_current_heads()), heads=heads,
                     known=known)


def revisions(database_url: str) -> Revisions:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return revisions_on(conn)
    finally:
        engine.dispose()
