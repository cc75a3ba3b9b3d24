"""Live events for staff, on the use cases with the fakes and the session's real Redis: published to the clinic's
stream only once the transaction that caused them committed, never for one that rolled back, and a Redis outage
costs the notice, never the payment."""
from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import pytest
from redis import Redis
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from app import live_events
from app.db.models import Clinic, HisOutbox, Item, ItemInventory, Order, Slot
from app.domain import orders as o
from app.his import HisUnavailable
from app.services.booking import orders
from app.services.his import send
from tests.services.helpers import OwnClinic, new_clinic, new_holder, pay, place_topup, signed


@pytest.fixture()
def live_rt(world, redis_url):
    """A Runtime on the session's Redis, with streams of its own (a prefix no other test uses)."""
    return world.runtime(REDIS_URL=redis_url, QUEUE_PREFIX=f"live{secrets.token_hex(4)}")


def _stream(rt, clinic_id: int) -> list[dict]:
    redis = Redis.from_url(rt.settings.REDIS_URL)
    entries = redis.xrange(live_events.stream_key(rt.settings.QUEUE_PREFIX, clinic_id))
    redis.close()
    return [{k.decode(): v.decode() for k, v in fields.items()} for _id, fields in entries]


def _booking(rt, world, clinic: OwnClinic, holder) -> str:
    with rt.db.session() as session:
        item = Item(clinic_id=clinic.id, code=f"S{secrets.token_hex(3)}", name="洁牙套餐", price_fen=2000)
        session.add(item)
        session.flush()
        session.add(ItemInventory(item_id=item.id, channel=holder.principal.channel, quantity=10, reserved=0))
        starts = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
        slot = Slot(item_id=item.id, starts_at=starts, ends_at=starts + timedelta(hours=1), capacity=2, reserved=0)
        session.add(slot)
        session.flush()
        item_id, slot_id = item.id, slot.id
    return orders.create_order(rt, signed(holder.principal), {"type": "booking", "item_id": item_id, "slot_id": slot_id,
                                                      "patient_id": holder.patient_id,
                                                      "channel": holder.principal.channel})["order_no"]


def test_a_paid_booking_is_announced_to_its_clinic_only_after_the_payment_committed(live_rt, world):
    rt = live_rt
    clinic, other = new_clinic(rt), new_clinic(rt)
    holder = new_holder(rt, world, clinic)
    order_no = _booking(rt, world, clinic, holder)
    assert _stream(rt, clinic.id) == []
    pay(rt, world, holder, order_no)

    [event] = _stream(rt, clinic.id)
    assert event["type"] == "booking_paid"
    data = live_events.read(Redis.from_url(rt.settings.REDIS_URL), rt.settings.QUEUE_PREFIX, {clinic.id: "0-0"},
                            block_ms=10)[0].data
    assert data["order_no"] == order_no and data["item"] == "洁牙套餐" and data["amount_fen"] == 2000
    assert _stream(rt, other.id) == []


def test_a_topup_or_bill_payment_is_not_a_booking_to_confirm(live_rt, world):
    rt = live_rt
    clinic = new_clinic(rt)
    holder = new_holder(rt, world, clinic)
    pay(rt, world, holder, place_topup(rt, holder, 5000))
    assert _stream(rt, clinic.id) == []


def test_nothing_is_published_for_a_transaction_or_savepoint_that_rolled_back(live_rt):
    rt = live_rt
    with rt.db.session() as session:
        clinic_id = session.scalar(select(Clinic.id).limit(1))
    with pytest.raises(RuntimeError), rt.db.session() as session:
        live_events.announce(session, clinic_id, live_events.BOOKING_PAID, {"order_no": "ROLLED-BACK"})
        raise RuntimeError("the use case failed after announcing")
    with rt.db.session() as session:
        live_events.announce(session, clinic_id, live_events.BOOKING_PAID, {"order_no": "KEPT"})
        try:
            with session.begin_nested():
                live_events.announce(session, clinic_id, live_events.LATE_PAYMENT, {"order_no": "IN-SAVEPOINT"})
                session.execute(update(Clinic).where(Clinic.id == clinic_id).values(code=None))  # NOT NULL
        except IntegrityError:
            pass
        with session.begin_nested():  # a savepoint released is not the commit: nothing is published yet
            live_events.announce(session, clinic_id, live_events.BOOKING_PAID, {"order_no": "AFTER-SAVEPOINT"})
        assert _stream(rt, clinic_id) == []
    published = live_events.read(Redis.from_url(rt.settings.REDIS_URL), rt.settings.QUEUE_PREFIX,
                                 {clinic_id: "0-0"}, block_ms=10)
    assert [e.data["order_no"] for e in published] == ["KEPT", "AFTER-SAVEPOINT"]


def test_with_redis_down_the_payment_is_recorded_and_only_the_notice_is_lost(rt, world, caplog):
    """The default services Runtime points at a Redis that is not there."""
    clinic = new_clinic(rt)
    holder = new_holder(rt, world, clinic)
    order_no = _booking(rt, world, clinic, holder)
    with caplog.at_level("WARNING", logger="app.live_events"):
        pay(rt, world, holder, order_no)
    with rt.db.session() as session:
        assert session.scalar(select(Order.status).where(Order.order_no == order_no)) == o.PAID
    assert any("live events not published" in r.getMessage() and "booking_paid" in r.getMessage()
               for r in caplog.records)


def test_a_his_write_flagged_after_the_horizon_is_announced(live_rt, world):
    rt = live_rt
    clinic = new_clinic(rt)
    holder = new_holder(rt, world, clinic)
    order_no = place_topup(rt, holder, 3000)
    pay(rt, world, holder, order_no)
    with rt.db.session() as session:
        order_id = session.scalar(select(Order.id).where(Order.order_no == order_no))
        row = session.scalar(select(HisOutbox).where(HisOutbox.order_id == order_id))
        session.execute(update(HisOutbox).where(HisOutbox.id == row.id)
                        .values(created_at=row.created_at - timedelta(days=2)))
        row_id = row.id
    world.his.fail_next("recharge", HisUnavailable("the HIS is down"))
    assert send(rt, row_id) == "flagged"
    flagged = [e for e in live_events.read(Redis.from_url(rt.settings.REDIS_URL), rt.settings.QUEUE_PREFIX,
                                           {clinic.id: "0-0"}, block_ms=10) if e.type == "his_write_flagged"]
    assert [(e.data["kind"], e.data["order_no"]) for e in flagged] == [("recharge", order_no)]
