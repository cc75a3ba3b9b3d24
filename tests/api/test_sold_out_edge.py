"""A booking crowd's sold-out answers given before Flask (app/api/mp/sold_out_edge.py): the same answer the view
gives, counted and logged the same, and only for a request the view would answer that way; every other request
reaches Flask with its body intact (a keyed retry gets its first answer, a bad token its 401, a field the schema
refuses its 422, a browser page its CORS headers)."""
from __future__ import annotations

import dataclasses
import logging

import pytest

from app.factory import create_app
from tests.api.metrics_helpers import sample, scrape
from tests.api.order_helpers import MP, add_patient, booking, created, label, place_order, refusal, user
from tests.e2e.helpers import fresh_slot

FROM_MEMORY = "hpay_booking_sold_out_from_memory_total"
# Long enough that no test outlives the memory of the slot it filled, however slow the machine.
MEMO_S = 600.0


@pytest.fixture(scope="module")
def edge_app(settings):
    return create_app(dataclasses.replace(settings, BOOKING_GATE_SOLD_OUT_MEMO_S=MEMO_S))


@pytest.fixture()
def edge_client(edge_app):
    return edge_app.test_client()


@pytest.fixture()
def full_slot(edge_client, sandbox, rt, demo_clinic):
    """A slot whose one place is taken, and which this process has since been told is sold out (the view asked
    the gate, and remembers): (item id, slot id, the booking that took the place, its key)."""
    owner = user(edge_client, sandbox, label("edge-owner"))
    item_id, slot_id = fresh_slot(rt, capacity=1)
    body = booking(item_id, slot_id, add_patient(edge_client, owner, "张三")["id"])
    first = created(place_order(edge_client, owner, body, key="edge-first"))
    late = user(edge_client, sandbox, label("edge-late"))
    told = place_order(edge_client, late, booking(item_id, slot_id, add_patient(edge_client, late, "李四")["id"]))
    assert refusal(told) == (409, "slot_sold_out")
    return {"item_id": item_id, "slot_id": slot_id, "owner": owner, "body": body, "first": first}


def _from_memory(client) -> float:
    return sample(scrape(client), FROM_MEMORY, error="slot_sold_out")


def _crowd_member(client, sandbox, slot) -> tuple[dict, dict]:
    headers = user(client, sandbox, label("edge-crowd"))
    return headers, booking(slot["item_id"], slot["slot_id"], add_patient(client, headers, "王五")["id"])


def test_a_remembered_sold_out_slot_is_answered_before_flask_exactly_as_the_view_answers(
        edge_app, edge_client, sandbox, rt, demo_clinic, caplog):
    item_id, slot_id = fresh_slot(rt, capacity=1)
    owner = user(edge_client, sandbox, label("edge-exact"))
    created(place_order(edge_client, owner, booking(item_id, slot_id, add_patient(edge_client, owner)["id"])))
    slot = {"item_id": item_id, "slot_id": slot_id}
    first_headers, first_body = _crowd_member(edge_client, sandbox, slot)
    second_headers, second_body = _crowd_member(edge_client, sandbox, slot)

    before = _from_memory(edge_client)
    by_view = place_order(edge_client, first_headers, first_body)  # asks the gate, remembers the answer
    after_view = _from_memory(edge_client)
    with caplog.at_level(logging.INFO, logger="hpay.access"):
        by_edge = edge_client.post(f"{MP}/orders", json=second_body,
                                   headers={**second_headers, "X-Request-Id": "crowd-0001-edge"})

    assert after_view == before  # the first sold-out answer came from the view
    assert _from_memory(edge_client) == before + 1  # the second from the edge
    assert (by_edge.status_code, by_edge.get_data()) == (by_view.status_code, by_view.get_data())
    assert by_edge.get_data() == b'{"error":"slot_sold_out","message":"this time slot is fully booked"}\n'
    ignored = {"X-Request-Id"}
    assert ({k: v for k, v in by_edge.headers.items() if k not in ignored}
            == {k: v for k, v in by_view.headers.items() if k not in ignored})
    assert by_edge.headers["X-Request-Id"] == "crowd-0001-edge"
    assert by_edge.headers["Cache-Control"] == "no-store" and by_edge.headers["X-Frame-Options"] == "DENY"
    logged = [r for r in caplog.records if r.name == "hpay.access"]
    assert [(r.getMessage(), r.status, r.request_id) for r in logged] == [
        ("POST /api/mp/v1/orders -> 409", 409, "crowd-0001-edge")]
    counted = sample(scrape(edge_client), "hpay_http_requests_total", endpoint="mp_orders.create_order",
                     method="POST", status="409")
    assert counted >= 2


def test_a_keyed_retry_gets_its_first_answer_not_the_sold_out_one(edge_client, full_slot):
    before = _from_memory(edge_client)
    again = place_order(edge_client, full_slot["owner"], full_slot["body"], key="edge-first")

    assert created(again)["order_no"] == full_slot["first"]["order_no"]
    assert _from_memory(edge_client) == before


def test_a_forged_or_missing_token_gets_the_views_401(edge_client, sandbox, full_slot):
    headers, body = _crowd_member(edge_client, sandbox, full_slot)
    forged = {"Authorization": headers["Authorization"][:-4] + "AAAA"}
    before = _from_memory(edge_client)

    assert refusal(place_order(edge_client, forged, body)) == (401, "invalid_token")
    assert refusal(place_order(edge_client, {}, body)) == (401, "missing_token")
    assert refusal(place_order(edge_client, {"Authorization": "Basic abc"}, body)) == (401, "missing_token")
    assert _from_memory(edge_client) == before


def test_what_the_schema_or_the_view_refuses_reaches_them(edge_client, sandbox, full_slot):
    headers, body = _crowd_member(edge_client, sandbox, full_slot)
    before = _from_memory(edge_client)

    assert refusal(place_order(edge_client, headers, {**body, "channel": "alipay"})) == (422, "channel_mismatch")
    assert refusal(place_order(edge_client, headers, {**body, "surprise": 1})) == (422, "validation_failed")
    assert refusal(place_order(edge_client, headers, {**body, "slot_id": 0})) == (422, "validation_failed")
    assert refusal(place_order(edge_client, headers, {**body, "slot_id": True})) == (422, "validation_failed")
    not_json = edge_client.post(f"{MP}/orders", data=b"{not json", headers={**headers,
                                                                           "Content-Type": "application/json"})
    assert not_json.status_code in (400, 422)
    # Forms the schema reads as the same booking are answered by the view, sold out like the rest.
    as_text = {**body, "slot_id": str(body["slot_id"])}
    assert refusal(place_order(edge_client, headers, as_text)) == (409, "slot_sold_out")
    assert _from_memory(edge_client) == before


def test_a_browser_page_gets_the_views_answer_with_its_cors_headers(edge_client, sandbox, full_slot):
    headers, body = _crowd_member(edge_client, sandbox, full_slot)
    before = _from_memory(edge_client)

    answer = edge_client.post(f"{MP}/orders", json=body, headers={**headers, "Origin": sandbox.url})

    assert refusal(answer) == (409, "slot_sold_out")
    assert answer.headers["Access-Control-Allow-Origin"] == sandbox.url
    assert _from_memory(edge_client) == before


def test_a_slot_with_places_is_booked_through_flask_with_the_body_the_edge_read(edge_client, sandbox, rt,
                                                                               full_slot):
    headers = user(edge_client, sandbox, label("edge-open"))
    item_id, slot_id = fresh_slot(rt, capacity=1)
    before = _from_memory(edge_client)

    patient_id = add_patient(edge_client, headers)["id"]
    booked = created(place_order(edge_client, headers, booking(item_id, slot_id, patient_id)))

    assert booked["slot"]["id"] == slot_id and booked["status"] == "created"
    assert _from_memory(edge_client) == before
