"""Attacks with identifiers that cannot be ours (bill ids, order numbers, refund request numbers): refused at
the edge with 422/404, with no HIS call and no database query; and the HIS failing now and then: reads are
retried within the request, and a 503 says when to come back.
"""
from __future__ import annotations

import re
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
import requests
from sqlalchemy import event

from app.domain import ids
from app.identifiers import ORDER_NO_PATTERN, REFUND_REQUEST_NO_PATTERN
from tests.api.admin_helpers import staff_headers
from tests.api.order_helpers import MP, bills, bound_card, his_bill, place_order, user

ADMIN = "/api/admin/v1"
GARBAGE_NUMBERS = ["x", "B2025", "B202501010000000000001", "b20250101000000000000", "B2025010100000000000\u00b2",
                   "B20250101000000000000%00", "' OR 1=1 --", "B" + "1" * 200, "%E2%80%AE20250101000000000000"]


@contextmanager
def statements(rt):
    """The SQL statements this process sends while the block runs."""
    sent: list[str] = []

    def record(conn, cursor, statement, *args):
        sent.append(statement)

    event.listen(rt.db.engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(rt.db.engine, "before_cursor_execute", record)


def _his_calls(sandbox, path: str) -> int:
    log = requests.get(f"{sandbox.url}/sandbox/log", params={"limit": 2000}, timeout=5).json()
    return sum(1 for entry in log if entry.get("kind") == "his" and entry.get("path") == path)


@pytest.fixture(scope="module")
def patient_user(app, sandbox, demo_clinic):
    client = app.test_client()
    headers = user(client, sandbox, "identifiers-attack")
    return headers, bound_card(client, sandbox, headers)


@pytest.fixture
def fail_next(sandbox):
    def fail(path: str, count: int):
        requests.post(f"{sandbox.url}/sandbox/his/fail-next", json={"path": path, "count": count},
                      timeout=5).raise_for_status()
    yield fail
    requests.delete(f"{sandbox.url}/sandbox/his/fail-next", timeout=5).raise_for_status()


# --- identifiers ---------------------------------------------------------------------------------

def test_the_numbers_we_make_match_the_patterns_the_edge_accepts():
    now = datetime.now(UTC)
    for kind in ("booking", "topup", "visit_bill"):
        assert re.fullmatch(ORDER_NO_PATTERN, ids.new_business_no(kind, now))
    assert re.fullmatch(REFUND_REQUEST_NO_PATTERN, ids.new_business_no("refund", now))


@pytest.mark.parametrize("bill_id", ["", " B00000001", "B00000001\n", "../../bills/B00000001", "B0000001?x=1",
                                     "B" * 65, "账单1", "B00000001%2F..", "-B1"],
                         ids=["empty", "leading space", "newline", "path traversal", "query", "65 chars", "non-ascii",
                              "encoded slash", "leading dash"])
def test_a_bill_id_that_cannot_be_one_is_422_without_a_his_call(client, sandbox, patient_user, bill_id):
    headers, card_no = patient_user
    bills_path = f"/his/cards/{card_no}/bills"
    before = _his_calls(sandbox, bills_path)

    resp = place_order(client, headers, bills(card_no, ["B00000001", bill_id]))

    assert resp.status_code == 422, resp.get_json()
    assert "bill_ids" in resp.get_json()["errors"]["json"]
    assert _his_calls(sandbox, bills_path) == before


def test_the_same_bill_twice_is_422_without_a_his_call(client, sandbox, patient_user):
    headers, card_no = patient_user
    bills_path = f"/his/cards/{card_no}/bills"
    before = _his_calls(sandbox, bills_path)
    resp = place_order(client, headers, bills(card_no, ["B00000001", "B00000001"]))
    assert resp.status_code == 422 and "bill_ids" in resp.get_json()["errors"]["json"]
    assert _his_calls(sandbox, bills_path) == before


@pytest.mark.parametrize("number", GARBAGE_NUMBERS)
@pytest.mark.parametrize("method, template", [("GET", f"{MP}/orders/{{}}"), ("POST", f"{MP}/orders/{{}}/pay"),
                                              ("POST", f"{MP}/orders/{{}}/cancel"), ("GET", f"{MP}/refunds/{{}}")])
def test_a_mini_program_path_number_that_cannot_be_one_is_404_before_any_query(client, rt, patient_user, method,
                                                                             template, number):
    headers, _card = patient_user
    with statements(rt) as sent:
        resp = client.open(template.format(number), method=method, json={}, headers=headers)
    assert resp.status_code == 404, resp.get_json()
    assert sent == []


@pytest.fixture(scope="module")
def staff(app, rt, demo_clinic):
    headers, _username = staff_headers(app.test_client(), rt, "staff")
    return headers


@pytest.mark.parametrize("number", GARBAGE_NUMBERS)
@pytest.mark.parametrize("method, template", [("GET", "/bookings/{}"), ("POST", "/bookings/{}/confirm"),
                                              ("POST", "/bookings/{}/no-show"), ("POST", "/bookings/{}/reschedule"),
                                              ("POST", "/bookings/{}/cancel"), ("POST", "/orders/{}/redeem")])
def test_an_admin_path_order_number_that_cannot_be_one_is_404_before_any_query(client, rt, staff, method, template,
                                                                             number):
    with statements(rt) as sent:
        resp = client.open(f"{ADMIN}{template.format(number)}", method=method, json={}, headers=staff)
    assert resp.status_code == 404, resp.get_json()
    assert sent == []


def test_the_path_patterns_are_published(client):
    paths = client.get("/openapi.json").get_json()["paths"]
    for path, name in ((f"{MP}/orders/{{order_no}}", "order_no"), (f"{ADMIN}/orders/{{order_no}}/redeem", "order_no"),
                       (f"{MP}/refunds/{{refund_request_no}}", "refund_request_no")):
        item = paths[path]
        parameters = item.get("parameters", []) + [p for key, operation in item.items() if key != "parameters"
                                                   for p in operation.get("parameters", [])]
        patterns = {p["schema"]["pattern"] for p in parameters if p["name"] == name}
        assert patterns == {f"^{ORDER_NO_PATTERN if name == 'order_no' else REFUND_REQUEST_NO_PATTERN}$"}


# --- the HIS failing now and then ----------------------------------------------------------------

def test_a_bill_read_failing_twice_then_answering_places_the_order(client, sandbox, patient_user, fail_next):
    headers, card_no = patient_user
    bill_id = his_bill(sandbox, card_no, 1_200)
    bills_path = f"/his/cards/{card_no}/bills"
    before = _his_calls(sandbox, bills_path)
    fail_next(bills_path, 2)

    resp = place_order(client, headers, bills(card_no, [bill_id]))

    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["amount_fen"] == 1_200
    assert _his_calls(sandbox, bills_path) == before + 3


def test_a_his_that_keeps_failing_is_a_declared_503_with_retry_after(client, sandbox, patient_user):
    """Every HIS call fails: the read is tried three times, then the answer is 503 with Retry-After. The fault
    is global to the session's sandbox, so it is set for one request and always cleared."""
    headers, card_no = patient_user
    bill_id = his_bill(sandbox, card_no, 1_300)
    bills_path = f"/his/cards/{card_no}/bills"
    before = _his_calls(sandbox, bills_path)
    requests.post(f"{sandbox.url}/sandbox/faults", json={"his_error_rate": 1}, timeout=5).raise_for_status()
    try:
        resp = place_order(client, headers, bills(card_no, [bill_id]))
    finally:
        requests.delete(f"{sandbox.url}/sandbox/faults", timeout=5).raise_for_status()

    assert resp.status_code == 503 and resp.get_json()["error"] == "his_unavailable"
    assert int(resp.headers["Retry-After"]) >= 1
    assert _his_calls(sandbox, bills_path) == before + 3
    retried = place_order(client, headers, bills(card_no, [bill_id]))
    assert retried.status_code == 201, retried.get_json()


@pytest.mark.parametrize("method, path", [
    ("post", f"{MP}/orders"), ("post", f"{MP}/orders/{{order_no}}/pay"), ("post", f"{MP}/orders/{{order_no}}/cancel"),
    ("post", f"{MP}/cards/{{card_no}}/refunds"), ("post", f"{ADMIN}/orders/{{order_no}}/redeem"),
    ("post", "/api/his/v1/refunds"),
])
def test_operations_that_reach_the_his_or_a_channel_declare_503(client, method, path):
    responses = client.get("/openapi.json").get_json()["paths"][path][method]["responses"]
    assert "503" in responses
