"""`flask --app wsgi db-current [--check]` and `db-history`: where the database stands among the migrations.

Read-only: they look at the database's Alembic version table and this release's migration scripts, and
never run a migration (`db-upgrade` does). `db-current --check` exits 1 unless the database is at this
release's latest migration, for a deploy step that must not start new code on an old schema.
"""
from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy.engine import make_url

from app.db.migrate import Revisions, revisions, script


def describe(database_url: str, found: Revisions) -> list[str]:
    lines = [f"database  {make_url(database_url).render_as_string(hide_password=True)}"]
    head = ", ".join(found.heads)
    if not found.current:
        lines.append(f"current   none (never migrated); latest {head}: run flask --app wsgi db-upgrade")
    elif found.unknown:
        lines.append(f"current   {', '.join(found.current)}, which this release does not ship (its latest is "
                     f"{head}): a newer release migrated this database; run that release's code")
    elif found.at_head:
        lines.append(f"current   {', '.join(found.current)} (latest)")
    else:
        behind = len(found.known) - 1 - max(found.known.index(rev) for rev in found.current)
        lines.append(f"current   {', '.join(found.current)}; latest {head}: {behind} migration(s) to apply "
                     "(flask --app wsgi db-upgrade)")
    return lines


@click.command("db-current")
@with_appcontext
@click.option("--check", is_flag=True, help="exit 1 unless the database is at this release's latest migration")
def db_current_command(check: bool) -> None:
    """The database's migration and whether it is this release's latest."""
    url = current_app.config["HPAY_SETTINGS"].DATABASE_URL
    found = revisions(url)
    for line in describe(url, found):
        click.echo(line)
    if check and not found.at_head:
        raise SystemExit(1)


@click.command("db-history")
@with_appcontext
def db_history_command() -> None:
    """This release's migrations, oldest first, marking the one the database is at."""
    url = current_app.config["HPAY_SETTINGS"].DATABASE_URL
    found = revisions(url)
    for rev in reversed(list(script().walk_revisions())):
        marks = [mark for mark, on in (("current", rev.revision in found.current),
                                       ("latest", rev.revision in found.heads)) if on]
        title = " ".join((rev.doc or "").split())
        click.echo(f"{rev.revision}  {title}{'  (' + ', '.join(marks) + ')' if marks else ''}")
    if not found.current:
        click.echo("(the database has not been migrated yet)")
