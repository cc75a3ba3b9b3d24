"""Status events of every money record; extra charges sent through the HIS outbox; refund origins fit

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01

`status_events` records each status change a service makes (orders keep `order_events`); like the audit
trail its rows are insert-only, enforced by the database.

An extra charge's HIS bill becomes a HIS outbox write of kind `extra_charge` under the charge's own
idempotency key, so one retry and flag mechanism serves every HIS write. Each existing charge gets its
outbox row with the state it had (pending, created -> sent, rejected, flagged), its attempts and its
next attempt; the charge keeps what was charged and the bill id. A charge that already has its outbox
row is left alone, so the data step can run twice.

`refund_requests.origin` widens from 16 to 32 characters: `duplicate_payment` (17) did not fit, so on
PostgreSQL the refund of a second payment failed where it was recorded.
"""
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

import app.db.types

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

_INSERT_ONLY = "status_events rows are insert-only"
_POSTGRES_GUARD = [
    f"""CREATE FUNCTION status_events_insert_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION '{_INSERT_ONLY}'; END $$""",
    "CREATE TRIGGER status_events_no_change BEFORE UPDATE OR DELETE ON status_events"
    " FOR EACH ROW EXECUTE FUNCTION status_events_insert_only()",
    "CREATE TRIGGER status_events_no_truncate BEFORE TRUNCATE ON status_events"
    " FOR EACH STATEMENT EXECUTE FUNCTION status_events_insert_only()",
]
_SQLITE_GUARD = [
    f"CREATE TRIGGER status_events_no_{change} BEFORE {change.upper()} ON status_events"
    f" BEGIN SELECT RAISE(ABORT, '{_INSERT_ONLY}'); END"
    for change in ("update", "delete")
]

# extra_charges.status -> his_outbox.status, and back.
_OUTBOX_STATUS = {"pending": "pending", "created": "sent", "rejected": "rejected", "flagged": "flagged"}
_CHARGE_STATUS = {outbox: charge for charge, outbox in _OUTBOX_STATUS.items()}
_MOVED_COLUMNS = ("status", "attempts", "next_attempt_at", "last_error", "sent_at")

_when = app.db.types.UTCDateTime(timezone=True)
_orders = sa.table("orders", sa.column("id", sa.Integer), sa.column("clinic_id", sa.Integer))
_outbox = sa.table(
    "his_outbox", sa.column("id", sa.Integer), sa.column("clinic_id", sa.Integer), sa.column("order_id", sa.Integer),
    sa.column("kind", sa.String), sa.column("idempotency_key", sa.String), sa.column("payload", app.db.types.JsonDoc),
    sa.column("status", sa.String), sa.column("attempts", sa.Integer), sa.column("next_attempt_at", _when),
    sa.column("last_error", sa.String), sa.column("his_record_id", sa.String), sa.column("created_at", _when),
    sa.column("sent_at", _when))
_charges = sa.table(
    "extra_charges", sa.column("id", sa.Integer), sa.column("order_id", sa.Integer), sa.column("name", sa.String),
    sa.column("amount_fen", sa.Integer), sa.column("card_no", sa.String), sa.column("idempotency_key", sa.String),
    sa.column("bill_id", sa.String), sa.column("created_at", _when), sa.column("status", sa.String),
    sa.column("attempts", sa.Integer), sa.column("next_attempt_at", _when), sa.column("last_error", sa.String),
    sa.column("sent_at", _when))


def _move_charges_into_outbox() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(_charges, _orders.c.clinic_id.label("clinic_id"))
        .join(_orders, _orders.c.id == _charges.c.order_id)
        .where(~sa.exists().where(_outbox.c.idempotency_key == _charges.c.idempotency_key))
        .order_by(_charges.c.id)).mappings().all()
    if rows:
        op.bulk_insert(_outbox, [{
            "clinic_id": row["clinic_id"], "order_id": row["order_id"], "kind": "extra_charge",
            "idempotency_key": row["idempotency_key"],
            "payload": {"card_no": row["card_no"], "title": row["name"], "amount_fen": row["amount_fen"]},
            "status": _OUTBOX_STATUS[row["status"]], "attempts": row["attempts"],
            "next_attempt_at": row["next_attempt_at"], "last_error": row["last_error"], "his_record_id": row["bill_id"],
            "created_at": row["created_at"], "sent_at": row["sent_at"],
        } for row in rows])


def _move_charges_back() -> None:
    bind = op.get_bind()
    writes = bind.execute(sa.select(_outbox).where(_outbox.c.kind == "extra_charge")).mappings().all()
    for write in writes:
        bind.execute(_charges.update().where(_charges.c.idempotency_key == write["idempotency_key"]).values(
            status=_CHARGE_STATUS[write["status"]], attempts=write["attempts"],
            next_attempt_at=write["next_attempt_at"], last_error=write["last_error"], sent_at=write["sent_at"]))
    bind.execute(_outbox.delete().where(_outbox.c.kind == "extra_charge"))


@contextmanager
def _sqlite_table_rebuilds():
    """SQLite changes a column's type by rebuilding the table, which fails while other tables' foreign keys
    point at it: end alembic's transaction, stop enforcing, rebuild, and check every reference still holds
    (as in revision 0008)."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        yield
        return
    bind.exec_driver_sql("COMMIT")
    bind.exec_driver_sql("PRAGMA foreign_keys=OFF")
    bind.exec_driver_sql("BEGIN IMMEDIATE")
    yield
    broken = bind.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RuntimeError(f"foreign keys broken by the table rebuild: {broken[:5]}")


def _origin_length(old: int, new: int) -> None:
    with _sqlite_table_rebuilds():
        with op.batch_alter_table('refund_requests', schema=None) as batch_op:
            batch_op.alter_column('origin', existing_type=sa.String(length=old), type_=sa.String(length=new),
                                  existing_nullable=False)


def upgrade() -> None:
    op.create_table('status_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('record_type', sa.String(length=32), nullable=False),
    sa.Column('record_id', sa.Integer(), nullable=False),
    sa.Column('from_status', sa.String(length=24), nullable=False),
    sa.Column('to_status', sa.String(length=24), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_status_events'))
    )
    with op.batch_alter_table('status_events', schema=None) as batch_op:
        batch_op.create_index('ix_status_events_record', ['record_type', 'record_id'], unique=False)
    for statement in _POSTGRES_GUARD if op.get_bind().dialect.name == "postgresql" else _SQLITE_GUARD:
        op.execute(statement)

    _move_charges_into_outbox()
    with op.batch_alter_table('extra_charges', schema=None) as batch_op:
        batch_op.drop_index('ix_extra_charges_status_next_attempt_at')
        for column in _MOVED_COLUMNS:
            batch_op.drop_column(column)
    _origin_length(16, 32)


def downgrade() -> None:
    _origin_length(32, 16)
    with op.batch_alter_table('extra_charges', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status', sa.String(length=16), nullable=False, server_default='pending'))
        batch_op.add_column(sa.Column('attempts', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('next_attempt_at', app.db.types.UTCDateTime(timezone=True), nullable=False,
                                      server_default=sa.func.current_timestamp()))
        batch_op.add_column(sa.Column('last_error', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('sent_at', app.db.types.UTCDateTime(timezone=True), nullable=True))
    _move_charges_back()
    with op.batch_alter_table('extra_charges', schema=None) as batch_op:
        for column in ('status', 'attempts', 'next_attempt_at'):
            batch_op.alter_column(column, server_default=None)
        batch_op.create_index('ix_extra_charges_status_next_attempt_at', ['status', 'next_attempt_at'], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER status_events_no_truncate ON status_events")
        op.execute("DROP TRIGGER status_events_no_change ON status_events")
        op.execute("DROP FUNCTION status_events_insert_only()")
    else:
        op.execute("DROP TRIGGER status_events_no_delete")
        op.execute("DROP TRIGGER status_events_no_update")
    with op.batch_alter_table('status_events', schema=None) as batch_op:
        batch_op.drop_index('ix_status_events_record')
    op.drop_table('status_events')
