"""Token versions on staff and mini-program users; login throttles per (username, address) and per username

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""
import sqlalchemy as sa
from alembic import op

import app.db.types

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('staff_users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('token_version', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('password_changed_at', app.db.types.UTCDateTime(timezone=True),
                                      nullable=True))
    with op.batch_alter_table('mp_users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('token_version', sa.Integer(), server_default='0', nullable=False))
    # Throttle rows are short-lived counters keyed by username alone until now: start afresh.
    op.execute('DELETE FROM login_throttles')
    with op.batch_alter_table('login_throttles', schema=None) as batch_op:
        batch_op.alter_column('key', existing_type=sa.String(length=100), type_=sa.String(length=200),
                              existing_nullable=False)
        batch_op.add_column(sa.Column('username', sa.String(length=100), nullable=False))
        batch_op.create_index(batch_op.f('ix_login_throttles_username'), ['username'], unique=False)


def downgrade() -> None:
    op.execute('DELETE FROM login_throttles')
    with op.batch_alter_table('login_throttles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_login_throttles_username'))
        batch_op.drop_column('username')
        batch_op.alter_column('key', existing_type=sa.String(length=200), type_=sa.String(length=100),
                              existing_nullable=False)
    with op.batch_alter_table('mp_users', schema=None) as batch_op:
        batch_op.drop_column('token_version')
    with op.batch_alter_table('staff_users', schema=None) as batch_op:
        batch_op.drop_column('password_changed_at')
        batch_op.drop_column('token_version')
