"""The machinery under every money path: one conditional status write with its event, the outbox's table of
write kinds, and the dispatcher's leases, on PostgreSQL."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.db.models import HisOutbox, PaymentAttempt, StatusEvent
from app.db.types import utcnow
from app.domain.errors import InvalidTransition
from app.domain.payments import PaymentStatus
from app.services.common.status import set_status
from app.services.his import record_write, send
from app.services.his.delivery import UnknownWriteKind
from app.services.payments import pay_order
from tests.services.helpers import attempt_of, new_clinic, new_holder, place_topup, writes
from workers.dispatcher import lease_spec


def test_of_two_writers_that_read_the_same_status_only_the_first_moves_the_record(rt, world):
    clinic = new_clinic(rt)
    holder = new_holder(rt, world, clinic)
    out_trade_no = pay_order(rt, holder.principal, place_topup(rt, holder, 1000), "127.0.0.1").out_trade_no
    attempt_id = attempt_of(rt, out_trade_no).id

    with rt.db.session() as first, rt.db.session() as second:
        mine, theirs = first.get(PaymentAttempt, attempt_id), second.get(PaymentAttempt, attempt_id)
        assert set_status(first, mine, PaymentStatus.CLOSED, reason="expired", closed_at=utcnow())
        first.commit()
        # The second read the attempt pending too; its write finds it moved and changes nothing.
        assert not set_status(second, theirs, PaymentStatus.CLOSED, reason="expired again", closed_at=utcnow())
    with rt.db.session() as session:
        moves = session.scalar(select(func.count(StatusEvent.id)).where(StatusEvent.record_type == "payment attempt",
                                                                        StatusEvent.record_id == attempt_id))
        assert (session.get(PaymentAttempt, attempt_id).status, moves) == ("closed", 1)
        with pytest.raises(InvalidTransition):
            set_status(session, session.get(PaymentAttempt, attempt_id), PaymentStatus.PENDING, reason="undo")


def test_a_write_of_a_kind_nobody_registered_is_refused_and_stays_owed(rt, world):
    clinic = new_clinic(rt)
    with rt.db.session() as session:
        row = record_write(session, clinic_id=clinic.id, kind="parcel_delivery", key=f"{clinic.code}:parcel",
                           payload={})
        session.flush()
        row_id = row.id
    with pytest.raises(UnknownWriteKind, match="parcel_delivery"):
        send(rt, row_id)
    [owed] = writes(rt, clinic)
    assert (owed.status, owed.attempts) == ("pending", 0) and world.his.calls == []


def test_a_due_write_is_leased_to_one_dispatcher_until_its_lease_ends(rt, world):
    clinic = new_clinic(rt)
    with rt.db.session() as session:
        row = record_write(session, clinic_id=clinic.id, kind="recharge", key=f"{clinic.code}:lease",
                           payload={"card_no": "X", "amount_fen": 1, "order_no": "T1"})
        session.flush()
        row_id = row.id
    spec, now = lease_spec("his_outbox"), utcnow()
    with rt.db.session() as first, rt.db.session() as second:
        assert row_id in spec.due_ids(first, now, 100_000)
        assert spec.lease(first, [row_id], now + timedelta(seconds=120)) == [row_id]
        first.commit()
        assert spec.lease(second, [row_id], now + timedelta(seconds=120)) == []
    with rt.db.session() as session:
        assert row_id not in spec.due_ids(session, utcnow(), 100_000)
        assert session.get(HisOutbox, row_id).next_attempt_at > utcnow() + timedelta(seconds=100)
