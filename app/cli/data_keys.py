"""`flask --app wsgi rotate-data-key`: re-encrypt every stored secret under the first data key.

Rotation: generate a key, put it first in HPAY_DATA_KEYS (keep the old one after it), restart the
processes, run this command, then remove the old key. Until the command has run, the old key must stay:
a secret no key decrypts stops the payments that need it.
"""
from __future__ import annotations

import click
from flask.cli import with_appcontext

import app.db.models  # noqa: F401  (registers every table, so every encrypted column is found)
from app.db.base import Base
from app.db.encrypted import UndecryptableSecret, rotate_stored_secrets
from app.extensions import runtime


@click.command("rotate-data-key")
@with_appcontext
def rotate_data_key_command() -> None:
    """Re-encrypt every stored channel and HIS secret under the first key of HPAY_DATA_KEYS."""
    rt = runtime()
    try:
        rewritten = rotate_stored_secrets(rt.db.engine, rt.keyring, Base.metadata)
    except UndecryptableSecret as exc:
        raise click.ClickException(f"{exc} Nothing was changed.") from None
    for column, count in rewritten.items():
        click.echo(f"{column}: {count} re-encrypted")
    click.echo(f"every stored secret is now under the first of {rt.keyring.key_count} data keys; "
               "keys after the first may be removed from HPAY_DATA_KEYS")
