"""Messages to patients: inboxes, channel apps' message templates, subscriptions, the push outbox, bill polling

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05

`mp_messages` is each mini-program user's inbox (one row per user, bill and kind, so a HIS repeating an
announcement changes nothing); `message_templates` the operator's configuration of each channel app's
templates; `message_subscriptions` what each user granted per template (one-time subscriptions: an
allowance); `message_pushes` the outbox of pushes to the channels; `polled_bills` the bills the poller of a
clinic whose HIS cannot announce has seen. `clinics.bill_push_mode` says which way a clinic's bills arrive.
"""
import sqlalchemy as sa
from alembic import op

import app.db.types

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('polled_bills',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('clinic_id', sa.Integer(), nullable=False),
    sa.Column('bill_id', sa.String(length=64), nullable=False),
    sa.Column('card_no', sa.String(length=64), nullable=False),
    sa.Column('seen_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], name=op.f('fk_polled_bills_clinic_id_clinics')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_polled_bills')),
    sa.UniqueConstraint('clinic_id', 'bill_id', name=op.f('uq_polled_bills_clinic_id_bill_id'))
    )
    op.create_table('message_templates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('merchant_account_id', sa.Integer(), nullable=False),
    sa.Column('purpose', sa.String(length=32), nullable=False),
    sa.Column('template_id', sa.String(length=128), nullable=False),
    sa.Column('fields', app.db.types.JsonDoc, nullable=False),
    sa.Column('page', sa.String(length=128), nullable=False),
    sa.Column('updated_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=100), nullable=True),
    sa.ForeignKeyConstraint(['merchant_account_id'], ['merchant_accounts.id'],
                            name=op.f('fk_message_templates_merchant_account_id_merchant_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_message_templates')),
    sa.UniqueConstraint('merchant_account_id', 'purpose', name=op.f('uq_message_templates_merchant_account_id_purpose'))
    )
    with op.batch_alter_table('message_templates', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_message_templates_merchant_account_id'), ['merchant_account_id'],
                              unique=False)

    op.create_table('message_subscriptions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('template_id', sa.String(length=128), nullable=False),
    sa.Column('allowance', sa.Integer(), nullable=False),
    sa.Column('last_result', sa.String(length=16), nullable=False),
    sa.Column('updated_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('allowance >= 0', name=op.f('ck_message_subscriptions_allowance_not_negative')),
    sa.ForeignKeyConstraint(['user_id'], ['mp_users.id'], name=op.f('fk_message_subscriptions_user_id_mp_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_message_subscriptions')),
    sa.UniqueConstraint('user_id', 'template_id', name=op.f('uq_message_subscriptions_user_id_template_id'))
    )
    op.create_table('mp_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('clinic_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('data', app.db.types.JsonDoc, nullable=False),
    sa.Column('page', sa.String(length=300), nullable=True),
    sa.Column('bill_id', sa.String(length=64), nullable=False),
    sa.Column('card_no', sa.String(length=64), nullable=False),
    sa.Column('created_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], name=op.f('fk_mp_messages_clinic_id_clinics')),
    sa.ForeignKeyConstraint(['user_id'], ['mp_users.id'], name=op.f('fk_mp_messages_user_id_mp_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mp_messages')),
    sa.UniqueConstraint('user_id', 'bill_id', 'kind', name=op.f('uq_mp_messages_user_id_bill_id_kind'))
    )
    with op.batch_alter_table('mp_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mp_messages_clinic_id'), ['clinic_id'], unique=False)
        batch_op.create_index('ix_mp_messages_user_id_id', ['user_id', 'id'], unique=False)

    op.create_table('message_pushes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('clinic_id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('merchant_account_id', sa.Integer(), nullable=False),
    sa.Column('template_id', sa.String(length=128), nullable=False),
    sa.Column('page', sa.String(length=300), nullable=True),
    sa.Column('data', app.db.types.JsonDoc, nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('channel_msg_id', sa.String(length=64), nullable=True),
    sa.Column('created_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', app.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], name=op.f('fk_message_pushes_clinic_id_clinics')),
    sa.ForeignKeyConstraint(['merchant_account_id'], ['merchant_accounts.id'],
                            name=op.f('fk_message_pushes_merchant_account_id_merchant_accounts')),
    sa.ForeignKeyConstraint(['message_id'], ['mp_messages.id'], name=op.f('fk_message_pushes_message_id_mp_messages')),
    sa.ForeignKeyConstraint(['user_id'], ['mp_users.id'], name=op.f('fk_message_pushes_user_id_mp_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_message_pushes')),
    sa.UniqueConstraint('message_id', name=op.f('uq_message_pushes_message_id'))
    )
    with op.batch_alter_table('message_pushes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_message_pushes_clinic_id'), ['clinic_id'], unique=False)
        batch_op.create_index('ix_message_pushes_status_next_attempt_at', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_message_pushes_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('clinics', schema=None) as batch_op:
        batch_op.add_column(sa.Column('bill_push_mode', sa.String(length=8), server_default='push', nullable=False))



def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # SQLite drops a column in place (3.35+); alembic's batch mode would rebuild `clinics`, which every
        # other table references.
        op.execute("ALTER TABLE clinics DROP COLUMN bill_push_mode")
    else:
        op.drop_column('clinics', 'bill_push_mode')

    with op.batch_alter_table('message_pushes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_message_pushes_user_id'))
        batch_op.drop_index('ix_message_pushes_status_next_attempt_at')
        batch_op.drop_index(batch_op.f('ix_message_pushes_clinic_id'))

    op.drop_table('message_pushes')
    with op.batch_alter_table('mp_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_mp_messages_user_id_id')
        batch_op.drop_index(batch_op.f('ix_mp_messages_clinic_id'))

    op.drop_table('mp_messages')
    op.drop_table('message_subscriptions')
    with op.batch_alter_table('message_templates', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_message_templates_merchant_account_id'))

    op.drop_table('message_templates')
    op.drop_table('polled_bills')
