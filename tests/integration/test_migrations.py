"""The models and the Alembic migrations describe the same schema, on PostgreSQL and SQLite."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

import app.db.models  # noqa: F401
from app.db.base import Base
from app.db.migrate import upgrade
from app.db.session import make_engine


def _differences(url: str) -> list:
    engine = make_engine(url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    return diff


def test_postgres_schema_matches_models(database_url):
    assert _differences(database_url) == []
    engine = make_engine(database_url)
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_sqlite_migrations_apply_and_match_models(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url)
    assert _differences(url) == []
    engine = make_engine(url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    engine.dispose()


def test_0009_moves_each_extra_charge_into_the_his_outbox_and_back(tmp_path):
    """An extra charge's state (pending with its retries, created with its bill) becomes its outbox write under
    the same key; downgrading puts it back on the charge."""
    from alembic import command
    from sqlalchemy import text

    from app.db.migrate import alembic_config

    url = f"sqlite:///{tmp_path / 'm9.db'}"
    upgrade(url, "0008")
    engine = make_engine(url)
    now = "2026-11-30 02:00:00.000000"
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO clinics (id, code, name, his_base_url, his_key_id, his_secret, created_at) "
                          "VALUES (1, 'c1', 'C1', 'https://his.example.test', 'k1', 'plain-secret-16chars', :now)"),
                     {"now": now})
        conn.execute(text("INSERT INTO orders (id, order_no, clinic_id, type, status, channel, amount_fen,"
                          " refunded_fen, description, expires_at, created_at, updated_at) VALUES (1, 'B1', 1,"
                          " 'booking', 'redeemed', 'wechat', 100, 0, 'x', :now, :now, :now)"), {"now": now})
        for seq, status, attempts, bill in ((1, "pending", 2, None), (2, "created", 1, "BILL9")):
            conn.execute(text(
                "INSERT INTO extra_charges (order_id, seq, name, amount_fen, card_no, idempotency_key, status, bill_id,"
                " attempts, next_attempt_at, last_error, created_at, sent_at) VALUES (1, :seq, :name, :fen, 'D1',"
                " :key, :status, :bill, :attempts, :now, :error, :now, :sent)"),
                {"seq": seq, "name": f"item {seq}", "fen": 100 * seq, "key": f"B1:extra:{seq}", "status": status,
                 "bill": bill, "attempts": attempts, "now": now, "error": "503" if bill is None else None,
                 "sent": now if bill else None})
    engine.dispose()

    upgrade(url)
    engine = make_engine(url)
    with engine.connect() as conn:
        moved = conn.execute(text("SELECT idempotency_key, kind, status, attempts, last_error, his_record_id, payload,"
                                  " clinic_id, order_id FROM his_outbox ORDER BY idempotency_key")).all()
        columns = {c["name"] for c in inspect(conn).get_columns("extra_charges")}
    engine.dispose()
    assert [(r.idempotency_key, r.kind, r.status, r.attempts, r.last_error, r.his_record_id, r.clinic_id, r.order_id)
            for r in moved] == [("B1:extra:1", "extra_charge", "pending", 2, "503", None, 1, 1),
                                ("B1:extra:2", "extra_charge", "sent", 1, None, "BILL9", 1, 1)]
    assert '"title": "item 1"' in moved[0].payload and '"amount_fen": 100' in moved[0].payload
    assert "status" not in columns and "bill_id" in columns

    command.downgrade(alembic_config(url), "0008")
    engine = make_engine(url)
    with engine.connect() as conn:
        back = conn.execute(text("SELECT idempotency_key, status, attempts FROM extra_charges ORDER BY seq")).all()
        left = conn.execute(text("SELECT count(*) FROM his_outbox")).scalar()
    engine.dispose()
    assert [tuple(r) for r in back] == [("B1:extra:1", "pending", 2), ("B1:extra:2", "created", 1)] and left == 0


def test_0010_keeps_existing_clinics_apps_items_and_slots_working_as_before(tmp_path):
    """Existing rows come out active, clinic-owned, clinic-collected items offered on both channels, visible open
    slots; an operator can exist afterwards; downgrading removes what 0010 added."""
    from alembic import command
    from sqlalchemy import text

    from app.db.migrate import alembic_config

    url = f"sqlite:///{tmp_path / 'm10.db'}"
    upgrade(url, "0009")
    engine = make_engine(url)
    now = "2026-12-01 02:00:00.000000"
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO clinics (id, code, name, his_base_url, his_key_id, his_secret, created_at) "
                          "VALUES (1, 'c1', 'C1', 'https://his.example.test', 'k1', 'plain-secret-16chars', :now)"),
                     {"now": now})
        conn.execute(text("INSERT INTO merchant_accounts (id, clinic_id, channel, app_id, sign_type, api_base_url,"
                          " refund_window_days, active, created_at) VALUES (1, 1, 'alipay', '2021000000000001',"
                          " 'RSA2', 'https://openapi.alipay.com/gateway.do', 365, 1, :now)"), {"now": now})
        conn.execute(text("INSERT INTO items (id, clinic_id, code, name, price_fen, active, created_at) VALUES"
                          " (1, 1, 'I1', 'Item', 100, 1, :now)"), {"now": now})
        conn.execute(text("INSERT INTO slots (id, item_id, starts_at, ends_at, capacity, reserved) VALUES"
                          " (1, 1, :now, :now, 3, 1)"), {"now": now})
    engine.dispose()

    upgrade(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        clinic = conn.execute(text("SELECT active, his_checked_at FROM clinics")).one()
        account = conn.execute(text("SELECT owner, clinic_id, previous_api_key FROM merchant_accounts")).one()
        item = conn.execute(text("SELECT kind, collected_by, channels, purchase_price_fen FROM items")).one()
        slot = conn.execute(text("SELECT closed, release_at, reserved FROM slots")).one()
        conn.execute(text("INSERT INTO staff_users (username, password_hash, role, active, created_at) VALUES"
                          " ('op', 'x', 'operator', 1, :now)"), {"now": now})
        conn.execute(text("INSERT INTO clinics (code, name, created_at) VALUES ('bare', 'No HIS yet', :now)"),
                     {"now": now})
    engine.dispose()
    assert tuple(clinic) == (1, None)
    assert tuple(account) == ("clinic", 1, None)
    assert (item.kind, item.collected_by, item.purchase_price_fen) == ("item", "clinic", None)
    assert item.channels in ('["wechat", "alipay"]', ["wechat", "alipay"])
    assert tuple(slot) == (0, None, 1)

    engine = make_engine(url)
    with engine.begin() as conn:  # a clinic without a HIS cannot exist before 0010
        conn.execute(text("DELETE FROM clinics WHERE code = 'bare'"))
    engine.dispose()
    command.downgrade(alembic_config(url), "0009")
    engine = make_engine(url)
    with engine.connect() as conn:
        columns = {c["name"] for c in inspect(conn).get_columns("items")}
        roles = list(conn.execute(text("SELECT role FROM staff_users")).scalars())
    engine.dispose()
    assert "channels" not in columns and "collected_by" not in columns and roles == []
