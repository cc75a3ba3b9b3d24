"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22 10:35:09.323604
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import app.db.types

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('clinics',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('his_base_url', sa.String(length=500), nullable=False),
    sa.Column('his_key_id', sa.String(length=100), nullable=False),
    sa.Column('his_secret', sa.String(length=200), nullable=False),
    sa.Column('created_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_clinics')),
    sa.UniqueConstraint('code', name=op.f('uq_clinics_code')),
    sa.UniqueConstraint('his_key_id', name=op.f('uq_clinics_his_key_id'))
    )
    op.create_table('idempotency_records',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('scope', sa.String(length=100), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('response_body', sa.Text(), nullable=True),
    sa.Column('created_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_idempotency_records')),
    sa.UniqueConstraint('scope', 'key', name=op.f('uq_idempotency_records_scope_key'))
    )
    op.create_table('audit_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor_type', sa.String(length=16), nullable=False),
    sa.Column('actor_id', sa.String(length=64), nullable=True),
    sa.Column('actor_name', sa.String(length=100), nullable=True),
    sa.Column('clinic_id', sa.Integer(), nullable=True),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('target_type', sa.String(length=32), nullable=True),
    sa.Column('target_id', sa.String(length=64), nullable=True),
    sa.Column('before', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('after', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('request_id', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], name=op.f('fk_audit_events_clinic_id_clinics')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_events'))
    )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_events_action'), ['action'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_events_actor_name'), ['actor_name'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_events_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_events_clinic_id'), ['clinic_id'], unique=False)

    op.create_table('items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('clinic_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('price_fen', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('price_fen > 0', name=op.f('ck_items_price_positive')),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], name=op.f('fk_items_clinic_id_clinics')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_items')),
    sa.UniqueConstraint('clinic_id', 'code', name=op.f('uq_items_clinic_id_code'))
    )
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_items_clinic_id'), ['clinic_id'], unique=False)

    op.create_table('merchant_accounts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('clinic_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('app_id', sa.String(length=64), nullable=False),
    sa.Column('mch_id', sa.String(length=64), nullable=True),
    sa.Column('api_key', sa.String(length=128), nullable=True),
    sa.Column('app_secret', sa.String(length=128), nullable=True),
    sa.Column('sign_type', sa.String(length=16), nullable=False),
    sa.Column('app_private_key', sa.Text(), nullable=True),
    sa.Column('alipay_public_key', sa.Text(), nullable=True),
    sa.Column('api_base_url', sa.String(length=500), nullable=False),
    sa.Column('login_base_url', sa.String(length=500), nullable=True),
    sa.Column('mch_cert_path', sa.String(length=500), nullable=True),
    sa.Column('mch_key_path', sa.String(length=500), nullable=True),
    sa.Column('refund_window_days', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], name=op.f('fk_merchant_accounts_clinic_id_clinics')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_merchant_accounts')),
    sa.UniqueConstraint('channel', 'app_id', name=op.f('uq_merchant_accounts_channel_app_id'))
    )
    with op.batch_alter_table('merchant_accounts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_merchant_accounts_clinic_id'), ['clinic_id'], unique=False)

    op.create_table('item_inventory',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('reserved', sa.Integer(), nullable=False),
    sa.CheckConstraint('reserved >= 0 AND reserved <= quantity',
        name=op.f('ck_item_inventory_reserved_within_quantity')),
    sa.ForeignKeyConstraint(['item_id'], ['items.id'], name=op.f('fk_item_inventory_item_id_items')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_item_inventory')),
    sa.UniqueConstraint('item_id', 'channel', name=op.f('uq_item_inventory_item_id_channel'))
    )
    op.create_table('mp_users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('clinic_id', sa.Integer(), nullable=False),
    sa.Column('merchant_account_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('openid', sa.String(length=128), nullable=False),
    sa.Column('unionid', sa.String(length=128), nullable=True),
    sa.Column('created_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_login_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], name=op.f('fk_mp_users_clinic_id_clinics')),
    sa.ForeignKeyConstraint(['merchant_account_id'], ['merchant_accounts.id'],
        name=op.f('fk_mp_users_merchant_account_id_merchant_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mp_users')),
    sa.UniqueConstraint('merchant_account_id', 'openid', name=op.f('uq_mp_users_merchant_account_id_openid'))
    )
    with op.batch_alter_table('mp_users', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mp_users_clinic_id'), ['clinic_id'], unique=False)

    op.create_table('notification_inbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('clinic_code', sa.String(length=32), nullable=False),
    sa.Column('merchant_account_id', sa.Integer(), nullable=True),
    sa.Column('out_trade_no', sa.String(length=64), nullable=True),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('content_type', sa.String(length=100), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('received_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('processed_at', app.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['merchant_account_id'], ['merchant_accounts.id'],
        name=op.f('fk_notification_inbox_merchant_account_id_merchant_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notification_inbox'))
    )
    with op.batch_alter_table('notification_inbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notification_inbox_out_trade_no'), ['out_trade_no'], unique=False)
        batch_op.create_index('ix_notification_inbox_status_next_attempt_at', ['status', 'next_attempt_at'],
            unique=False)

    op.create_table('slots',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('starts_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ends_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('capacity', sa.Integer(), nullable=False),
    sa.Column('reserved', sa.Integer(), nullable=False),
    sa.CheckConstraint('reserved >= 0 AND reserved <= capacity', name=op.f('ck_slots_reserved_within_capacity')),
    sa.ForeignKeyConstraint(['item_id'], ['items.id'], name=op.f('fk_slots_item_id_items')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_slots')),
    sa.UniqueConstraint('item_id', 'starts_at', name=op.f('uq_slots_item_id_starts_at'))
    )
    with op.batch_alter_table('slots', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_slots_item_id'), ['item_id'], unique=False)

    op.create_table('patients',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('clinic_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('phone', sa.String(length=32), nullable=False),
    sa.Column('id_number', sa.String(length=32), nullable=True),
    sa.Column('relation', sa.String(length=32), nullable=True),
    sa.Column('his_patient_id', sa.String(length=64), nullable=True),
    sa.Column('created_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], name=op.f('fk_patients_clinic_id_clinics')),
    sa.ForeignKeyConstraint(['user_id'], ['mp_users.id'], name=op.f('fk_patients_user_id_mp_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_patients'))
    )
    with op.batch_alter_table('patients', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_patients_clinic_id'), ['clinic_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_patients_phone'), ['phone'], unique=False)
        batch_op.create_index(batch_op.f('ix_patients_user_id'), ['user_id'], unique=False)

    op.create_table('cards',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('clinic_id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('card_no', sa.String(length=64), nullable=False),
    sa.Column('created_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], name=op.f('fk_cards_clinic_id_clinics')),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_cards_patient_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cards')),
    sa.UniqueConstraint('patient_id', 'card_no', name=op.f('uq_cards_patient_id_card_no'))
    )
    with op.batch_alter_table('cards', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cards_card_no'), ['card_no'], unique=False)
        batch_op.create_index(batch_op.f('ix_cards_clinic_id'), ['clinic_id'], unique=False)

    op.create_table('orders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_no', sa.String(length=32), nullable=False),
    sa.Column('clinic_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('amount_fen', sa.Integer(), nullable=False),
    sa.Column('refunded_fen', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=True),
    sa.Column('card_no', sa.String(length=64), nullable=True),
    sa.Column('item_id', sa.Integer(), nullable=True),
    sa.Column('slot_id', sa.Integer(), nullable=True),
    sa.Column('bill_ids', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('paid_attempt_id', sa.Integer(), nullable=True),
    sa.Column('description', sa.String(length=200), nullable=False),
    sa.Column('appointment_at', app.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('expires_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('paid_at', app.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('completed_at', app.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('closed_at', app.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('redeemed_at', app.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('next_check_at', app.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount_fen > 0', name=op.f('ck_orders_amount_positive')),
    sa.CheckConstraint('refunded_fen >= 0 AND refunded_fen <= amount_fen',
        name=op.f('ck_orders_refunded_within_amount')),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], name=op.f('fk_orders_clinic_id_clinics')),
    sa.ForeignKeyConstraint(['item_id'], ['items.id'], name=op.f('fk_orders_item_id_items')),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_orders_patient_id_patients')),
    sa.ForeignKeyConstraint(['slot_id'], ['slots.id'], name=op.f('fk_orders_slot_id_slots')),
    sa.ForeignKeyConstraint(['user_id'], ['mp_users.id'], name=op.f('fk_orders_user_id_mp_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_orders')),
    sa.UniqueConstraint('order_no', name=op.f('uq_orders_order_no'))
    )
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_orders_card_no'), ['card_no'], unique=False)
        batch_op.create_index(batch_op.f('ix_orders_clinic_id'), ['clinic_id'], unique=False)
        batch_op.create_index('ix_orders_status_expires_at', ['status', 'expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_orders_user_id'), ['user_id'], unique=False)

    op.create_table('order_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('from_status', sa.String(length=24), nullable=False),
    sa.Column('to_status', sa.String(length=24), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_order_events_order_id_orders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_order_events'))
    )
    with op.batch_alter_table('order_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_order_events_order_id'), ['order_id'], unique=False)

    op.create_table('payment_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('merchant_account_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('out_trade_no', sa.String(length=64), nullable=False),
    sa.Column('amount_fen', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('prepay_id', sa.String(length=128), nullable=True),
    sa.Column('channel_trade_no', sa.String(length=64), nullable=True),
    sa.Column('payer_id', sa.String(length=128), nullable=True),
    sa.Column('paid_at', app.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('closed_at', app.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('late', sa.Boolean(), nullable=False),
    sa.Column('query_count', sa.Integer(), nullable=False),
    sa.Column('next_query_at', app.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount_fen > 0', name=op.f('ck_payment_attempts_amount_positive')),
    sa.ForeignKeyConstraint(['merchant_account_id'], ['merchant_accounts.id'],
        name=op.f('fk_payment_attempts_merchant_account_id_merchant_accounts')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_payment_attempts_order_id_orders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_attempts')),
    sa.UniqueConstraint('out_trade_no', name=op.f('uq_payment_attempts_out_trade_no'))
    )
    with op.batch_alter_table('payment_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payment_attempts_channel_trade_no'), ['channel_trade_no'], unique=False)
        batch_op.create_index(batch_op.f('ix_payment_attempts_order_id'), ['order_id'], unique=False)
        batch_op.create_index('ix_payment_attempts_status_next_query_at', ['status', 'next_query_at'], unique=False)

    op.create_table('refund_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('refund_request_no', sa.String(length=32), nullable=False),
    sa.Column('clinic_id', sa.Integer(), nullable=False),
    sa.Column('origin', sa.String(length=16), nullable=False),
    sa.Column('external_request_no', sa.String(length=64), nullable=True),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('card_no', sa.String(length=64), nullable=True),
    sa.Column('order_id', sa.Integer(), nullable=True),
    sa.Column('amount_fen', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=True),
    sa.Column('created_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount_fen > 0', name=op.f('ck_refund_requests_amount_positive')),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], name=op.f('fk_refund_requests_clinic_id_clinics')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_refund_requests_order_id_orders')),
    sa.ForeignKeyConstraint(['user_id'], ['mp_users.id'], name=op.f('fk_refund_requests_user_id_mp_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_refund_requests')),
    sa.UniqueConstraint('clinic_id', 'origin', 'external_request_no',
        name=op.f('uq_refund_requests_clinic_id_origin_external_request_no')),
    sa.UniqueConstraint('refund_request_no', name=op.f('uq_refund_requests_refund_request_no'))
    )
    with op.batch_alter_table('refund_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_refund_requests_card_no'), ['card_no'], unique=False)
        batch_op.create_index(batch_op.f('ix_refund_requests_clinic_id'), ['clinic_id'], unique=False)

    op.create_table('refunds',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('refund_no', sa.String(length=64), nullable=False),
    sa.Column('refund_request_id', sa.Integer(), nullable=False),
    sa.Column('payment_attempt_id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('amount_fen', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('channel_refund_id', sa.String(length=64), nullable=True),
    sa.Column('failure_code', sa.String(length=64), nullable=True),
    sa.Column('failure_reason', sa.String(length=500), nullable=True),
    sa.Column('query_count', sa.Integer(), nullable=False),
    sa.Column('next_query_at', app.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('succeeded_at', app.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount_fen > 0', name=op.f('ck_refunds_amount_positive')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_refunds_order_id_orders')),
    sa.ForeignKeyConstraint(['payment_attempt_id'], ['payment_attempts.id'],
        name=op.f('fk_refunds_payment_attempt_id_payment_attempts')),
    sa.ForeignKeyConstraint(['refund_request_id'], ['refund_requests.id'],
        name=op.f('fk_refunds_refund_request_id_refund_requests')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_refunds')),
    sa.UniqueConstraint('refund_no', name=op.f('uq_refunds_refund_no'))
    )
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_refunds_channel_refund_id'), ['channel_refund_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_refunds_order_id'), ['order_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_refunds_payment_attempt_id'), ['payment_attempt_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_refunds_refund_request_id'), ['refund_request_id'], unique=False)
        batch_op.create_index('ix_refunds_status_next_query_at', ['status', 'next_query_at'], unique=False)

    op.create_table('his_outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('clinic_id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=True),
    sa.Column('refund_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('idempotency_key', sa.String(length=128), nullable=False),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('his_record_id', sa.String(length=64), nullable=True),
    sa.Column('created_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', app.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], name=op.f('fk_his_outbox_clinic_id_clinics')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_his_outbox_order_id_orders')),
    sa.ForeignKeyConstraint(['refund_id'], ['refunds.id'], name=op.f('fk_his_outbox_refund_id_refunds')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_his_outbox')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_his_outbox_idempotency_key'))
    )
    with op.batch_alter_table('his_outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_his_outbox_clinic_id'), ['clinic_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_his_outbox_order_id'), ['order_id'], unique=False)
        batch_op.create_index('ix_his_outbox_status_next_attempt_at', ['status', 'next_attempt_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('his_outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_his_outbox_status_next_attempt_at')
        batch_op.drop_index(batch_op.f('ix_his_outbox_order_id'))
        batch_op.drop_index(batch_op.f('ix_his_outbox_clinic_id'))

    op.drop_table('his_outbox')
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.drop_index('ix_refunds_status_next_query_at')
        batch_op.drop_index(batch_op.f('ix_refunds_refund_request_id'))
        batch_op.drop_index(batch_op.f('ix_refunds_payment_attempt_id'))
        batch_op.drop_index(batch_op.f('ix_refunds_order_id'))
        batch_op.drop_index(batch_op.f('ix_refunds_channel_refund_id'))

    op.drop_table('refunds')
    with op.batch_alter_table('refund_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_refund_requests_clinic_id'))
        batch_op.drop_index(batch_op.f('ix_refund_requests_card_no'))

    op.drop_table('refund_requests')
    with op.batch_alter_table('payment_attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_payment_attempts_status_next_query_at')
        batch_op.drop_index(batch_op.f('ix_payment_attempts_order_id'))
        batch_op.drop_index(batch_op.f('ix_payment_attempts_channel_trade_no'))

    op.drop_table('payment_attempts')
    with op.batch_alter_table('order_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_order_events_order_id'))

    op.drop_table('order_events')
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_orders_user_id'))
        batch_op.drop_index('ix_orders_status_expires_at')
        batch_op.drop_index(batch_op.f('ix_orders_clinic_id'))
        batch_op.drop_index(batch_op.f('ix_orders_card_no'))

    op.drop_table('orders')
    with op.batch_alter_table('cards', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cards_clinic_id'))
        batch_op.drop_index(batch_op.f('ix_cards_card_no'))

    op.drop_table('cards')
    with op.batch_alter_table('patients', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_patients_user_id'))
        batch_op.drop_index(batch_op.f('ix_patients_phone'))
        batch_op.drop_index(batch_op.f('ix_patients_clinic_id'))

    op.drop_table('patients')
    with op.batch_alter_table('slots', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_slots_item_id'))

    op.drop_table('slots')
    with op.batch_alter_table('notification_inbox', schema=None) as batch_op:
        batch_op.drop_index('ix_notification_inbox_status_next_attempt_at')
        batch_op.drop_index(batch_op.f('ix_notification_inbox_out_trade_no'))

    op.drop_table('notification_inbox')
    with op.batch_alter_table('mp_users', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mp_users_clinic_id'))

    op.drop_table('mp_users')
    op.drop_table('item_inventory')
    with op.batch_alter_table('merchant_accounts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_merchant_accounts_clinic_id'))

    op.drop_table('merchant_accounts')
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_items_clinic_id'))

    op.drop_table('items')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_events_clinic_id'))
        batch_op.drop_index(batch_op.f('ix_audit_events_at'))
        batch_op.drop_index(batch_op.f('ix_audit_events_actor_name'))
        batch_op.drop_index(batch_op.f('ix_audit_events_action'))

    op.drop_table('audit_events')
    op.drop_table('idempotency_records')
    op.drop_table('clinics')
