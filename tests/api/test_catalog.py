"""GET /items and GET /items/{item_id}/slots against the demo clinic in real PostgreSQL."""
from __future__ import annotations

from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from app.db.models import Clinic, Item, ItemInventory, Slot
from tests.api.mp_helpers import bearer, login

MP = "/api/mp/v1"
SHANGHAI = timezone(timedelta(hours=8))


@pytest.fixture()
def headers(client, sandbox, demo_clinic):
    return bearer(login(client, sandbox, "wechat", openid="catalog-test-1")["token"])


def _demo_item(rt, code: str) -> Item:
    with rt.db.session() as session:
        return session.scalar(select(Item).join(Clinic).where(Clinic.code == "demo", Item.code == code))


@contextmanager
def _changed(rt, model, row_id: int, **values):
    """Set columns of a shared demo row for the duration of a block, then put them back."""
    with rt.db.session() as session:
        row = session.get(model, row_id)
        before = {name: getattr(row, name) for name in values}
        for name, value in values.items():
            setattr(row, name, value)
    try:
        yield
    finally:
        with rt.db.session() as session:
            row = session.get(model, row_id)
            for name, value in before.items():
                setattr(row, name, value)


def test_items_lists_active_items_with_their_stocked_channels(client, headers, rt):
    items = {i["code"]: i for i in client.get(f"{MP}/items", headers=headers).get_json()}
    assert {"CLEAN01", "CHECK01", "WHITE01"} <= set(items)
    clean = items["CLEAN01"]
    assert (clean["id"], clean["price_fen"], clean["channels"]) == (_demo_item(rt, "CLEAN01").id, 19_900,
                                                                   ["alipay", "wechat"])
    assert "洁牙" in clean["name"]

    check, white = _demo_item(rt, "CHECK01"), _demo_item(rt, "WHITE01")
    with rt.db.session() as session:
        alipay_row = session.scalar(select(ItemInventory.id).where(ItemInventory.item_id == check.id,
                                                                   ItemInventory.channel == "alipay"))
    with _changed(rt, ItemInventory, alipay_row, quantity=0), _changed(rt, Item, white.id, active=False):
        items = {i["code"]: i for i in client.get(f"{MP}/items", headers=headers).get_json()}
    assert items["CHECK01"]["channels"] == ["wechat"]
    assert "WHITE01" not in items


def test_slots_of_a_shanghai_date_with_places_remaining(client, headers, rt):
    day = datetime.now(SHANGHAI).date() + timedelta(days=12)
    item = _demo_item(rt, "CLEAN01")
    with rt.db.session() as session:
        ten_oclock = session.scalar(select(Slot.id).where(
            Slot.item_id == item.id, Slot.starts_at == datetime(day.year, day.month, day.day, 10, tzinfo=SHANGHAI)))
    with _changed(rt, Slot, ten_oclock, reserved=3):
        resp = client.get(f"{MP}/items/{item.id}/slots", query_string={"date": day.isoformat()}, headers=headers)
    assert resp.status_code == 200
    slots = resp.get_json()
    assert [s["starts_at"] for s in slots] == [f"{day.isoformat()}T{h:02d}:00:00+08:00" for h in range(9, 17)]
    assert [s["ends_at"] for s in slots] == [f"{day.isoformat()}T{h:02d}:00:00+08:00" for h in range(10, 18)]
    remaining = {s["id"]: s["remaining"] for s in slots}
    assert remaining.pop(ten_oclock) == 4 - 3
    assert set(remaining.values()) == {4}


def test_a_date_without_slots_is_an_empty_list(client, headers, rt):
    item = _demo_item(rt, "CHECK01")
    resp = client.get(f"{MP}/items/{item.id}/slots?date=2001-02-03", headers=headers)
    assert resp.status_code == 200 and resp.get_json() == []


@pytest.mark.parametrize("query", ["", "?date=", "?date=2024-13-01", "?date=tomorrow", "?date=2024/01/02",
                                   "?date=0001-01-01"])
def test_a_missing_or_malformed_date_is_422(client, headers, rt, query):
    item = _demo_item(rt, "CHECK01")
    resp = client.get(f"{MP}/items/{item.id}/slots{query}", headers=headers)
    assert resp.status_code == 422
    assert "date" in str(resp.get_json()["errors"])


def test_unknown_or_another_clinics_item_is_404(client, headers, rt):
    with rt.db.session() as session:
        other = session.scalar(select(Clinic).where(Clinic.code == "catalog-other"))
        if other is None:
            other = Clinic(code="catalog-other", name="Other clinic", his_base_url="http://127.0.0.1:1/his/",
                           his_key_id="catalog-other-key", his_secret="x" * 32)
            session.add(other)
            session.flush()
            session.add(Item(clinic_id=other.id, code="OTHER01", name="Elsewhere", price_fen=100))
            session.flush()
        other_item = session.scalar(select(Item.id).where(Item.clinic_id == other.id))
    today = date.today().isoformat()
    for item_id in (other_item, 987_654, 99_999_999_999):
        resp = client.get(f"{MP}/items/{item_id}/slots?date={today}", headers=headers)
        assert resp.status_code == 404 and resp.get_json()["error"] == "item_not_found", item_id
    assert other_item not in [i["id"] for i in client.get(f"{MP}/items", headers=headers).get_json()]


@pytest.mark.parametrize("path", [f"{MP}/items", f"{MP}/items/1/slots?date=2030-01-01"])
def test_the_catalog_needs_a_bearer_token(client, demo_clinic, path):
    resp = client.get(path)
    assert resp.status_code == 401 and resp.get_json()["error"] == "missing_token"
