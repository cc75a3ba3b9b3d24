"""A web process's memory of sold-out answers (app.admission_gate.SoldOutMemo) on the use cases and the session's
real Redis: a crowd's repeated requests for a sold-out slot are answered without a Redis call for the memo's
time, a place another process gives back is sold once that time is up, a change made through this process is
seen at once, and an answer read before such a change is never remembered after it."""
from __future__ import annotations

import secrets

import pytest
from redis import Redis

from app.admission_gate import ADMITTED, SLOT_FULL, Admission, SoldOutMemo
from tests.services.helpers import expire_unpaid, new_clinic, new_holder
from tests.services.test_booking_gate import _book, _left, _refusal, _reserved, _slots

TTL_S = 0.5


class _Clock:
    """Monotonic seconds the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def clock():
    return _Clock()


@pytest.fixture()
def web(world, redis_url, clock):
    """A web process's Runtime whose gate remembers sold-out answers for TTL_S by the test's clock."""
    rt = world.runtime(REDIS_URL=redis_url, QUEUE_PREFIX=f"memo{secrets.token_hex(4)}")
    rt.booking_gate.sold_out_memo = SoldOutMemo(TTL_S, clock=clock)
    return rt


def _lose_the_gate(rt, redis: Redis) -> None:
    """Remove the marker, as a Redis restart would: the next request that asks Redis rebuilds the gate, so the
    marker's absence afterwards shows that nobody asked (whatever else uses this Redis)."""
    redis.delete(rt.booking_gate.marker)


def test_a_sold_out_slot_is_answered_from_memory_and_a_place_given_back_elsewhere_sells_after_it(
        web, world, redis, redis_url, clock):
    clinic = new_clinic(web)
    item_id, [slot_id] = _slots(web, clinic, capacity=1)
    first = _book(web, new_holder(web, world, clinic), item_id, slot_id)
    waiting = new_holder(web, world, clinic)
    assert _refusal(web, waiting, item_id, slot_id) == "slot_sold_out"  # asked Redis, remembered

    _lose_the_gate(web, redis)
    for _ in range(5):
        assert _refusal(web, new_holder(web, world, clinic), item_id, slot_id) == "slot_sold_out"
    assert web.booking_gate.generation() is None  # five answers, and none of them asked Redis

    clock.now += TTL_S
    assert _refusal(web, waiting, item_id, slot_id) == "slot_sold_out"  # asked: rebuilt from the database
    assert web.booking_gate.generation() is not None and _left(web, redis, slot_id) == 0

    # A worker process expires the unpaid booking: the place is back in the database and in Redis, but this
    # process remembers the slot as sold out until its memory of it is TTL_S old.
    worker = world.runtime(REDIS_URL=redis_url, QUEUE_PREFIX=web.settings.QUEUE_PREFIX)
    expire_unpaid(worker, first["order_no"])
    assert _left(web, redis, slot_id) == 1 and _reserved(web, slot_id) == (0, 0)
    clock.now += TTL_S - 0.01
    assert _refusal(web, waiting, item_id, slot_id) == "slot_sold_out"

    clock.now += 0.02
    assert _book(web, waiting, item_id, slot_id)["status"] == "created"
    assert _left(web, redis, slot_id) == 0 and _reserved(web, slot_id) == (1, 1)


def test_a_place_given_back_through_the_same_process_sells_at_once(web, world, redis):
    clinic = new_clinic(web)
    item_id, [slot_id] = _slots(web, clinic, capacity=1)
    first = _book(web, new_holder(web, world, clinic), item_id, slot_id)
    waiting = new_holder(web, world, clinic)
    assert _refusal(web, waiting, item_id, slot_id) == "slot_sold_out"

    expire_unpaid(web, first["order_no"])  # its give-back clears this process's memory
    assert _book(web, waiting, item_id, slot_id)["status"] == "created"  # the clock has not moved
    assert _reserved(web, slot_id) == (1, 1)


def test_with_no_memo_time_every_request_asks_redis(world, redis_url, redis):
    rt = world.runtime(REDIS_URL=redis_url, QUEUE_PREFIX=f"memo{secrets.token_hex(4)}",
                       BOOKING_GATE_SOLD_OUT_MEMO_S=0)
    clinic = new_clinic(rt)
    item_id, [slot_id] = _slots(rt, clinic, capacity=1)
    _book(rt, new_holder(rt, world, clinic), item_id, slot_id)
    for _ in range(3):
        _lose_the_gate(rt, redis)
        assert _refusal(rt, new_holder(rt, world, clinic), item_id, slot_id) == "slot_sold_out"
        assert rt.booking_gate.generation() is not None  # this request asked Redis, and rebuilt the gate


def test_an_answer_read_before_a_change_is_not_remembered_after_it(clock):
    memo = SoldOutMemo(TTL_S, clock=clock)
    request = (1, 2, 3, "wechat")
    version = memo.version  # a request reads Redis: sold out ...
    memo.clear()  # ... while a place is given back through this process
    memo.remember(request, Admission(SLOT_FULL, "g1"), version)
    assert memo.get(request) is None

    memo.remember(request, Admission(ADMITTED, "g1"), memo.version)  # only sold-out answers are remembered
    assert memo.get(request) is None
    memo.remember(request, Admission(SLOT_FULL, "g1"), memo.version)
    assert memo.get(request) == Admission(SLOT_FULL, "g1")
    assert memo.get((9, 2, 3, "wechat")) is None  # another clinic's request for the slot is its own question
