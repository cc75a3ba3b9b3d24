"""HIS writes of a card-balance refund belong to its refund request

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('his_outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('refund_request_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_his_outbox_refund_request_id'), ['refund_request_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_his_outbox_refund_request_id_refund_requests'),
                                    'refund_requests', ['refund_request_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('his_outbox', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_his_outbox_refund_request_id_refund_requests'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_his_outbox_refund_request_id'))
        batch_op.drop_column('refund_request_id')
