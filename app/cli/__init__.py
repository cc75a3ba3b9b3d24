"""Flask CLI commands: `flask --app wsgi db-upgrade | db-current | db-history | seed-demo | create-user | reconcile |
rotate-data-key | bill-push-mode`, and setting clinics up: `clinic …`, `channel-app …`, `user create`.

An entry point above the app factory: `create_cli_app` is the app with its commands (wsgi.py serves it).
"""
from __future__ import annotations

import click
from flask import Flask, current_app

from app.cli.data_keys import rotate_data_key_command
from app.cli.demo import seed_demo as run_seed
from app.cli.messaging import bill_push_mode_command
from app.cli.migrations import db_current_command, db_history_command
from app.cli.reconcile import reconcile_command
from app.cli.users import create_user_command
from app.db.migrate import upgrade
from app.extensions import runtime
from app.factory import ONBOARDING_COMMANDS, create_app
from config.settings import Settings


def create_cli_app(settings: Settings | None = None) -> Flask:
    """The app with the platform's commands registered (`flask --app wsgi …`)."""
    app = create_app(settings)
    register_cli(app)
    return app


def register_cli(app: Flask) -> None:
    app.cli.add_command(create_user_command)
    app.cli.add_command(reconcile_command)
    app.cli.add_command(rotate_data_key_command)
    app.cli.add_command(db_current_command)
    app.cli.add_command(db_history_command)
    app.cli.add_command(bill_push_mode_command)
    for command in ONBOARDING_COMMANDS:
        app.cli.add_command(command)

    @app.cli.command("db-upgrade")
    def db_upgrade():
        """Apply the Alembic migrations to HPAY_DATABASE_URL."""
        upgrade(current_app.config["HPAY_SETTINGS"].DATABASE_URL)
        click.echo("database is at the latest migration")

    @app.cli.command("seed-demo")
    @click.option("--sandbox-url", default=None, help="the sandbox world (default HPAY_SANDBOX_URL)")
    def seed_demo(sandbox_url):
        """Create (or refresh) clinic `demo` with the sandbox's merchants, items and slots."""
        rt = runtime()
        if rt.settings.ENV == "production":
            raise click.ClickException("seed-demo is refused in production")
        summary = run_seed(rt, sandbox_url or rt.settings.SANDBOX_URL)
        click.echo(summary)
