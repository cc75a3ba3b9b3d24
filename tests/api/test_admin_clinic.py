"""Clinic settings over the admin API: per-channel inventory, settlement-type settings, and the audit trail
(listed with filters, scoped to the user's clinics, never updated or deleted)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError

from app.db.models import AuditEvent, ItemInventory
from tests.api.admin_helpers import ADMIN, label, now, other_clinic, staff_headers
from tests.api.order_helpers import add_patient, booking, created, place_order, user
from tests.e2e.helpers import fresh_slot


@pytest.fixture()
def admin(client, rt, demo_clinic):
    return staff_headers(client, rt, "admin")


def _new_clinic(rt) -> str:
    """A clinic of its own, so that its settings start from the defaults."""
    return other_clinic(rt).code


# --- inventory ---------------------------------------------------------------------------------------

def test_inventory_is_set_per_channel_and_never_below_what_is_held_or_sold(client, sandbox, rt, admin):
    headers, username = admin
    item_id, slot_id = fresh_slot(rt, capacity=5, inventory=3)
    buyer = user(client, sandbox, label("buyer"))
    for n in range(2):  # two patients: one patient books an item once a day
        patient = add_patient(client, buyer, f"患者{n}")
        created(place_order(client, buyer, booking(item_id, slot_id, patient["id"])))

    shown = client.get(f"{ADMIN}/items/{item_id}/inventory", headers=headers)
    below = client.put(f"{ADMIN}/items/{item_id}/inventory", json=[{"channel": "wechat", "quantity": 1}],
                       headers=headers)
    exact = client.put(f"{ADMIN}/items/{item_id}/inventory",
                       json=[{"channel": "wechat", "quantity": 2}, {"channel": "alipay", "quantity": 0}],
                       headers=headers)

    assert shown.status_code == 200
    assert shown.get_json() == [{"channel": "wechat", "quantity": 3, "reserved": 2},
                                {"channel": "alipay", "quantity": 3, "reserved": 0}]
    assert (below.status_code, below.get_json()["error"]) == (409, "inventory_below_reserved")
    assert below.get_json()["errors"] == {"channel": "wechat", "reserved": 2}
    assert exact.status_code == 200, exact.get_json()
    assert exact.get_json() == [{"channel": "wechat", "quantity": 2, "reserved": 2},
                                {"channel": "alipay", "quantity": 0, "reserved": 0}]
    sold_out = place_order(client, buyer, booking(item_id, slot_id, patient["id"]))
    assert (sold_out.status_code, sold_out.get_json()["error"]) == (409, "inventory_sold_out")
    with rt.db.session() as session:
        [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "inventory_set",
                                                           AuditEvent.target_id == str(item_id)))
    assert event.actor_name == username
    assert event.before["inventory"][0]["quantity"] == 3 and event.after["inventory"][0]["quantity"] == 2


def test_a_channel_without_inventory_gets_a_row(client, rt, admin):
    headers, _ = admin
    item_id, _ = fresh_slot(rt, capacity=1)
    with rt.db.session() as session:
        session.query(ItemInventory).filter(ItemInventory.item_id == item_id,
                                            ItemInventory.channel == "alipay").delete()

    before = client.get(f"{ADMIN}/items/{item_id}/inventory", headers=headers).get_json()
    resp = client.put(f"{ADMIN}/items/{item_id}/inventory", json=[{"channel": "alipay", "quantity": 7}],
                      headers=headers)

    assert before[1] == {"channel": "alipay", "quantity": 0, "reserved": 0}
    assert resp.status_code == 200 and resp.get_json()[1] == {"channel": "alipay", "quantity": 7, "reserved": 0}


@pytest.mark.parametrize("body", [[], [{"channel": "wechat", "quantity": 1}, {"channel": "wechat", "quantity": 2}],
                                  [{"channel": "paypal", "quantity": 1}], [{"channel": "wechat", "quantity": -1}],
                                  [{"channel": "wechat", "quantity": "5"}], {"channel": "wechat", "quantity": 1}])
def test_bad_inventory_input_is_422(client, rt, admin, body):
    headers, _ = admin
    item_id, _ = fresh_slot(rt, capacity=1)
    assert client.put(f"{ADMIN}/items/{item_id}/inventory", json=body, headers=headers).status_code == 422


def test_unknown_or_huge_item_ids_are_404(client, admin):
    headers, _ = admin
    for item_id in (0, 2**31, 10**30):
        assert client.get(f"{ADMIN}/items/{item_id}/inventory", headers=headers).status_code == 404


# --- settlement types --------------------------------------------------------------------------------

def test_settlement_types_default_per_channel_and_are_set_per_clinic(client, rt, demo_clinic):
    code = _new_clinic(rt)
    headers, username = staff_headers(client, rt, "admin", clinics=("demo", code))

    defaults = client.get(f"{ADMIN}/settings/settlement-types", query_string={"clinic_code": code}, headers=headers)
    unnamed = client.get(f"{ADMIN}/settings/settlement-types", headers=headers)
    put = client.put(f"{ADMIN}/settings/settlement-types", query_string={"clinic_code": code}, headers=headers,
                     json=[{"channel": "wechat", "settlement_type": "llds_wechat", "count_in_cash_flow": False,
                            "count_in_revenue": True}])

    assert defaults.get_json() == [
        {"channel": "wechat", "settlement_type": "platform_wechat", "count_in_cash_flow": True,
         "count_in_revenue": True},
        {"channel": "alipay", "settlement_type": "platform_alipay", "count_in_cash_flow": True,
         "count_in_revenue": True}]
    assert (unnamed.status_code, unnamed.get_json()["error"]) == (422, "clinic_code_required")
    assert put.status_code == 200, put.get_json()
    assert put.get_json()[0] == {"channel": "wechat", "settlement_type": "llds_wechat", "count_in_cash_flow": False,
                                 "count_in_revenue": True}
    assert put.get_json()[1] == defaults.get_json()[1]
    again = client.get(f"{ADMIN}/settings/settlement-types", query_string={"clinic_code": code}, headers=headers)
    assert again.get_json() == put.get_json()
    events = client.get(f"{ADMIN}/audit-events", query_string={"clinic_code": code, "action": "settlement_types_set"},
                        headers=headers).get_json()["items"]
    assert [e["actor_name"] for e in events] == [username]
    assert events[0]["before"]["settings"][0]["count_in_cash_flow"] is True
    assert events[0]["after"]["settings"][0]["count_in_cash_flow"] is False


@pytest.mark.parametrize("body", [[{"channel": "wechat", "count_in_cash_flow": True}],
                                  [{"channel": "wechat", "settlement_type": "Bad Type!", "count_in_cash_flow": True,
                                    "count_in_revenue": True}],
                                  [{"channel": "cash", "count_in_cash_flow": True, "count_in_revenue": True}]])
def test_bad_settlement_type_input_is_422(client, admin, body):
    headers, _ = admin
    assert client.put(f"{ADMIN}/settings/settlement-types", json=body, headers=headers).status_code == 422


# --- the audit trail ----------------------------------------------------------------------------------

def test_audit_events_are_filtered_by_actor_action_and_time_and_scoped_to_the_users_clinics(client, rt, demo_clinic):
    code = _new_clinic(rt)
    mine, me = staff_headers(client, rt, "admin", clinics=(code,))
    theirs, them = staff_headers(client, rt, "admin", clinics=("demo",))
    started = now() - timedelta(seconds=1)
    body = [{"channel": "alipay", "count_in_cash_flow": False, "count_in_revenue": False}]
    assert client.put(f"{ADMIN}/settings/settlement-types", json=body, headers=mine).status_code == 200
    assert client.put(f"{ADMIN}/settings/settlement-types", json=body, headers=theirs).status_code == 200
    try:
        by_me = client.get(f"{ADMIN}/audit-events", query_string={"actor": me}, headers=mine).get_json()
        by_them = client.get(f"{ADMIN}/audit-events", query_string={"actor": them}, headers=mine).get_json()
        since = client.get(f"{ADMIN}/audit-events", query_string={"since": started.isoformat()},
                           headers=mine).get_json()
        future = client.get(f"{ADMIN}/audit-events",
                            query_string={"since": (now() + timedelta(hours=1)).isoformat()}, headers=mine).get_json()
    finally:
        client.put(f"{ADMIN}/settings/settlement-types", headers=theirs,
                   json=[{"channel": "alipay", "count_in_cash_flow": True, "count_in_revenue": True}])

    assert [(e["actor_name"], e["action"], e["clinic_code"]) for e in by_me["items"]] == [
        (me, "settlement_types_set", code)]
    assert by_me["total"] == 1 and by_me["items"][0]["actor_type"] == "staff"
    assert by_them["items"] == []
    assert {e["clinic_code"] for e in since["items"]} == {code}
    assert future["items"] == [] and future["total"] == 0


def test_bad_audit_queries_are_422(client, admin):
    headers, _ = admin
    for query in ({"since": "yesterday"}, {"since": "2026-01-01T00:00:00"}, {"limit": 0}, {"action": ""}):
        assert client.get(f"{ADMIN}/audit-events", query_string=query, headers=headers).status_code == 422, query


@pytest.mark.parametrize("statement", ["UPDATE audit_events SET note = 'changed' WHERE id = :id",
                                       "DELETE FROM audit_events WHERE id = :id"])
def test_audit_rows_cannot_be_updated_or_deleted(rt, demo_clinic, statement):
    from app.services.common.audit import record_system_event

    with rt.db.session() as session:
        event = record_system_event(session, None, "insert_only_probe", "test", label("probe"))
        session.flush()
        event_id = event.id

    with pytest.raises(DBAPIError, match="insert-only"):
        with rt.db.session() as session:
            session.execute(text(statement), {"id": event_id})
    with pytest.raises(DBAPIError, match="insert-only"):
        with rt.db.session() as session:
            session.execute(update(AuditEvent).where(AuditEvent.id == event_id).values(action="rewritten"))
    with rt.db.session() as session:
        assert session.get(AuditEvent, event_id).action == "insert_only_probe"
