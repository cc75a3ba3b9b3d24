"""Slot release through the real stack (gunicorn from config/gunicorn.conf.py, PostgreSQL, Redis, rq workers):
a crowd of 1,000 concurrent booking requests for 100 places (10 slots of 10) gets exactly 100 orders and 900
409 `slot_sold_out`; the admission gate's keys lost in the middle of a crowd still leaves exactly 100; a place
released by expiry is sold again; two devices of one patient at once get one booking; a retried request with
its Idempotency-Key never takes a second place.

The crowd is tests/crowd.py: every request on a connection of its own, all opened first and sent at once. Its
users and patients are inserted directly and their tokens issued with the session's signing key (logging in a
thousand users through the sandbox would take minutes and test nothing of the booking path).
"""
from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime, timedelta

from redis import Redis
from sqlalchemy import func, insert, select, update

from app.db.models import Clinic, Item, ItemInventory, MerchantAccount, MpUser, Order, Patient, Slot
from app.domain.orders import HOLDS_PLACE
from app.services.people.mp_auth import MP_AUDIENCE
from app.services.people.tokens import issue_token
from tests.crowd import Call, run_crowd

CROWD = 1000
SLOTS, PLACES = 10, 10


def _crowd(rt, size: int) -> list[tuple[str, int]]:
    """`size` WeChat users of the demo clinic with one patient each: (bearer token, patient id)."""
    with rt.db.session() as session:
        clinic = session.scalar(select(Clinic).where(Clinic.code == "demo"))
        account = session.scalar(select(MerchantAccount.id).where(
            MerchantAccount.clinic_id == clinic.id, MerchantAccount.channel == "wechat",
            MerchantAccount.active.is_(True)))
        stamp = secrets.token_hex(4)
        user_ids = session.scalars(insert(MpUser).returning(MpUser.id, sort_by_parameter_order=True), [
            dict(clinic_id=clinic.id, merchant_account_id=account, channel="wechat", openid=f"ocrowd{stamp}{n:05d}")
            for n in range(size)]).all()
        patient_ids = session.scalars(insert(Patient).returning(Patient.id, sort_by_parameter_order=True), [
            dict(clinic_id=clinic.id, user_id=user_id, name=f"患者{n}", phone=f"139{n:08d}", relation="self")
            for n, user_id in enumerate(user_ids)]).all()
        clinic_id = clinic.id
    return [(issue_token(rt.settings.SECRET_KEY, MP_AUDIENCE, {"uid": u, "cid": clinic_id, "ch": "wechat", "ver": 0}),
             p) for u, p in zip(user_ids, patient_ids, strict=True)]


def _released_slots(rt, count: int, places: int, days: int = 2) -> tuple[int, list[int]]:
    """A new item with `count` slots of `places` places, released a moment ago."""
    with rt.db.session() as session:
        clinic_id = session.scalar(select(Clinic.id).where(Clinic.code == "demo"))
        item = Item(clinic_id=clinic_id, code=f"F{secrets.token_hex(4)}", name="专家门诊 放号", price_fen=3000)
        session.add(item)
        session.flush()
        session.add(ItemInventory(item_id=item.id, channel="wechat", quantity=10_000, reserved=0))
        first = (datetime.now(UTC) + timedelta(days=days)).replace(minute=0, second=0, microsecond=0)
        released = datetime.now(UTC) - timedelta(seconds=1)
        slots = [Slot(item_id=item.id, starts_at=first + timedelta(minutes=20 * n), release_at=released,
                      ends_at=first + timedelta(minutes=20 * (n + 1)), capacity=places, reserved=0)
                 for n in range(count)]
        session.add_all(slots)
        session.flush()
        return item.id, [slot.id for slot in slots]


def _booking(token: str, patient_id: int, item_id: int, slot_id: int, key: str | None = None) -> Call:
    headers = {"Authorization": f"Bearer {token}"} | ({"Idempotency-Key": key} if key else {})
    return Call("POST", "/api/mp/v1/orders", headers, {"type": "booking", "item_id": item_id, "slot_id": slot_id,
                                                        "patient_id": patient_id, "channel": "wechat"})


def _held(rt, slot_ids: list[int]) -> tuple[int, int, int]:
    """(places reserved, orders holding one, slots over capacity) of these slots."""
    with rt.db.session() as session:
        slots = session.scalars(select(Slot).where(Slot.id.in_(slot_ids))).all()
        orders = session.scalar(select(func.count()).select_from(Order).where(
            Order.slot_id.in_(slot_ids), Order.status.in_(HOLDS_PLACE)))
    return sum(s.reserved for s in slots), orders, sum(s.reserved > s.capacity for s in slots)


def test_a_thousand_requests_for_a_hundred_places_get_exactly_a_hundred_orders(platform, rt):
    item_id, slot_ids = _released_slots(rt, SLOTS, PLACES)
    crowd = _crowd(rt, CROWD)
    calls = [_booking(token, patient, item_id, slot_ids[n % SLOTS]) for n, (token, patient) in enumerate(crowd)]

    run = run_crowd(platform.url, calls, connections=CROWD)

    print(f"{CROWD} requests in {run.wall_s:.1f} s: {run.outcomes()}")
    assert run.outcomes() == {"201": 100, "409 slot_sold_out": 900}, platform.logs()
    assert _held(rt, slot_ids) == (100, 100, 0)


def test_the_gate_lost_in_the_middle_of_a_crowd_still_sells_exactly_the_places(platform, rt, redis_url):
    item_id, slot_ids = _released_slots(rt, SLOTS, PLACES)
    crowd = _crowd(rt, CROWD // 2)
    calls = [_booking(token, patient, item_id, slot_ids[n % SLOTS]) for n, (token, patient) in enumerate(crowd)]
    redis, flushed = Redis.from_url(redis_url), []

    def lose_the_gate(answered: int) -> None:
        # What a Redis restart without persistence does to the gate: every key of it gone (the session's Redis
        # also holds the rq queues of the running workers, so only the gate's keys go).
        if answered == 40 and not flushed:
            keys = redis.keys("hpay:gate:*")
            flushed.append(len(keys))
            redis.delete(*keys)

    run = run_crowd(platform.url, calls, connections=len(calls), during=lose_the_gate)

    assert flushed and flushed[0] > SLOTS  # the marker and the slots' keys were there, and went
    assert run.outcomes() == {"201": 100, "409 slot_sold_out": 400}, platform.logs()
    assert _held(rt, slot_ids) == (100, 100, 0)
    assert redis.get("hpay:gate:built") is not None  # rebuilt by the crowd itself
    redis.close()


def test_a_place_released_by_expiry_is_sold_again(platform, rt):
    item_id, [slot_id] = _released_slots(rt, 1, 1)
    (first, first_patient), (second, second_patient) = _crowd(rt, 2)
    [held] = run_crowd(platform.url, [_booking(first, first_patient, item_id, slot_id)], 1).answers
    assert held.status == 201
    [refused] = run_crowd(platform.url, [_booking(second, second_patient, item_id, slot_id)], 1).answers
    assert refused.outcome == "409 slot_sold_out"

    with rt.db.session() as session:  # the unpaid order's time is up: the workers close it
        session.execute(update(Order).where(Order.order_no == held.document["order_no"])
                        .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    deadline = time.monotonic() + 60
    while _held(rt, [slot_id])[0] != 0:
        assert time.monotonic() < deadline, platform.logs()
        time.sleep(0.2)

    # The web process that answered `refused` may repeat its sold-out answer from memory for
    # HPAY_BOOKING_GATE_SOLD_OUT_MEMO_S after the place came back (the expiry ran in a worker process).
    back_at, memo_s = time.monotonic(), rt.settings.BOOKING_GATE_SOLD_OUT_MEMO_S
    while True:
        [again] = run_crowd(platform.url, [_booking(second, second_patient, item_id, slot_id)], 1).answers
        if again.status == 201:
            break
        assert again.outcome == "409 slot_sold_out" and time.monotonic() - back_at < memo_s + 1, again
        time.sleep(0.05)
    assert _held(rt, [slot_id]) == (1, 1, 0)


def test_two_devices_of_one_patient_at_once_get_one_booking(platform, rt):
    item_id, slot_ids = _released_slots(rt, 4, 10)
    [(token, patient)] = _crowd(rt, 1)
    calls = [_booking(token, patient, item_id, slot_ids[n % 4]) for n in range(8)]

    run = run_crowd(platform.url, calls, connections=8)

    assert run.outcomes() == {"201": 1, "409 patient_already_booked": 7}
    assert _held(rt, slot_ids)[:2] == (1, 1)


def test_a_request_retried_with_its_idempotency_key_never_takes_a_second_place(platform, rt):
    item_id, [slot_id] = _released_slots(rt, 1, 10)
    [(token, patient)] = _crowd(rt, 1)
    key = f"retry-{secrets.token_hex(4)}"
    calls = [_booking(token, patient, item_id, slot_id, key=key) for _ in range(10)]

    run = run_crowd(platform.url, calls, connections=10)

    # The first is answered 201; a repeat is the first answer again (201, same order) or, while the first is
    # still being worked on, 409 request_in_progress: never a second order, never patient_already_booked.
    assert set(run.outcomes()) <= {"201", "409 request_in_progress"} and run.count(201) >= 1, run.outcomes()
    assert {a.document["order_no"] for a in run.answers if a.status == 201} == {
        next(a.document["order_no"] for a in run.answers if a.status == 201)}
    [replayed] = run_crowd(platform.url, calls[:1], 1).answers
    assert replayed.status == 201
    assert _held(rt, [slot_id])[:2] == (1, 1)
