"""One active booking per patient, item and day: orders.active_booking_key with a unique index

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06

A booking holding its place carries `patient:item:day` (the Asia/Shanghai day of its appointment); the key is
cleared when the booking leaves the place-holding statuses (app/services/orders/state.py), so the unique
index refuses a second concurrent booking of the same patient, item and day. Orders already there keep NULL:
the rule applies to bookings made from now on.
"""
import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('active_booking_key', sa.String(length=64), nullable=True))
        batch_op.create_index('ix_orders_active_booking_key', ['active_booking_key'], unique=True)


def downgrade() -> None:
    op.drop_index('ix_orders_active_booking_key', table_name='orders')
    # ALTER TABLE ... DROP COLUMN on both databases (SQLite since 3.35): a batch would copy `orders`, and dropping
    # the old copy fails on SQLite while other tables' rows refer to it.
    op.drop_column('orders', 'active_booking_key')
