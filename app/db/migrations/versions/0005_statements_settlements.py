"""Monthly statements of redeemed channel orders, their lines, settlements and settlement coupons

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op

import app.db.types

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('settlements',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('clinic_id', sa.Integer(), nullable=False),
    sa.Column('method', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('amount_fen', sa.Integer(), nullable=False),
    sa.Column('invoice_type', sa.String(length=16), nullable=True),
    sa.Column('invoice_amount_fen', sa.Integer(), nullable=True),
    sa.Column('bank_account_name', sa.String(length=200), nullable=True),
    sa.Column('bank_name', sa.String(length=200), nullable=True),
    sa.Column('bank_account_no', sa.String(length=64), nullable=True),
    sa.Column('settled_on', sa.Date(), nullable=False),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.Column('created_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount_fen > 0', name=op.f('ck_settlements_amount_positive')),
    sa.CheckConstraint('invoice_amount_fen IS NULL OR invoice_amount_fen >= 0',
        name=op.f('ck_settlements_invoice_not_negative')),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], name=op.f('fk_settlements_clinic_id_clinics')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_settlements'))
    )
    with op.batch_alter_table('settlements', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_settlements_clinic_id'), ['clinic_id'], unique=False)

    op.create_table('settlement_coupons',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('settlement_id', sa.Integer(), nullable=False),
    sa.Column('clinic_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('value_fen', sa.Integer(), nullable=False),
    sa.Column('issued_on', sa.Date(), nullable=False),
    sa.Column('expires_on', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('value_fen > 0', name=op.f('ck_settlement_coupons_value_positive')),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], name=op.f('fk_settlement_coupons_clinic_id_clinics')),
    sa.ForeignKeyConstraint(['settlement_id'], ['settlements.id'],
        name=op.f('fk_settlement_coupons_settlement_id_settlements')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_settlement_coupons')),
    sa.UniqueConstraint('code', name=op.f('uq_settlement_coupons_code')),
    sa.UniqueConstraint('settlement_id', name=op.f('uq_settlement_coupons_settlement_id'))
    )
    with op.batch_alter_table('settlement_coupons', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_settlement_coupons_clinic_id'), ['clinic_id'], unique=False)

    op.create_table('statements',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('clinic_id', sa.Integer(), nullable=False),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('line_count', sa.Integer(), nullable=False),
    sa.Column('total_fen', sa.Integer(), nullable=False),
    sa.Column('generated_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('generated_by', sa.String(length=100), nullable=False),
    sa.Column('checked_at', app.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('checked_by', sa.String(length=100), nullable=True),
    sa.Column('settlement_id', sa.Integer(), nullable=True),
    sa.Column('settled_at', app.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('line_count >= 0 AND total_fen >= 0', name=op.f('ck_statements_totals_not_negative')),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], name=op.f('fk_statements_clinic_id_clinics')),
    sa.ForeignKeyConstraint(['settlement_id'], ['settlements.id'],
        name=op.f('fk_statements_settlement_id_settlements')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_statements')),
    sa.UniqueConstraint('clinic_id', 'channel', 'month', name=op.f('uq_statements_clinic_id_channel_month'))
    )
    with op.batch_alter_table('statements', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_statements_clinic_id'), ['clinic_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_statements_settlement_id'), ['settlement_id'], unique=False)

    op.create_table('statement_lines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('statement_id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('order_no', sa.String(length=32), nullable=False),
    sa.Column('out_trade_no', sa.String(length=64), nullable=True),
    sa.Column('channel_trade_no', sa.String(length=64), nullable=True),
    sa.Column('patient_name', sa.String(length=100), nullable=False),
    sa.Column('patient_phone', sa.String(length=32), nullable=True),
    sa.Column('item_name', sa.String(length=200), nullable=False),
    sa.Column('appointment_at', app.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('redeemed_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('purchase_price_fen', sa.Integer(), nullable=False),
    sa.Column('amount_fen', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_statement_lines_order_id_orders')),
    sa.ForeignKeyConstraint(['statement_id'], ['statements.id'],
        name=op.f('fk_statement_lines_statement_id_statements')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_statement_lines')),
    sa.UniqueConstraint('statement_id', 'order_id', name=op.f('uq_statement_lines_statement_id_order_id'))
    )
    with op.batch_alter_table('statement_lines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_statement_lines_statement_id'), ['statement_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('statement_lines', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_statement_lines_statement_id'))

    op.drop_table('statement_lines')
    with op.batch_alter_table('statements', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_statements_settlement_id'))
        batch_op.drop_index(batch_op.f('ix_statements_clinic_id'))

    op.drop_table('statements')
    with op.batch_alter_table('settlement_coupons', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_settlement_coupons_clinic_id'))

    op.drop_table('settlement_coupons')
    with op.batch_alter_table('settlements', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_settlements_clinic_id'))

    op.drop_table('settlements')
