"""Staff refunds of any paid order with finance's approval (maker-checker), and redemption attachments

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-10

A refund request remembers the staff user who asked for it and the finance user who approved or rejected it
(`requested_by`, `decided_by`, `decided_at`, `decision_note`); finance lists requests by status. Orders get
attachments (`order_attachments`: the file is in the attachment store under its sha256), and items say whether
redeeming them needs one (`requires_attachment`, false for the items there are).
"""
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

import app.db.types

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


@contextmanager
def _sqlite_table_rebuilds():
    """SQLite adds a column with a foreign key by rebuilding the table, which fails while other tables' foreign
    keys point at it: end alembic's transaction, stop enforcing, rebuild, and check every reference still
    holds (as in revisions 0008 to 0010)."""
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


def upgrade() -> None:
    with _sqlite_table_rebuilds():
        with op.batch_alter_table('refund_requests', schema=None) as batch_op:
            batch_op.add_column(sa.Column('requested_by', sa.Integer(), nullable=True))
            batch_op.add_column(sa.Column('decided_by', sa.Integer(), nullable=True))
            batch_op.add_column(sa.Column('decided_at', app.db.types.UTCDateTime(timezone=True), nullable=True))
            batch_op.add_column(sa.Column('decision_note', sa.String(length=200), nullable=True))
            batch_op.create_foreign_key(batch_op.f('fk_refund_requests_requested_by_staff_users'), 'staff_users',
                                        ['requested_by'], ['id'])
            batch_op.create_foreign_key(batch_op.f('fk_refund_requests_decided_by_staff_users'), 'staff_users',
                                        ['decided_by'], ['id'])
            batch_op.create_index('ix_refund_requests_status_clinic_id', ['status', 'clinic_id'], unique=False)
            batch_op.create_index('ix_refund_requests_order_id', ['order_id'], unique=False)
        with op.batch_alter_table('items', schema=None) as batch_op:
            batch_op.add_column(sa.Column('requires_attachment', sa.Boolean(), server_default=sa.false(),
                                          nullable=False))

    op.create_table('order_attachments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('clinic_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('mime', sa.String(length=32), nullable=False),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('uploaded_by', sa.Integer(), nullable=True),
    sa.Column('uploaded_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('size_bytes > 0', name=op.f('ck_order_attachments_size_positive')),
    sa.CheckConstraint("mime IN ('image/jpeg', 'image/png')", name=op.f('ck_order_attachments_mime_known')),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], name=op.f('fk_order_attachments_clinic_id_clinics')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_order_attachments_order_id_orders')),
    sa.ForeignKeyConstraint(['uploaded_by'], ['staff_users.id'],
                            name=op.f('fk_order_attachments_uploaded_by_staff_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_order_attachments'))
    )
    with op.batch_alter_table('order_attachments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_order_attachments_clinic_id'), ['clinic_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_order_attachments_order_id'), ['order_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('order_attachments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_order_attachments_order_id'))
        batch_op.drop_index(batch_op.f('ix_order_attachments_clinic_id'))
    op.drop_table('order_attachments')
    # Requests awaiting approval or rejected cannot exist before this revision.
    op.execute("DELETE FROM status_events WHERE record_type = 'refund request' AND record_id IN "
               "(SELECT id FROM refund_requests WHERE status IN ('awaiting_approval', 'rejected'))")
    op.execute("DELETE FROM refund_requests WHERE status IN ('awaiting_approval', 'rejected')")
    with _sqlite_table_rebuilds():
        with op.batch_alter_table('items', schema=None) as batch_op:
            batch_op.drop_column('requires_attachment')
        with op.batch_alter_table('refund_requests', schema=None) as batch_op:
            batch_op.drop_index('ix_refund_requests_order_id')
            batch_op.drop_index('ix_refund_requests_status_clinic_id')
            batch_op.drop_constraint(batch_op.f('fk_refund_requests_decided_by_staff_users'), type_='foreignkey')
            batch_op.drop_constraint(batch_op.f('fk_refund_requests_requested_by_staff_users'), type_='foreignkey')
            for column in ('decision_note', 'decided_at', 'decided_by', 'requested_by'):
                batch_op.drop_column(column)
