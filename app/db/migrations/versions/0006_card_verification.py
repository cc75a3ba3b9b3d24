"""Card binding verification: cards.verified_at and one-time SMS codes

Cards bound before this revision were bound on the holder's name alone; they keep verified_at NULL,
so they must be verified again (SMS code) before they can be read, refunded or paid into.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""
import sqlalchemy as sa
from alembic import op

import app.db.types

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('card_verifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('clinic_id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('card_no', sa.String(length=64), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('holder_matched', sa.Boolean(), nullable=False),
    sa.Column('his_patient_id', sa.String(length=64), nullable=True),
    sa.Column('sent_to', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('tries', sa.Integer(), nullable=False),
    sa.Column('provider_request_id', sa.String(length=64), nullable=True),
    sa.Column('expires_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', app.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('pending', 'used', 'superseded', 'failed')",
        name=op.f('ck_card_verifications_status_known')),
    sa.CheckConstraint('tries >= 0', name=op.f('ck_card_verifications_tries_not_negative')),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], name=op.f('fk_card_verifications_clinic_id_clinics')),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_card_verifications_patient_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_card_verifications'))
    )
    with op.batch_alter_table('card_verifications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_card_verifications_clinic_id'), ['clinic_id'], unique=False)
        batch_op.create_index('ix_card_verifications_patient_card', ['patient_id', 'card_no'], unique=False)

    with op.batch_alter_table('cards', schema=None) as batch_op:
        # No default: every existing binding stays unverified.
        batch_op.add_column(sa.Column('verified_at', app.db.types.UTCDateTime(timezone=True), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('cards', schema=None) as batch_op:
        batch_op.drop_column('verified_at')

    with op.batch_alter_table('card_verifications', schema=None) as batch_op:
        batch_op.drop_index('ix_card_verifications_patient_card')
        batch_op.drop_index(batch_op.f('ix_card_verifications_clinic_id'))

    op.drop_table('card_verifications')
