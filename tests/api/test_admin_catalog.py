"""A clinic's catalog over the admin API: items and packages, schedules (idempotent, bounded, released at a set
time) and slots (capacity never below the places taken, closing), and what the mini-program then offers."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from app.db.models import AuditEvent, Slot
from tests.api.admin_helpers import ADMIN, SHANGHAI, label, now, staff_headers
from tests.api.order_helpers import MP, add_patient, booking, place_order, user


@pytest.fixture()
def admin(client, rt, demo_clinic):
    return staff_headers(client, rt, "admin")


def new_item(client, headers: dict, **fields) -> dict:
    body = {"code": label("I")[:30], "name": "新项目", "price_fen": 8800, **fields}
    resp = client.post(f"{ADMIN}/items", json=body, headers=headers)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def stock(client, headers: dict, item_id: int, quantity: int = 100) -> None:
    resp = client.put(f"{ADMIN}/items/{item_id}/inventory", headers=headers,
                      json=[{"channel": "wechat", "quantity": quantity}, {"channel": "alipay", "quantity": quantity}])
    assert resp.status_code == 200, resp.get_json()


def days_ahead(days: int):
    return (now() + timedelta(days=days)).astimezone(SHANGHAI).date()


def schedule(first, last, **fields) -> dict:
    return {"from": first.isoformat(), "to": last.isoformat(), "weekdays": [1, 2, 3, 4, 5, 6, 7],
            "start": "09:00", "end": "12:00", "slot_minutes": 30, "capacity": 2, **fields}


def slots_of(client, headers: dict, item_id: int, first, last) -> list[dict]:
    resp = client.get(f"{ADMIN}/items/{item_id}/slots", query_string={"from": first.isoformat(),
                                                                      "to": last.isoformat()}, headers=headers)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


# --- items ---------------------------------------------------------------------------------------------

def test_an_admin_creates_and_changes_items_and_the_patient_sees_them(client, rt, sandbox, admin):
    headers, username = admin
    package = new_item(client, headers, kind="package", description="含洁牙与检查", channels=["wechat"])
    stock(client, headers, package["id"])

    renamed = client.patch(f"{ADMIN}/items/{package['id']}", json={"name": "洁牙套餐 2", "price_fen": 9900},
                           headers=headers)
    taken = client.post(f"{ADMIN}/items", json={"code": package["code"], "name": "重复", "price_fen": 100},
                        headers=headers)
    listed = client.get(f"{ADMIN}/items", headers=headers).get_json()
    offered = client.get(f"{MP}/items", headers=user(client, sandbox, label("p"))).get_json()

    assert package | {"id": None, "created_at": None, "code": None} == {
        "id": None, "clinic_code": "demo", "code": None, "kind": "package", "name": "新项目",
        "description": "含洁牙与检查", "price_fen": 8800, "collected_by": "clinic", "channels": ["wechat"],
        "purchase_price_fen": {}, "active": True, "requires_attachment": False, "created_at": None}
    assert renamed.status_code == 200 and renamed.get_json()["price_fen"] == 9900
    assert (taken.status_code, taken.get_json()["error"]) == (409, "item_code_taken")
    assert package["id"] in [i["id"] for i in listed]
    seen = next(i for i in offered if i["id"] == package["id"])
    # Stock on both channels, but offered only on WeChat.
    assert (seen["name"], seen["kind"], seen["price_fen"], seen["channels"]) == ("洁牙套餐 2", "package", 9900,
                                                                                 ["wechat"])
    with rt.db.session() as session:
        event = session.scalar(select(AuditEvent).where(AuditEvent.action == "item_updated",
                                                        AuditEvent.target_id == str(package["id"])))
    assert event.actor_name == username and (event.before["price_fen"], event.after["price_fen"]) == (8800, 9900)


def test_an_inactive_item_or_one_not_offered_on_the_channel_cannot_be_booked(client, rt, sandbox, admin):
    headers, _ = admin
    item = new_item(client, headers, channels=["alipay"])
    stock(client, headers, item["id"])
    client.post(f"{ADMIN}/items/{item['id']}/schedules", json=schedule(days_ahead(3), days_ahead(3)),
                headers=headers)
    slot = slots_of(client, headers, item["id"], days_ahead(3), days_ahead(3))[0]
    buyer = user(client, sandbox, label("b"))
    patient = add_patient(client, buyer)

    not_offered = place_order(client, buyer, booking(item["id"], slot["id"], patient["id"], "wechat"))
    client.patch(f"{ADMIN}/items/{item['id']}", json={"active": False, "channels": ["wechat", "alipay"]},
                 headers=headers)
    inactive = place_order(client, buyer, booking(item["id"], slot["id"], patient["id"], "wechat"))

    assert (not_offered.status_code, not_offered.get_json()["error"]) == (409, "channel_not_offered")
    assert (inactive.status_code, inactive.get_json()["error"]) == (404, "item_not_found")


@pytest.mark.parametrize("fields, error", [
    ({"collected_by": "platform", "channels": ["wechat", "alipay"], "purchase_price_fen": {"wechat": 5000}},
     "purchase_price_required"),
    ({"channels": []}, "validation_failed"),
    ({"channels": ["wechat", "wechat"]}, "validation_failed"),
    ({"price_fen": 0}, "validation_failed"),
    ({"code": "bad code!"}, "validation_failed"),
    ({"kind": "voucher"}, "validation_failed"),
])
def test_an_item_that_makes_no_sense_is_refused(client, admin, fields, error):
    headers, _ = admin
    body = {"code": label("I")[:30], "name": "项目", "price_fen": 100, **fields}

    refused = client.post(f"{ADMIN}/items", json=body, headers=headers)

    assert (refused.status_code, refused.get_json()["error"]) == (422, error), refused.get_json()


def test_a_platform_collected_item_names_its_purchase_price_per_channel(client, admin):
    headers, _ = admin
    item = new_item(client, headers, collected_by="platform", channels=["wechat", "alipay"],
                    purchase_price_fen={"wechat": 6000, "alipay": 6100})

    dropped = client.patch(f"{ADMIN}/items/{item['id']}", json={"purchase_price_fen": {"wechat": 6000}},
                           headers=headers)

    assert (item["collected_by"], item["purchase_price_fen"]) == ("platform", {"wechat": 6000, "alipay": 6100})
    assert (dropped.status_code, dropped.get_json()["error"]) == (422, "purchase_price_required")


# --- schedules ----------------------------------------------------------------------------------------

def test_posting_the_same_schedule_twice_creates_nothing_twice(client, rt, admin):
    headers, username = admin
    item = new_item(client, headers)
    first, last = days_ahead(10), days_ahead(16)
    # Mondays, Wednesdays and Fridays, 09:00-12:00 in 30-minute slots, except one closed Wednesday.
    body = schedule(first, last, weekdays=[1, 3, 5])
    wednesday = next(first + timedelta(days=n) for n in range(7) if (first + timedelta(days=n)).isoweekday() == 3)
    body["closed_dates"] = [wednesday.isoformat()]

    made = client.post(f"{ADMIN}/items/{item['id']}/schedules", json=body, headers=headers)
    again = client.post(f"{ADMIN}/items/{item['id']}/schedules", json=body, headers=headers)
    wider = client.post(f"{ADMIN}/items/{item['id']}/schedules", json={**body, "closed_dates": []}, headers=headers)

    assert made.status_code == 200, made.get_json()
    assert (made.get_json()["created"], made.get_json()["existing"]) == (2 * 6, 0)
    assert (again.get_json()["created"], again.get_json()["existing"]) == (0, 12)
    assert (wider.get_json()["created"], wider.get_json()["existing"]) == (6, 12)
    slots = slots_of(client, headers, item["id"], first, last)
    assert len(slots) == 18 and len({s["starts_at"] for s in slots}) == 18
    starts = [datetime.fromisoformat(s["starts_at"]) for s in slots]
    assert {s.isoweekday() for s in starts} == {1, 3, 5}
    assert {s.strftime("%H:%M") for s in starts} == {"09:00", "09:30", "10:00", "10:30", "11:00", "11:30"}
    assert all(s["capacity"] == 2 and s["reserved"] == 0 and not s["closed"] for s in slots)
    with rt.db.session() as session:
        assert session.scalar(select(func.count(Slot.id)).where(Slot.item_id == item["id"])) == 18
        posted = session.scalars(select(AuditEvent).where(AuditEvent.action == "schedule_posted",
                                                          AuditEvent.target_id == str(item["id"]))).all()
    assert [e.after["created"] for e in posted] == [12, 0, 6] and posted[0].actor_name == username


@pytest.mark.parametrize("change, error", [
    (lambda b: {**b, "to": (datetime.fromisoformat(b["from"]) + timedelta(days=92)).date().isoformat()},
     "schedule_too_large"),
    (lambda b: {**b, "start": "08:00", "end": "20:00", "slot_minutes": 5}, "schedule_too_large"),
    (lambda b: {**b, "to": (datetime.fromisoformat(b["from"]) - timedelta(days=1)).date().isoformat()},
     "invalid_schedule"),
    (lambda b: {**b, "start": "12:00", "end": "12:20"}, "invalid_schedule"),
    (lambda b: {**b, "release_days_before": 1}, "invalid_schedule"),
    (lambda b: {**b, "start": "25:00"}, "validation_failed"),
])
def test_a_schedule_too_large_or_inconsistent_is_refused(client, admin, change, error):
    headers, _ = admin
    item = new_item(client, headers)

    refused = client.post(f"{ADMIN}/items/{item['id']}/schedules",
                          json=change(schedule(days_ahead(5), days_ahead(40))), headers=headers)

    assert (refused.status_code, refused.get_json()["error"]) == (422, error), refused.get_json()


def test_slots_are_shown_from_their_release_and_ordering_one_earlier_is_refused(client, rt, sandbox, admin):
    headers, _ = admin
    item = new_item(client, headers)
    stock(client, headers, item["id"])
    day = days_ahead(4)
    # Released two days before each slot's day at 08:00: not yet for a day four days ahead.
    made = client.post(f"{ADMIN}/items/{item['id']}/schedules", headers=headers,
                       json=schedule(day, day, release_days_before=2, release_time="08:00"))
    later = client.post(f"{ADMIN}/items/{item['id']}/schedules", headers=headers,
                        json=schedule(days_ahead(5), days_ahead(5), release_at=(now() - timedelta(minutes=1))
                                      .isoformat()))
    buyer = user(client, sandbox, label("r"))
    patient = add_patient(client, buyer)

    hidden = client.get(f"{MP}/items/{item['id']}/slots", query_string={"date": day.isoformat()}, headers=buyer)
    released = client.get(f"{MP}/items/{item['id']}/slots", query_string={"date": days_ahead(5).isoformat()},
                          headers=buyer)
    [first, *_] = slots_of(client, headers, item["id"], day, day)
    early = place_order(client, buyer, booking(item["id"], first["id"], patient["id"]))

    assert made.get_json()["created"] == 6 and later.get_json()["created"] == 6
    assert hidden.status_code == 200 and hidden.get_json() == []
    assert len(released.get_json()) == 6
    assert datetime.fromisoformat(first["release_at"]) == datetime.combine(day - timedelta(days=2),
                                                                           datetime.min.time().replace(hour=8),
                                                                           SHANGHAI)
    assert (early.status_code, early.get_json()["error"]) == (409, "slot_not_released")

    opened = client.patch(f"{ADMIN}/slots/{first['id']}", json={"release_at": None}, headers=headers)
    assert opened.get_json()["release_at"] is None
    assert place_order(client, buyer, booking(item["id"], first["id"], patient["id"])).status_code == 201


# --- slots --------------------------------------------------------------------------------------------

def test_a_slots_capacity_never_goes_below_the_places_taken(client, rt, sandbox, admin):
    headers, username = admin
    item = new_item(client, headers)
    stock(client, headers, item["id"])
    day = days_ahead(6)
    client.post(f"{ADMIN}/items/{item['id']}/schedules", json=schedule(day, day, capacity=3), headers=headers)
    slot = slots_of(client, headers, item["id"], day, day)[0]
    buyer = user(client, sandbox, label("c"))
    for n in range(2):  # two patients: one patient books an item once a day
        patient = add_patient(client, buyer, f"患者{n}")
        assert place_order(client, buyer, booking(item["id"], slot["id"], patient["id"])).status_code == 201

    below = client.patch(f"{ADMIN}/slots/{slot['id']}", json={"capacity": 1}, headers=headers)
    exact = client.patch(f"{ADMIN}/slots/{slot['id']}", json={"capacity": 2}, headers=headers)
    full = place_order(client, buyer, booking(item["id"], slot["id"], patient["id"]))
    wider = client.patch(f"{ADMIN}/slots/{slot['id']}", json={"capacity": 5}, headers=headers)

    assert (below.status_code, below.get_json()["error"]) == (409, "capacity_below_taken")
    assert below.get_json()["errors"] == {"reserved": 2}
    assert exact.status_code == 200 and (exact.get_json()["capacity"], exact.get_json()["remaining"]) == (2, 0)
    assert (full.status_code, full.get_json()["error"]) == (409, "slot_sold_out")
    assert wider.get_json()["remaining"] == 3
    with rt.db.session() as session:
        changes = session.scalars(select(AuditEvent).where(AuditEvent.action == "slot_updated",
                                                           AuditEvent.target_id == str(slot["id"]))).all()
    assert [(e.before["capacity"], e.after["capacity"]) for e in changes] == [(3, 2), (2, 5)]
    assert all(e.actor_name == username for e in changes)


def test_a_closed_slot_is_not_offered_and_its_bookings_stay(client, rt, sandbox, admin):
    headers, _ = admin
    item = new_item(client, headers)
    stock(client, headers, item["id"])
    day = days_ahead(7)
    client.post(f"{ADMIN}/items/{item['id']}/schedules", json=schedule(day, day), headers=headers)
    slot = slots_of(client, headers, item["id"], day, day)[0]
    buyer = user(client, sandbox, label("k"))
    patient = add_patient(client, buyer)
    held = place_order(client, buyer, booking(item["id"], slot["id"], patient["id"])).get_json()

    closed = client.patch(f"{ADMIN}/slots/{slot['id']}", json={"closed": True}, headers=headers)
    offered = client.get(f"{MP}/items/{item['id']}/slots", query_string={"date": day.isoformat()}, headers=buyer)
    refused = place_order(client, buyer, booking(item["id"], slot["id"], patient["id"]))

    assert closed.get_json()["closed"] is True and closed.get_json()["reserved"] == 1
    assert slot["id"] not in [s["id"] for s in offered.get_json()] and len(offered.get_json()) == 5
    assert (refused.status_code, refused.get_json()["error"]) == (409, "slot_closed")
    assert client.get(f"{MP}/orders/{held['order_no']}", headers=buyer).get_json()["status"] == "created"


def test_an_inactive_clinic_takes_no_schedule(client, rt, admin):
    from app.db.models import Clinic, Item
    from tests.api.admin_helpers import other_clinic

    other = other_clinic(rt)
    headers, _ = staff_headers(client, rt, "admin", clinics=(other.code,))
    with rt.db.session() as session:
        clinic = session.scalar(select(Clinic).join(Item, Item.clinic_id == Clinic.id).where(Item.id == other.item_id))
        clinic.active = False

    refused = client.post(f"{ADMIN}/items/{other.item_id}/schedules", json=schedule(days_ahead(8), days_ahead(8)),
                          headers=headers)

    assert (refused.status_code, refused.get_json()["error"]) == (409, "clinic_inactive")
