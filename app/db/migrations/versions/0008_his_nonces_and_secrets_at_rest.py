"""HIS API nonces; channel and HIS secrets encrypted at rest

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29

The secret columns become TEXT (a Fernet token is longer than the plain value) and every plain-text
value in them is encrypted under the first data key, read as the app reads it (HPAY_DATA_KEYS, or
outside production the generated var/data-keys). A value the keys already decrypt is left alone, so
running the data step twice changes nothing.
"""
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

import app.db.types
from app.db.encrypted import TOKEN_PREFIX, environment_keyring

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

SECRET_COLUMNS = {
    'clinics': ('his_secret',),
    'merchant_accounts': ('api_key', 'app_secret', 'app_private_key'),
}
# The columns whose type this revision changes, with the type they had before it.
WIDENED = {
    'clinics': {'his_secret': (sa.String(length=200), False)},
    'merchant_accounts': {'api_key': (sa.String(length=128), True), 'app_secret': (sa.String(length=128), True)},
}


@contextmanager
def _sqlite_table_rebuilds():
    """SQLite changes a column's type by rebuilding the table (batch mode), and dropping a table that other
    tables reference fails while foreign keys are enforced; PRAGMA foreign_keys cannot change inside a
    transaction. So, as SQLite's own ALTER TABLE procedure says: end the transaction (alembic has stamped
    every earlier revision in it), stop enforcing, rebuild in a new transaction, and check that every
    reference still holds before alembic commits. The migration's connection is closed afterwards."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        yield
        return
    bind.exec_driver_sql("COMMIT")
    bind.exec_driver_sql("PRAGMA foreign_keys=OFF")
    bind.exec_driver_sql("BEGIN IMMEDIATE")
    yield
    broken = bind.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RuntimeError(f"foreign keys broken by the table rebuild: {broken[:5]}")


def _rewrite_secrets(change) -> None:
    """Apply change(keyring, value) -> new value | None (unchanged) to every secret; keys loaded only if needed."""
    bind = op.get_bind()
    keyring = None
    for table, columns in SECRET_COLUMNS.items():
        rows = bind.execute(sa.text(f"SELECT id, {', '.join(columns)} FROM {table}")).mappings().all()
        for row in rows:
            for column in columns:
                value = row[column]
                if value is None:
                    continue
                keyring = keyring or environment_keyring()
                new = change(keyring, value)
                if new is not None:
                    bind.execute(sa.text(f"UPDATE {table} SET {column} = :new WHERE id = :id"),
                                 {"new": new, "id": row["id"]})


def _encrypt(keyring, value: str):
    if keyring.can_decrypt(value):
        return None
    if value.startswith(TOKEN_PREFIX):
        raise RuntimeError("a stored secret looks encrypted under a key that is not in HPAY_DATA_KEYS; "
                           "refusing to encrypt it twice")
    return keyring.encrypt(value)


def _decrypt(keyring, value: str):
    return keyring.decrypt(value) if value.startswith(TOKEN_PREFIX) else None


def upgrade() -> None:
    op.create_table('his_api_nonces',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key_id', sa.String(length=100), nullable=False),
    sa.Column('nonce', sa.String(length=64), nullable=False),
    sa.Column('signed_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('seen_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_his_api_nonces')),
    sa.UniqueConstraint('key_id', 'nonce', name=op.f('uq_his_api_nonces_key_id_nonce'))
    )
    with op.batch_alter_table('his_api_nonces', schema=None) as batch_op:
        batch_op.create_index('ix_his_api_nonces_signed_at', ['signed_at'], unique=False)

    with _sqlite_table_rebuilds():
        for table, columns in WIDENED.items():
            with op.batch_alter_table(table, schema=None) as batch_op:
                for column, (old_type, nullable) in columns.items():
                    batch_op.alter_column(column, existing_type=old_type, type_=sa.Text(),
                                          existing_nullable=nullable)
    _rewrite_secrets(_encrypt)


def downgrade() -> None:
    _rewrite_secrets(_decrypt)
    with _sqlite_table_rebuilds():
        for table, columns in WIDENED.items():
            with op.batch_alter_table(table, schema=None) as batch_op:
                for column, (old_type, nullable) in columns.items():
                    batch_op.alter_column(column, existing_type=sa.Text(), type_=old_type,
                                          existing_nullable=nullable)
    with op.batch_alter_table('his_api_nonces', schema=None) as batch_op:
        batch_op.drop_index('ix_his_api_nonces_signed_at')
    op.drop_table('his_api_nonces')
