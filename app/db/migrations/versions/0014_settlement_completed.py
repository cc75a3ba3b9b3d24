"""Settlement completed: purchase price snapshots on orders, payouts, invoices, coupon use, reconciliation claims

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06

- `orders.purchase_price_fen`: a platform-collected booking keeps its item's channel purchase price as it was
  when the order was made. Existing platform-collected bookings get their item's price of today (the best there
  is); the clinic's own orders keep NULL.
- `settlements.bank_serial_no, paid_at, paid_by`: the operator's cash payout.
- `settlement_invoices`: the invoice of a cash settlement (title, tax number, status, number); every existing
  cash settlement gets one, awaited.
- `settlement_coupons.used_at, used_by`; a coupon's unused state is named `unused` (it was `issued`).
- `reconciliation_claims`: what the platform claims from a channel after `trust_platform`.
"""
import json

import sqlalchemy as sa
from alembic import op

import app.db.types

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('orders', schema=None) as batch_op:
        # A plain ADD COLUMN: a check constraint would make SQLite rebuild the orders table, which the
        # tables referring to it forbid. The item's own validation keeps purchase prices at 0 or more.
        batch_op.add_column(sa.Column('purchase_price_fen', sa.Integer(), nullable=True))
    _snapshot_purchase_prices()
    with op.batch_alter_table('settlements', schema=None) as batch_op:
        batch_op.add_column(sa.Column('bank_serial_no', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('paid_at', app.db.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('paid_by', sa.String(length=100), nullable=True))
    op.create_table('settlement_invoices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('settlement_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('tax_no', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('invoice_no', sa.String(length=64), nullable=True),
    sa.Column('received_at', app.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('received_by', sa.String(length=100), nullable=True),
    sa.Column('created_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['settlement_id'], ['settlements.id'],
        name=op.f('fk_settlement_invoices_settlement_id_settlements')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_settlement_invoices')),
    sa.UniqueConstraint('settlement_id', name=op.f('uq_settlement_invoices_settlement_id'))
    )
    op.execute("INSERT INTO settlement_invoices (settlement_id, title, tax_no, status, created_at) "
               "SELECT id, '', '', 'awaiting', created_at FROM settlements WHERE method = 'cash'")
    with op.batch_alter_table('settlement_coupons', schema=None) as batch_op:
        batch_op.add_column(sa.Column('used_at', app.db.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('used_by', sa.String(length=100), nullable=True))
    op.execute("UPDATE settlement_coupons SET status = 'unused' WHERE status = 'issued'")
    op.create_table('reconciliation_claims',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('discrepancy_id', sa.Integer(), nullable=False),
    sa.Column('clinic_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('discrepancy_type', sa.String(length=32), nullable=False),
    sa.Column('ref', sa.String(length=128), nullable=False),
    sa.Column('amount_fen', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=False),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.Column('created_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('settled_at', app.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('settled_by', sa.String(length=100), nullable=True),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], name=op.f('fk_reconciliation_claims_clinic_id_clinics')),
    sa.ForeignKeyConstraint(['discrepancy_id'], ['reconciliation_discrepancies.id'],
        name=op.f('fk_reconciliation_claims_discrepancy_id_reconciliation_discrepancies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reconciliation_claims')),
    sa.UniqueConstraint('discrepancy_id', name=op.f('uq_reconciliation_claims_discrepancy_id'))
    )
    with op.batch_alter_table('reconciliation_claims', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reconciliation_claims_clinic_id'), ['clinic_id'], unique=False)


def _snapshot_purchase_prices() -> None:
    """Platform-collected bookings made before the snapshot existed: their item's purchase price of today."""
    bind = op.get_bind()
    items = bind.execute(sa.text("SELECT id, purchase_price_fen FROM items WHERE collected_by = 'platform'")).all()
    for item_id, prices in items:
        prices = json.loads(prices) if isinstance(prices, str) else (prices or {})
        for channel, price in prices.items():
            bind.execute(sa.text("UPDATE orders SET purchase_price_fen = :price WHERE item_id = :item_id "
                                 "AND channel = :channel AND type = 'booking' AND purchase_price_fen IS NULL"),
                         {"price": int(price), "item_id": item_id, "channel": channel})


def downgrade() -> None:
    with op.batch_alter_table('reconciliation_claims', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reconciliation_claims_clinic_id'))
    op.drop_table('reconciliation_claims')
    op.execute("UPDATE settlement_coupons SET status = 'issued' WHERE status = 'unused'")
    with op.batch_alter_table('settlement_coupons', schema=None) as batch_op:
        batch_op.drop_column('used_by')
        batch_op.drop_column('used_at')
    op.drop_table('settlement_invoices')
    with op.batch_alter_table('settlements', schema=None) as batch_op:
        batch_op.drop_column('paid_by')
        batch_op.drop_column('paid_at')
        batch_op.drop_column('bank_serial_no')
    # Not through batch mode: SQLite would rebuild the orders table, which the tables referring to it forbid.
    op.execute("ALTER TABLE orders DROP COLUMN purchase_price_fen")
