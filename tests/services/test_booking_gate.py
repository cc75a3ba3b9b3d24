"""The booking admission gate on the use cases, the services database and the session's real Redis: sold-out
answers without database work, rebuilt under a lock after Redis lost it, places given back when the database
refuses after the gate admitted, drained when the database says full, places of expired bookings returned, and
the database deciding alone when Redis is down. Plus the fairness rules (one booking per patient, item and
day; a user's daily cap), also under concurrency."""
from __future__ import annotations

import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from redis import Redis
from sqlalchemy import event, func, select, update

from app.db.models import Item, ItemInventory, Order, Slot
from app.domain.errors import Conflict, NotFound
from app.services.booking import orders
from app.services.booking.gate import rebuild
from app.services.clinics import schedules
from app.services.clinics.inventory import set_inventory
from app.services.common.principals import StaffPrincipal
from tests.services.helpers import expire_unpaid, new_clinic, new_holder, signed


@pytest.fixture()
def gate_rt(world, redis_url):
    """A Runtime on the session's Redis, with gate keys of its own (a prefix no other test uses)."""
    return world.runtime(REDIS_URL=redis_url, QUEUE_PREFIX=f"gate{secrets.token_hex(4)}")


def _slots(rt, clinic, capacity: int, count: int = 1, inventory: int = 100, days: int = 2) -> tuple[int, list[int]]:
    with rt.db.session() as session:
        item = Item(clinic_id=clinic.id, code=f"G{secrets.token_hex(3)}", name="专家号", price_fen=5000)
        session.add(item)
        session.flush()
        session.add(ItemInventory(item_id=item.id, channel="wechat", quantity=inventory, reserved=0))
        first = (datetime.now(UTC) + timedelta(days=days)).replace(minute=0, second=0, microsecond=0)
        slots = [Slot(item_id=item.id, starts_at=first + timedelta(minutes=30 * n),
                      ends_at=first + timedelta(minutes=30 * (n + 1)), capacity=capacity, reserved=0)
                 for n in range(count)]
        session.add_all(slots)
        session.flush()
        return item.id, [slot.id for slot in slots]


def _book(rt, holder, item_id: int, slot_id: int, patient_id: int | None = None) -> dict:
    return orders.create_order(rt, signed(holder.principal), {"type": "booking", "item_id": item_id, "slot_id": slot_id,
                                                      "patient_id": patient_id or holder.patient_id,
                                                      "channel": holder.principal.channel})


def _refusal(rt, holder, item_id: int, slot_id: int, patient_id: int | None = None) -> str:
    with pytest.raises(Conflict) as refused:
        _book(rt, holder, item_id, slot_id, patient_id)
    return refused.value.code


def _left(rt, redis: Redis, slot_id: int) -> int | None:
    value = redis.hget(rt.booking_gate.slot_key(slot_id), "left")
    return None if value is None else int(value)


def _reserved(rt, slot_id: int) -> tuple[int, int]:
    with rt.db.session() as session:
        slot = session.get(Slot, slot_id)
        held = session.scalar(select(func.count()).select_from(Order).where(Order.slot_id == slot_id,
                                                                            Order.active_booking_key.is_not(None)))
        return slot.reserved, held


class _Statements:
    """Counts the SQL statements the Runtime's engine runs while active."""

    def __init__(self, rt) -> None:
        self.engine, self.count = rt.db.engine, 0

    def _seen(self, *_args) -> None:
        self.count += 1

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *_exc) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)


def test_a_sold_out_answer_comes_from_the_gate_without_any_database_work(gate_rt, world, redis):
    rt, clinic = gate_rt, new_clinic(gate_rt)
    item_id, [slot_id] = _slots(rt, clinic, capacity=2)
    for _ in range(2):
        _book(rt, new_holder(rt, world, clinic), item_id, slot_id)
    assert _left(rt, redis, slot_id) == 0
    late = new_holder(rt, world, clinic)
    with _Statements(rt) as statements:
        assert _refusal(rt, late, item_id, slot_id) == "slot_sold_out"
    assert statements.count == 0
    assert _reserved(rt, slot_id) == (2, 2)


def test_the_gate_is_rebuilt_from_the_database_after_redis_lost_it(gate_rt, world, redis):
    rt, clinic = gate_rt, new_clinic(gate_rt)
    item_id, [slot_id] = _slots(rt, clinic, capacity=3)
    _book(rt, new_holder(rt, world, clinic), item_id, slot_id)
    first = rt.booking_gate.generation()
    redis.delete(*redis.keys(f"{rt.booking_gate.prefix}:*"))  # what a Redis restart without persistence leaves

    _book(rt, new_holder(rt, world, clinic), item_id, slot_id)  # finds it unbuilt: rebuilds, then the database
    second = rt.booking_gate.generation()
    assert second is not None and second != first
    assert _left(rt, redis, slot_id) == 1  # 3 places, the first booking counted from the database, not twice
    _book(rt, new_holder(rt, world, clinic), item_id, slot_id)
    assert _left(rt, redis, slot_id) == 0
    assert _refusal(rt, new_holder(rt, world, clinic), item_id, slot_id) == "slot_sold_out"
    assert _reserved(rt, slot_id) == (3, 3)


def test_one_process_rebuilds_at_a_time_and_the_others_use_the_database_meanwhile(gate_rt, world, redis):
    rt, clinic = gate_rt, new_clinic(gate_rt)
    item_id, [slot_id] = _slots(rt, clinic, capacity=2)
    gate = rt.booking_gate
    assert gate.try_lock("another-process", 60)
    _book(rt, new_holder(rt, world, clinic), item_id, slot_id)
    assert gate.generation() is None  # the lock is another's: this process did not build
    assert _reserved(rt, slot_id) == (1, 1)
    gate.unlock("another-process")
    assert rebuild(rt) is not None
    assert rebuild(rt) is None  # built already: nothing to do
    assert _left(rt, redis, slot_id) == 1


def test_the_gate_gets_its_place_back_when_the_database_refuses_after_admitting(gate_rt, world, redis):
    rt, clinic = gate_rt, new_clinic(gate_rt)
    item_id, [morning, afternoon] = _slots(rt, clinic, capacity=5, count=2)
    holder = new_holder(rt, world, clinic)
    _book(rt, holder, item_id, morning)
    _book(rt, new_holder(rt, world, clinic), item_id, afternoon)
    assert _left(rt, redis, afternoon) == 4

    assert _refusal(rt, holder, item_id, afternoon) == "patient_already_booked"  # same patient, item and day
    assert _left(rt, redis, afternoon) == 4  # admitted by the gate, refused by the database: the place is back
    assert _reserved(rt, afternoon) == (1, 1)
    with pytest.raises(NotFound) as refused:
        _book(rt, holder, item_id, afternoon, patient_id=10**9)  # not one of this user's patients
    assert refused.value.code == "patient_not_found"
    assert _left(rt, redis, afternoon) == 4 and _reserved(rt, afternoon) == (1, 1)


def test_the_gate_is_drained_when_the_database_says_the_slot_is_full(gate_rt, world, redis):
    rt, clinic = gate_rt, new_clinic(gate_rt)
    item_id, [slot_id] = _slots(rt, clinic, capacity=2)
    _book(rt, new_holder(rt, world, clinic), item_id, slot_id)
    with rt.db.session() as session:  # a place taken past the gate (as by a process that found it down)
        session.execute(update(Slot).where(Slot.id == slot_id).values(reserved=2))
    assert _left(rt, redis, slot_id) == 1

    assert _refusal(rt, new_holder(rt, world, clinic), item_id, slot_id) == "slot_sold_out"
    assert _left(rt, redis, slot_id) == 0  # not given back: the next request is answered by the gate alone
    late = new_holder(rt, world, clinic)
    with _Statements(rt) as statements:
        assert _refusal(rt, late, item_id, slot_id) == "slot_sold_out"
    assert statements.count == 0


def test_a_place_released_by_expiry_goes_back_to_the_gate_and_is_sold_again(gate_rt, world, redis):
    rt, clinic = gate_rt, new_clinic(gate_rt)
    item_id, [slot_id] = _slots(rt, clinic, capacity=1)
    first = _book(rt, new_holder(rt, world, clinic), item_id, slot_id)
    waiting = new_holder(rt, world, clinic)
    assert _refusal(rt, waiting, item_id, slot_id) == "slot_sold_out"
    expire_unpaid(rt, first["order_no"])
    assert _left(rt, redis, slot_id) == 1

    again = _book(rt, waiting, item_id, slot_id)
    assert again["status"] == "created"
    assert _left(rt, redis, slot_id) == 0 and _reserved(rt, slot_id) == (1, 1)


def test_with_redis_down_the_database_decides_alone(world):
    rt = world.runtime()  # Redis at a port nobody listens on
    clinic = new_clinic(rt)
    item_id, [slot_id] = _slots(rt, clinic, capacity=2)
    for _ in range(2):
        _book(rt, new_holder(rt, world, clinic), item_id, slot_id)
    assert _refusal(rt, new_holder(rt, world, clinic), item_id, slot_id) == "slot_sold_out"
    assert _reserved(rt, slot_id) == (2, 2)


def test_a_crowd_takes_exactly_the_places_there_are(gate_rt, world, redis):
    rt, clinic = gate_rt, new_clinic(gate_rt)
    item_id, slot_ids = _slots(rt, clinic, capacity=3, count=2, inventory=5)
    crowd = [new_holder(rt, world, clinic) for _ in range(20)]

    def attempt(n: int) -> str:
        try:
            _book(rt, crowd[n], item_id, slot_ids[n % 2])
            return "booked"
        except Conflict as exc:
            return exc.code

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(attempt, range(20)))
    # 6 slot places but 5 of the item's wechat stock: the inventory runs out first.
    assert answers.count("booked") == 5
    assert "inventory_sold_out" in answers and set(answers) <= {"booked", "slot_sold_out", "inventory_sold_out"}
    with rt.db.session() as session:
        assert session.scalar(select(ItemInventory.reserved).where(ItemInventory.item_id == item_id)) == 5
        assert sum(session.get(Slot, s).reserved for s in slot_ids) == 5


# --- fairness -------------------------------------------------------------------------------------------

def test_one_booking_per_patient_item_and_day_until_it_is_cancelled(gate_rt, world):
    rt, clinic = gate_rt, new_clinic(gate_rt)
    item_id, [morning, afternoon] = _slots(rt, clinic, capacity=5, count=2)
    holder = new_holder(rt, world, clinic)
    booked = _book(rt, holder, item_id, morning)
    assert _refusal(rt, holder, item_id, afternoon) == "patient_already_booked"
    orders.cancel_order(rt, holder.principal, booked["order_no"], "changed my mind")
    assert _book(rt, holder, item_id, afternoon)["status"] == "created"
    assert _reserved(rt, morning) == (0, 0)
    with rt.db.session() as session:  # the same item another day is another booking
        starts = session.get(Slot, morning).starts_at + timedelta(days=1)
        next_day = Slot(item_id=item_id, starts_at=starts, ends_at=starts + timedelta(minutes=30), capacity=5)
        session.add(next_day)
        session.flush()
        next_day_id = next_day.id
    assert _book(rt, holder, item_id, next_day_id)["status"] == "created"


def test_two_devices_of_one_patient_at_once_get_one_booking(gate_rt, world):
    rt, clinic = gate_rt, new_clinic(gate_rt)
    item_id, slot_ids = _slots(rt, clinic, capacity=10, count=2)
    holder = new_holder(rt, world, clinic)
    start = threading.Barrier(6)

    def device(n: int) -> str:
        start.wait()
        try:
            _book(rt, holder, item_id, slot_ids[n % 2])
            return "booked"
        except Conflict as exc:
            return exc.code

    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(device, range(6)))
    assert sorted(answers) == ["booked"] + ["patient_already_booked"] * 5
    assert sum(_reserved(rt, s)[0] for s in slot_ids) == 1


def test_a_user_books_at_most_the_daily_limit_even_at_once(world, redis_url):
    rt = world.runtime(REDIS_URL=redis_url, QUEUE_PREFIX=f"gate{secrets.token_hex(4)}", BOOKINGS_PER_USER_PER_DAY=2)
    clinic = new_clinic(rt)
    holder = new_holder(rt, world, clinic)
    items = [_slots(rt, clinic, capacity=5) for _ in range(5)]
    start = threading.Barrier(5)

    def book(n: int) -> str:
        start.wait()
        item_id, [slot_id] = items[n]
        try:
            _book(rt, holder, item_id, slot_id)
            return "booked"
        except Conflict as exc:
            return exc.code

    with ThreadPoolExecutor(max_workers=5) as pool:
        answers = list(pool.map(book, range(5)))
    assert sorted(answers) == ["booked"] * 2 + ["booking_limit_reached"] * 3
    assert sum(_reserved(rt, slot_ids[0])[0] for _, slot_ids in items) == 2


def test_a_slot_made_after_the_build_is_loaded_by_its_first_request(gate_rt, world, redis):
    rt, clinic = gate_rt, new_clinic(gate_rt)
    item_id, [old_slot] = _slots(rt, clinic, capacity=2)
    _book(rt, new_holder(rt, world, clinic), item_id, old_slot)  # builds the gate
    new_item, [new_slot] = _slots(rt, clinic, capacity=2)
    assert _left(rt, redis, new_slot) is None

    _book(rt, new_holder(rt, world, clinic), new_item, new_slot)
    assert _left(rt, redis, new_slot) == 1  # loaded from the database, then this request's place taken
    _book(rt, new_holder(rt, world, clinic), new_item, new_slot)
    late = new_holder(rt, world, clinic)
    with _Statements(rt) as statements:
        assert _refusal(rt, late, new_item, new_slot) == "slot_sold_out"
    assert statements.count == 0 and _reserved(rt, new_slot) == (2, 2)


def test_the_gate_tells_another_clinics_user_nothing_about_a_slot(gate_rt, world, redis):
    """An attack: a user of another clinic names this clinic's sold-out slot. The gate answers only for the
    slot's own clinic and item, so the database answers: no such item, never `slot_sold_out`."""
    rt, clinic, other = gate_rt, new_clinic(gate_rt), new_clinic(gate_rt)
    item_id, [slot_id] = _slots(rt, clinic, capacity=1)
    _book(rt, new_holder(rt, world, clinic), item_id, slot_id)
    assert _left(rt, redis, slot_id) == 0
    outsider = new_holder(rt, world, other)
    with pytest.raises(NotFound) as refused:
        _book(rt, outsider, item_id, slot_id)
    assert refused.value.code == "item_not_found"
    assert _reserved(rt, slot_id) == (1, 1) and _left(rt, redis, slot_id) == 0


def test_a_place_given_back_while_redis_was_unreachable_is_not_lost(gate_rt, world, redis):
    rt, clinic = gate_rt, new_clinic(gate_rt)
    item_id, [slot_id] = _slots(rt, clinic, capacity=1)
    first = _book(rt, new_holder(rt, world, clinic), item_id, slot_id)
    assert _left(rt, redis, slot_id) == 0
    # A worker process that cannot reach Redis expires the order: the database frees the place, the gate
    # never hears of it.
    worker = world.runtime(REDIS_URL="redis://127.0.0.1:1/0", QUEUE_PREFIX=rt.settings.QUEUE_PREFIX,
                           BOOKING_GATE_RETRY_S=0)
    expire_unpaid(worker, first["order_no"])
    assert _left(rt, redis, slot_id) == 0 and _reserved(rt, slot_id) == (0, 0)

    # Redis answers that process again (the client reconnects at the right address): its first call marks
    # the gate for a rebuild, which counts the freed place from the database.
    worker.settings.REDIS_URL = rt.settings.REDIS_URL
    del worker.__dict__["redis"]
    assert _book(worker, new_holder(rt, world, clinic), item_id, slot_id)["status"] == "created"
    assert _left(rt, redis, slot_id) == 0 and _reserved(rt, slot_id) == (1, 1)


def test_an_admin_changing_a_slot_or_the_stock_reaches_the_gate(gate_rt, world, redis):
    rt, clinic = gate_rt, new_clinic(gate_rt)
    admin = StaffPrincipal(user_id=1, username="admin-gate", role="admin", clinic_ids=(clinic.id,))
    item_id, [full] = _slots(rt, clinic, capacity=1)
    _book(rt, new_holder(rt, world, clinic), item_id, full)
    late = new_holder(rt, world, clinic)
    assert _refusal(rt, late, item_id, full) == "slot_sold_out" and _left(rt, redis, full) == 0

    schedules.update_slot(rt, admin, full, {"capacity": 2})
    assert _left(rt, redis, full) is None  # dropped at the commit: the next request reloads it
    assert _book(rt, late, item_id, full)["status"] == "created"
    assert _left(rt, redis, full) == 0 and _reserved(rt, full) == (2, 2)

    closing_item, [closing] = _slots(rt, clinic, capacity=2)
    _book(rt, new_holder(rt, world, clinic), closing_item, closing)
    assert _left(rt, redis, closing) == 1
    schedules.update_slot(rt, admin, closing, {"closed": True})
    assert _left(rt, redis, closing) is None
    assert _refusal(rt, new_holder(rt, world, clinic), closing_item, closing) == "slot_closed"
    assert _left(rt, redis, closing) is None and _reserved(rt, closing) == (1, 1)  # a closed slot is not loaded

    more_item, [more] = _slots(rt, clinic, capacity=5)
    _book(rt, new_holder(rt, world, clinic), more_item, more)
    set_inventory(rt, admin, more_item, [{"channel": "wechat", "quantity": 1}])  # the one sold is all there is
    assert _refusal(rt, new_holder(rt, world, clinic), more_item, more) == "inventory_sold_out"
    assert _reserved(rt, more) == (1, 1)
