"""Going live without SQL: clinics that start without a HIS and can be deactivated; channel apps of a clinic or of
the platform, with refund certificates, key rotation and their last check; items with kind, channels, collector
and purchase prices; slots released at a set time or closed; the operator role

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-10

Existing rows keep working as they did: clinics are active, channel apps belong to their clinic, items are
clinic-collected `item`s offered on both channels, slots are visible and open.
"""
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

import app.db.encrypted
import app.db.types

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")
_OWNER_CHECK = ("(owner = 'clinic' AND clinic_id IS NOT NULL) OR (owner = 'platform' AND clinic_id IS NULL)")
_ROLES_BEFORE = "role IN ('staff', 'finance', 'admin')"
_ROLES_AFTER = "role IN ('staff', 'finance', 'admin', 'operator')"


@contextmanager
def _sqlite_table_rebuilds():
    """SQLite changes a column's nullability by rebuilding the table, which fails while other tables' foreign
    keys point at it: end alembic's transaction, stop enforcing, rebuild, and check every reference still
    holds (as in revisions 0008 and 0009)."""
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


def _his_nullable(nullable: bool) -> None:
    with op.batch_alter_table('clinics', schema=None) as batch_op:
        batch_op.alter_column('his_base_url', existing_type=sa.String(length=500), nullable=nullable)
        batch_op.alter_column('his_key_id', existing_type=sa.String(length=100), nullable=nullable)
        batch_op.alter_column('his_secret', existing_type=app.db.encrypted.EncryptedText(), nullable=nullable)


def _role_check(before: str, after: str) -> None:
    with op.batch_alter_table('staff_users', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_staff_users_role_known'), type_='check')
        batch_op.create_check_constraint(op.f('ck_staff_users_role_known'), after)


def upgrade() -> None:
    with _sqlite_table_rebuilds():
        with op.batch_alter_table('clinics', schema=None) as batch_op:
            batch_op.add_column(sa.Column('active', sa.Boolean(), server_default=sa.true(), nullable=False))
            batch_op.add_column(sa.Column('his_checked_at', app.db.types.UTCDateTime(timezone=True), nullable=True))
            batch_op.add_column(sa.Column('his_check_ok', sa.Boolean(), nullable=True))
            batch_op.add_column(sa.Column('his_check_detail', sa.String(length=500), nullable=True))
            batch_op.add_column(sa.Column('updated_at', app.db.types.UTCDateTime(timezone=True), nullable=True))
        _his_nullable(True)

        with op.batch_alter_table('merchant_accounts', schema=None) as batch_op:
            batch_op.add_column(sa.Column('owner', sa.String(length=16), server_default='clinic', nullable=False))
            batch_op.add_column(sa.Column('name', sa.String(length=100), nullable=True))
            batch_op.add_column(sa.Column('previous_api_key', app.db.encrypted.EncryptedText(), nullable=True))
            batch_op.add_column(sa.Column('previous_api_key_valid_until', app.db.types.UTCDateTime(timezone=True),
                                          nullable=True))
            batch_op.add_column(sa.Column('previous_alipay_public_key', sa.Text(), nullable=True))
            batch_op.add_column(sa.Column('previous_alipay_public_key_valid_until',
                                          app.db.types.UTCDateTime(timezone=True), nullable=True))
            batch_op.add_column(sa.Column('cert_pem', app.db.encrypted.EncryptedText(), nullable=True))
            batch_op.add_column(sa.Column('key_pem', app.db.encrypted.EncryptedText(), nullable=True))
            batch_op.add_column(sa.Column('checked_at', app.db.types.UTCDateTime(timezone=True), nullable=True))
            batch_op.add_column(sa.Column('check_ok', sa.Boolean(), nullable=True))
            batch_op.add_column(sa.Column('check_detail', sa.String(length=500), nullable=True))
            batch_op.add_column(sa.Column('updated_at', app.db.types.UTCDateTime(timezone=True), nullable=True))
            batch_op.alter_column('clinic_id', existing_type=sa.Integer(), nullable=True)
            batch_op.create_check_constraint(op.f('ck_merchant_accounts_owner_matches_clinic'), _OWNER_CHECK)

        with op.batch_alter_table('items', schema=None) as batch_op:
            batch_op.add_column(sa.Column('kind', sa.String(length=16), server_default='item', nullable=False))
            batch_op.add_column(sa.Column('collected_by', sa.String(length=16), server_default='clinic',
                                          nullable=False))
            batch_op.add_column(sa.Column('channels', _JSON, nullable=True))
            batch_op.add_column(sa.Column('purchase_price_fen', _JSON, nullable=True))
            batch_op.add_column(sa.Column('updated_at', app.db.types.UTCDateTime(timezone=True), nullable=True))
            batch_op.create_check_constraint(op.f('ck_items_kind_known'), "kind IN ('item', 'package')")
            batch_op.create_check_constraint(op.f('ck_items_collector_known'), "collected_by IN ('clinic', 'platform')")
        op.execute("""UPDATE items SET channels = '["wechat", "alipay"]'""")
        with op.batch_alter_table('items', schema=None) as batch_op:
            batch_op.alter_column('channels', existing_type=_JSON, nullable=False)

        with op.batch_alter_table('slots', schema=None) as batch_op:
            batch_op.add_column(sa.Column('release_at', app.db.types.UTCDateTime(timezone=True), nullable=True))
            batch_op.add_column(sa.Column('closed', sa.Boolean(), server_default=sa.false(), nullable=False))

        _role_check(_ROLES_BEFORE, _ROLES_AFTER)


def downgrade() -> None:
    # Operators, platform apps and clinics without a HIS cannot exist before this revision.
    op.execute("DELETE FROM staff_user_clinics WHERE user_id IN (SELECT id FROM staff_users WHERE role = 'operator')")
    op.execute("DELETE FROM staff_users WHERE role = 'operator'")
    with _sqlite_table_rebuilds():
        _role_check(_ROLES_AFTER, _ROLES_BEFORE)
        with op.batch_alter_table('slots', schema=None) as batch_op:
            batch_op.drop_column('closed')
            batch_op.drop_column('release_at')
        with op.batch_alter_table('items', schema=None) as batch_op:
            batch_op.drop_constraint(op.f('ck_items_collector_known'), type_='check')
            batch_op.drop_constraint(op.f('ck_items_kind_known'), type_='check')
            for column in ('updated_at', 'purchase_price_fen', 'channels', 'collected_by', 'kind'):
                batch_op.drop_column(column)
        with op.batch_alter_table('merchant_accounts', schema=None) as batch_op:
            batch_op.drop_constraint(op.f('ck_merchant_accounts_owner_matches_clinic'), type_='check')
            batch_op.alter_column('clinic_id', existing_type=sa.Integer(), nullable=False)
            for column in ('updated_at', 'check_detail', 'check_ok', 'checked_at', 'key_pem', 'cert_pem',
                           'previous_alipay_public_key_valid_until', 'previous_alipay_public_key',
                           'previous_api_key_valid_until', 'previous_api_key', 'name', 'owner'):
                batch_op.drop_column(column)
        _his_nullable(False)
        with op.batch_alter_table('clinics', schema=None) as batch_op:
            for column in ('updated_at', 'his_check_detail', 'his_check_ok', 'his_checked_at', 'active'):
                batch_op.drop_column(column)
