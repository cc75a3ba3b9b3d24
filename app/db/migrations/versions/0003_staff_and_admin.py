"""Staff users and their clinics, login throttling, settlement-type settings, extra charges,
registration syncs; audit rows made insert-only in the database

The audit trail is enforced at the database: UPDATE and DELETE on audit_events (and TRUNCATE on
PostgreSQL) raise. A later SQLite batch migration that rebuilds audit_events must create the
triggers again.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op

import app.db.types

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

_INSERT_ONLY = "audit_events rows are insert-only"
_POSTGRES_GUARD = [
    f"""CREATE FUNCTION audit_events_insert_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION '{_INSERT_ONLY}'; END $$""",
    "CREATE TRIGGER audit_events_no_change BEFORE UPDATE OR DELETE ON audit_events"
    " FOR EACH ROW EXECUTE FUNCTION audit_events_insert_only()",
    "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events"
    " FOR EACH STATEMENT EXECUTE FUNCTION audit_events_insert_only()",
]
_SQLITE_GUARD = [
    f"CREATE TRIGGER audit_events_no_{change} BEFORE {change.upper()} ON audit_events"
    f" BEGIN SELECT RAISE(ABORT, '{_INSERT_ONLY}'); END"
    for change in ("update", "delete")
]


def _guard_audit_events() -> None:
    for statement in _POSTGRES_GUARD if op.get_bind().dialect.name == "postgresql" else _SQLITE_GUARD:
        op.execute(statement)


def _unguard_audit_events() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_events_no_truncate ON audit_events")
        op.execute("DROP TRIGGER audit_events_no_change ON audit_events")
        op.execute("DROP FUNCTION audit_events_insert_only()")
    else:
        op.execute("DROP TRIGGER audit_events_no_delete")
        op.execute("DROP TRIGGER audit_events_no_update")


def upgrade() -> None:
    op.create_table('login_throttles',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('window_started_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('locked_until', app.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_throttles')),
    sa.UniqueConstraint('key', name=op.f('uq_login_throttles_key'))
    )
    op.create_table('staff_users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_login_at', app.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("role IN ('staff', 'finance', 'admin')", name=op.f('ck_staff_users_role_known')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_users')),
    sa.UniqueConstraint('username', name=op.f('uq_staff_users_username'))
    )
    op.create_table('settlement_type_settings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('clinic_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('settlement_type', sa.String(length=32), nullable=False),
    sa.Column('count_in_cash_flow', sa.Boolean(), nullable=False),
    sa.Column('count_in_revenue', sa.Boolean(), nullable=False),
    sa.Column('updated_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], name=op.f('fk_settlement_type_settings_clinic_id_clinics')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_settlement_type_settings')),
    sa.UniqueConstraint('clinic_id', 'channel', name=op.f('uq_settlement_type_settings_clinic_id_channel'))
    )
    with op.batch_alter_table('settlement_type_settings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_settlement_type_settings_clinic_id'), ['clinic_id'], unique=False)

    op.create_table('staff_user_clinics',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('clinic_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], name=op.f('fk_staff_user_clinics_clinic_id_clinics')),
    sa.ForeignKeyConstraint(['user_id'], ['staff_users.id'], name=op.f('fk_staff_user_clinics_user_id_staff_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_user_clinics')),
    sa.UniqueConstraint('user_id', 'clinic_id', name=op.f('uq_staff_user_clinics_user_id_clinic_id'))
    )
    with op.batch_alter_table('staff_user_clinics', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_user_clinics_clinic_id'), ['clinic_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_staff_user_clinics_user_id'), ['user_id'], unique=False)

    op.create_table('extra_charges',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('amount_fen', sa.Integer(), nullable=False),
    sa.Column('card_no', sa.String(length=64), nullable=False),
    sa.Column('idempotency_key', sa.String(length=128), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('bill_id', sa.String(length=64), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', app.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint('amount_fen > 0', name=op.f('ck_extra_charges_amount_positive')),
    sa.ForeignKeyConstraint(['created_by'], ['staff_users.id'], name=op.f('fk_extra_charges_created_by_staff_users')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_extra_charges_order_id_orders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_extra_charges')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_extra_charges_idempotency_key')),
    sa.UniqueConstraint('order_id', 'seq', name=op.f('uq_extra_charges_order_id_seq'))
    )
    with op.batch_alter_table('extra_charges', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_extra_charges_order_id'), ['order_id'], unique=False)
        batch_op.create_index('ix_extra_charges_status_next_attempt_at', ['status', 'next_attempt_at'], unique=False)

    op.create_table('registration_syncs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('note', sa.String(length=200), nullable=True),
    sa.Column('updated_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_registration_syncs_order_id_orders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_registration_syncs')),
    sa.UniqueConstraint('order_id', name=op.f('uq_registration_syncs_order_id'))
    )
    with op.batch_alter_table('registration_syncs', schema=None) as batch_op:
        batch_op.create_index('ix_registration_syncs_status_next_attempt_at', ['status', 'next_attempt_at'],
                              unique=False)

    _guard_audit_events()


def downgrade() -> None:
    _unguard_audit_events()
    with op.batch_alter_table('registration_syncs', schema=None) as batch_op:
        batch_op.drop_index('ix_registration_syncs_status_next_attempt_at')

    op.drop_table('registration_syncs')
    with op.batch_alter_table('extra_charges', schema=None) as batch_op:
        batch_op.drop_index('ix_extra_charges_status_next_attempt_at')
        batch_op.drop_index(batch_op.f('ix_extra_charges_order_id'))

    op.drop_table('extra_charges')
    with op.batch_alter_table('staff_user_clinics', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_user_clinics_user_id'))
        batch_op.drop_index(batch_op.f('ix_staff_user_clinics_clinic_id'))

    op.drop_table('staff_user_clinics')
    with op.batch_alter_table('settlement_type_settings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_settlement_type_settings_clinic_id'))

    op.drop_table('settlement_type_settings')
    op.drop_table('staff_users')
    op.drop_table('login_throttles')
