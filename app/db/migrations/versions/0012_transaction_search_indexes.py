"""Finding any payment: indexes for the transaction search and an order's story; patients' phone_last4

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-10

The transaction search (services/support/transactions.py) lists payments and refunds newest first
(`created_at, id` on both), finds a patient's orders (`orders.patient_id`) from the last 4 digits of their
phone (`patients.phone_last4`, per clinic: a suffix match on the phone itself reads every patient) or from a
card, and an order's story reads the audit events about the order, its payments and refunds
(`audit_events.target_type, target_id`). bench/transactions_search.py measures each shape before and after.

`phone_last4` is filled in for the patients there are; the model keeps it with the phone from then on.
"""
import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('patients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('phone_last4', sa.String(length=4), nullable=True))
    # substr(x, n) is 1-based on both databases; length - 3 is where the last four characters begin.
    op.execute("UPDATE patients SET phone_last4 = substr(phone, length(phone) - 3) WHERE length(phone) >= 4")
    op.execute("UPDATE patients SET phone_last4 = phone WHERE length(phone) < 4")
    with op.batch_alter_table('patients', schema=None) as batch_op:
        batch_op.create_index('ix_patients_clinic_id_phone_last4', ['clinic_id', 'phone_last4'], unique=False)
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.create_index('ix_orders_patient_id', ['patient_id'], unique=False)
    with op.batch_alter_table('payment_attempts', schema=None) as batch_op:
        batch_op.create_index('ix_payment_attempts_created_at_id', ['created_at', 'id'], unique=False)
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.create_index('ix_refunds_created_at_id', ['created_at', 'id'], unique=False)
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index('ix_audit_events_target', ['target_type', 'target_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_events_target')
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.drop_index('ix_refunds_created_at_id')
    with op.batch_alter_table('payment_attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_payment_attempts_created_at_id')
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index('ix_orders_patient_id')
    with op.batch_alter_table('patients', schema=None) as batch_op:
        batch_op.drop_index('ix_patients_clinic_id_phone_last4')
        batch_op.drop_column('phone_last4')
