"""Daily reconciliation: runs, their discrepancies, keyed repairs; indexes for reading a day of records

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import app.db.types

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('reconciliation_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('clinic_id', sa.Integer(), nullable=False),
    sa.Column('merchant_account_id', sa.Integer(), nullable=True),
    sa.Column('business_date', sa.Date(), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('scope', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('provisional', sa.Boolean(), nullable=False),
    sa.Column('matched_count', sa.Integer(), nullable=False),
    sa.Column('discrepancy_count', sa.Integer(), nullable=False),
    sa.Column('repaired_count', sa.Integer(), nullable=False),
    sa.Column('held_count', sa.Integer(), nullable=False),
    sa.Column('totals', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=True),
    sa.Column('error', sa.String(length=1000), nullable=True),
    sa.Column('started_by', sa.String(length=100), nullable=True),
    sa.Column('started_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', app.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], name=op.f('fk_reconciliation_runs_clinic_id_clinics')),
    sa.ForeignKeyConstraint(['merchant_account_id'], ['merchant_accounts.id'],
                            name=op.f('fk_reconciliation_runs_merchant_account_id_merchant_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reconciliation_runs')),
    sa.UniqueConstraint('business_date', 'source', 'scope',
                        name=op.f('uq_reconciliation_runs_business_date_source_scope'))
    )
    op.create_index(op.f('ix_reconciliation_runs_business_date'), 'reconciliation_runs', ['business_date'],
                    unique=False)
    op.create_index(op.f('ix_reconciliation_runs_clinic_id'), 'reconciliation_runs', ['clinic_id'], unique=False)
    op.create_table('reconciliation_repairs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=160), nullable=False),
    sa.Column('clinic_id', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('outcome', sa.String(length=32), nullable=False),
    sa.Column('business_date', sa.Date(), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('detail', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=True),
    sa.Column('created_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], name=op.f('fk_reconciliation_repairs_clinic_id_clinics')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reconciliation_repairs')),
    sa.UniqueConstraint('key', name=op.f('uq_reconciliation_repairs_key'))
    )
    op.create_index(op.f('ix_reconciliation_repairs_clinic_id'), 'reconciliation_repairs', ['clinic_id'],
                    unique=False)
    op.create_table('reconciliation_discrepancies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('type', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('ref', sa.String(length=128), nullable=False),
    sa.Column('channel_trade_no', sa.String(length=64), nullable=True),
    sa.Column('their_amount_fen', sa.Integer(), nullable=True),
    sa.Column('our_amount_fen', sa.Integer(), nullable=True),
    sa.Column('their_status', sa.String(length=32), nullable=True),
    sa.Column('our_status', sa.String(length=32), nullable=True),
    sa.Column('occurred_at', app.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('detail', sa.String(length=500), nullable=True),
    sa.Column('repair_id', sa.Integer(), nullable=True),
    sa.Column('resolution', sa.String(length=16), nullable=True),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('resolved_by', sa.String(length=100), nullable=True),
    sa.Column('resolved_at', app.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['repair_id'], ['reconciliation_repairs.id'],
                            name=op.f('fk_reconciliation_discrepancies_repair_id_reconciliation_repairs')),
    sa.ForeignKeyConstraint(['run_id'], ['reconciliation_runs.id'],
                            name=op.f('fk_reconciliation_discrepancies_run_id_reconciliation_runs'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reconciliation_discrepancies'))
    )
    op.create_index('ix_reconciliation_discrepancies_run_id_type_status', 'reconciliation_discrepancies',
                    ['run_id', 'type', 'status'], unique=False)
    op.create_index(op.f('ix_reconciliation_discrepancies_ref'), 'reconciliation_discrepancies', ['ref'],
                    unique=False)
    op.create_index('ix_payment_attempts_merchant_account_id_paid_at', 'payment_attempts',
                    ['merchant_account_id', 'paid_at'], unique=False)
    op.create_index('ix_refunds_succeeded_at', 'refunds', ['succeeded_at'], unique=False)
    op.create_index('ix_his_outbox_clinic_id_sent_at', 'his_outbox', ['clinic_id', 'sent_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_his_outbox_clinic_id_sent_at', table_name='his_outbox')
    op.drop_index('ix_refunds_succeeded_at', table_name='refunds')
    op.drop_index('ix_payment_attempts_merchant_account_id_paid_at', table_name='payment_attempts')
    op.drop_index(op.f('ix_reconciliation_discrepancies_ref'), table_name='reconciliation_discrepancies')
    op.drop_index('ix_reconciliation_discrepancies_run_id_type_status', table_name='reconciliation_discrepancies')
    op.drop_table('reconciliation_discrepancies')
    op.drop_index(op.f('ix_reconciliation_repairs_clinic_id'), table_name='reconciliation_repairs')
    op.drop_table('reconciliation_repairs')
    op.drop_index(op.f('ix_reconciliation_runs_clinic_id'), table_name='reconciliation_runs')
    op.drop_index(op.f('ix_reconciliation_runs_business_date'), table_name='reconciliation_runs')
    op.drop_table('reconciliation_runs')
