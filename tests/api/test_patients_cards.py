"""The mini-program patients and cards endpoints against real PostgreSQL and the sandbox HIS over HTTP."""
from __future__ import annotations

import json
import logging
import uuid

import pytest
import requests
from sqlalchemy import select

from app.db.models import Patient
from tests.api.card_helpers import ask_code, bind, his_card, texts, unique_phone
from tests.api.mp_helpers import bearer, login
from tests.his_auth import sandbox_his_auth

MP = "/api/mp/v1"


def _user(client, sandbox, openid: str) -> dict:
    return bearer(login(client, sandbox, "wechat", openid=openid)["token"])


def _add_patient(client, headers, name: str, phone: str = "13900001111", **extra) -> dict:
    resp = client.post(f"{MP}/patients", json={"name": name, "phone": phone, **extra}, headers=headers)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def _bound_card(client, sandbox, headers, balance_fen: int = 0) -> tuple[dict, dict]:
    card = his_card(sandbox, balance_fen=balance_fen)
    patient = _add_patient(client, headers, card["name"], phone=card["phone"])
    resp = bind(client, sandbox, headers, patient["id"], card["card_no"], card["phone"])
    assert resp.status_code == 201, resp.get_json()
    return patient, card


# --- patients --------------------------------------------------------------------------------------

def test_patients_are_created_and_listed_with_phone_and_id_number_masked(client, sandbox, demo_clinic, caplog):
    caplog.set_level(logging.DEBUG)
    headers = _user(client, sandbox, "patients-test-1")
    resp = client.post(f"{MP}/patients", headers=headers, json={
        "name": "李雷", "phone": "13812345678", "id_number": "11010119900307123x", "relation": "self"})
    assert resp.status_code == 201
    created = resp.get_json()
    assert created["name"] == "李雷" and created["relation"] == "self" and created["cards"] == []
    assert created["phone"] == "138****5678"
    assert created["id_number"] == "110***********123X"

    listing = client.get(f"{MP}/patients", headers=headers)
    assert listing.status_code == 200
    assert [p for p in listing.get_json() if p["id"] == created["id"]] == [created]
    for text in (resp.get_data(as_text=True), listing.get_data(as_text=True), caplog.text):
        assert "13812345678" not in text
        assert "11010119900307123" not in text


def test_one_phone_may_be_shared_by_several_patients_and_users(client, sandbox, demo_clinic):
    parent = _user(client, sandbox, "patients-test-share-1")
    other = _user(client, sandbox, "patients-test-share-2")
    first = _add_patient(client, parent, "王芳", phone="13611112222", relation="parent")
    second = _add_patient(client, parent, "王小明", phone="13611112222", relation="child")
    third = _add_patient(client, other, "王建国", phone="13611112222", relation="spouse")

    assert len({first["id"], second["id"], third["id"]}) == 3
    assert [p["id"] for p in client.get(f"{MP}/patients", headers=parent).get_json()] == [first["id"], second["id"]]
    assert [p["id"] for p in client.get(f"{MP}/patients", headers=other).get_json()] == [third["id"]]


@pytest.mark.parametrize("field, body", [
    ("name", {"name": "", "phone": "13812345678"}),
    ("name", {"name": "   ", "phone": "13812345678"}),
    ("name", {"name": "字" * 51, "phone": "13812345678"}),
    ("phone", {"name": "张三", "phone": "12812345678"}),
    ("phone", {"name": "张三", "phone": "1381234567"}),
    ("phone", {"name": "张三", "phone": "13812345678\n"}),
    ("phone", {"name": "张三"}),
    ("id_number", {"name": "张三", "phone": "13812345678", "id_number": "11010119900307123Y"}),
    ("id_number", {"name": "张三", "phone": "13812345678", "id_number": "1101011990030712"}),
    ("relation", {"name": "张三", "phone": "13812345678", "relation": "cousin"}),
])
def test_invalid_patient_fields_are_422_naming_the_field(client, sandbox, demo_clinic, field, body):
    headers = _user(client, sandbox, "patients-test-invalid")
    resp = client.post(f"{MP}/patients", json=body, headers=headers)
    assert resp.status_code == 422
    assert field in json.dumps(resp.get_json()["errors"])
    assert client.get(f"{MP}/patients", headers=headers).get_json() == []


def test_idempotency_key_replays_the_first_patient_and_refuses_another_body(client, sandbox, demo_clinic):
    headers = _user(client, sandbox, "patients-test-idem")
    body = {"name": "韩梅梅", "phone": "13512345678"}
    first = client.post(f"{MP}/patients", json=body, headers={**headers, "Idempotency-Key": "add-hmm-1"})
    again = client.post(f"{MP}/patients", json=body, headers={**headers, "Idempotency-Key": "add-hmm-1"})
    other = client.post(f"{MP}/patients", json={**body, "name": "韩雪"},
                        headers={**headers, "Idempotency-Key": "add-hmm-1"})
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    assert other.status_code == 409 and other.get_json()["error"] == "idempotency_key_reused"
    assert len(client.get(f"{MP}/patients", headers=headers).get_json()) == 1


# --- binding and opening cards ------------------------------------------------------------------------

def test_binding_a_demo_card_takes_the_holders_name_phone_and_texted_code(client, sandbox, demo_clinic):
    headers = _user(client, sandbox, "patients-test-bind")
    holder = requests.get(f"{sandbox.url}/sandbox/cards/D0000001", timeout=5).json()["patient"]
    patient = _add_patient(client, headers, holder["name"], phone=holder["phone"])

    bound = bind(client, sandbox, headers, patient["id"], "D0000001", holder["phone"])
    assert bound.status_code == 201
    assert bound.get_json() == {"card_no": "D0000001", "patient_id": patient["id"], "verified": True}
    twice = ask_code(client, headers, patient["id"], "D0000001")
    assert twice.status_code == 200 and twice.get_json() == bound.get_json()
    listed = {p["id"]: p for p in client.get(f"{MP}/patients", headers=headers).get_json()}
    assert listed[patient["id"]]["cards"] == [bound.get_json()]
    assert client.get(f"{MP}/cards/D0000001", headers=headers).status_code == 200


def test_the_code_request_says_where_the_code_went_masked(client, sandbox, demo_clinic, caplog):
    caplog.set_level(logging.DEBUG)
    headers = _user(client, sandbox, "patients-test-sent-to")
    card = his_card(sandbox, id_number="110101198001010014")
    # Matched by name and ID number: the code goes to the phone the HIS holds, not to the patient's own.
    own_phone = unique_phone()
    patient = _add_patient(client, headers, card["name"], phone=own_phone, id_number="110101198001010014")
    asked = ask_code(client, headers, patient["id"], card["card_no"])
    assert asked.status_code == 202
    assert asked.get_json() == {"verification": "sms", "sent_to": f"{card['phone'][:3]}****{card['phone'][-4:]}",
                                "expires_in": 300}
    [text] = texts(sandbox, card["phone"])
    assert card["card_no"] not in text["text"] and text["template_code"] == "SMS_CARD_BIND"
    assert texts(sandbox, own_phone) == []
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith(("app", "hpay")))
    assert "binding code" in ours
    for output in (asked.get_data(as_text=True), ours):
        assert card["phone"] not in output and own_phone not in output
        assert text["params"]["code"] not in output


@pytest.mark.parametrize("body", [{}, {"create": False}, {"card_no": "D0000001", "create": True}, {"card_no": ""},
                                  {"sms_code": "123456"}, {"create": True, "sms_code": "123456"},
                                  {"card_no": "D0000001", "sms_code": "12345"},
                                  {"card_no": "D0000001", "sms_code": "1234567"},
                                  {"card_no": "D0000001", "sms_code": "12345a"},
                                  {"card_no": "D0000001", "sms_code": "１２３４５６"},
                                  {"card_no": "D0000001", "sms_code": "123456\n"},
                                  {"card_no": "D0000001", "sms_code": 123456}])
def test_card_request_must_choose_bind_or_create(client, sandbox, demo_clinic, body):
    headers = _user(client, sandbox, "patients-test-card-body")
    patient = _add_patient(client, headers, "选一个")
    resp = client.post(f"{MP}/patients/{patient['id']}/cards", json=body, headers=headers)
    assert resp.status_code == 422


def test_opening_a_card_creates_the_his_patient_once(client, sandbox, demo_clinic, rt):
    headers = _user(client, sandbox, "patients-test-open")
    name = f"新卡{uuid.uuid4().hex[:6]}"
    patient = _add_patient(client, headers, name, phone="13398765432", id_number="440301199512120016")

    opened = client.post(f"{MP}/patients/{patient['id']}/cards", json={"create": True}, headers=headers)
    assert opened.status_code == 201
    card_no = opened.get_json()["card_no"]
    # The HIS opened it for this very patient: no code is needed, and it is usable at once.
    assert opened.get_json() == {"card_no": card_no, "patient_id": patient["id"], "verified": True}
    assert client.get(f"{MP}/cards/{card_no}", headers=headers).get_json()["balance_fen"] == 0
    his_card = requests.get(f"{sandbox.url}/sandbox/cards/{card_no}", timeout=5).json()
    assert his_card["balance_fen"] == 0
    assert (his_card["patient"]["name"], his_card["patient"]["phone"]) == (name, "13398765432")
    assert his_card["patient"]["id_number"] == "440301199512120016"
    with rt.db.session() as session:
        assert session.scalar(select(Patient.his_patient_id).where(Patient.id == patient["id"])) \
            == his_card["patient"]["id"]

    retried = client.post(f"{MP}/patients/{patient['id']}/cards", json={"create": True}, headers=headers)
    assert retried.status_code == 200 and retried.get_json() == opened.get_json()
    his_patient = requests.get(f"{sandbox.url}/sandbox/cards/{card_no}", timeout=5).json()["patient"]
    assert his_patient["card_nos"] == [card_no]


# --- balance and bills ----------------------------------------------------------------------------------

def test_card_balance_is_read_live_from_the_his(client, sandbox, demo_clinic):
    headers = _user(client, sandbox, "patients-test-balance")
    patient, his_card = _bound_card(client, sandbox, headers, balance_fen=12_345)
    card_no = his_card["card_no"]
    resp = client.get(f"{MP}/cards/{card_no}", headers=headers)
    assert resp.status_code == 200
    assert resp.get_json() == {"card_no": card_no, "patient_id": patient["id"], "balance_fen": 12_345}

    recharge = requests.post(f"{sandbox.url}/his/recharges", auth=sandbox_his_auth(sandbox), timeout=5, json={
        "card_no": card_no, "amount_fen": 655, "order_no": f"T-{card_no}", "idempotency_key": f"t-{card_no}"})
    assert recharge.status_code == 201
    sandbox_balance = requests.get(f"{sandbox.url}/sandbox/cards/{card_no}", timeout=5).json()["balance_fen"]
    assert client.get(f"{MP}/cards/{card_no}", headers=headers).get_json()["balance_fen"] == sandbox_balance == 13_000


def test_demo_card_balance_equals_the_sandboxs(client, sandbox, demo_clinic):
    headers = _user(client, sandbox, "patients-test-demo-balance")
    holder = requests.get(f"{sandbox.url}/sandbox/cards/D0000003", timeout=5).json()["patient"]
    patient = _add_patient(client, headers, holder["name"], phone=holder["phone"])
    assert bind(client, sandbox, headers, patient["id"], "D0000003", holder["phone"]).status_code == 201
    ours = client.get(f"{MP}/cards/D0000003", headers=headers).get_json()["balance_fen"]
    assert ours == requests.get(f"{sandbox.url}/sandbox/cards/D0000003", timeout=5).json()["balance_fen"]


def test_unpaid_bills_are_listed_from_the_his(client, sandbox, demo_clinic):
    headers = _user(client, sandbox, "patients-test-bills")
    _patient, his_card = _bound_card(client, sandbox, headers)
    card_no = his_card["card_no"]
    assert client.get(f"{MP}/cards/{card_no}/bills", headers=headers).get_json() == []
    made = [requests.post(f"{sandbox.url}/sandbox/his/bills", timeout=5, json={
        "card_no": card_no, "kind": kind, "title": title, "amount_fen": amount}).json()
        for kind, title, amount in [("exam", "血常规检查", 3_200), ("prescription", "阿莫西林", 1_880)]]
    resp = client.get(f"{MP}/cards/{card_no}/bills", headers=headers)
    assert resp.status_code == 200
    assert resp.get_json() == [{"bill_id": b["bill_id"], "kind": b["kind"], "title": b["title"],
                                "amount_fen": b["amount_fen"]} for b in made]

    requests.post(f"{sandbox.url}/sandbox/his/bills/{made[0]['bill_id']}/pay-elsewhere", timeout=5).raise_for_status()
    assert [b["bill_id"] for b in client.get(f"{MP}/cards/{card_no}/bills", headers=headers).get_json()] \
        == [made[1]["bill_id"]]


def test_another_users_patient_and_card_are_404(client, sandbox, demo_clinic):
    owner = _user(client, sandbox, "patients-test-owner")
    intruder = _user(client, sandbox, "patients-test-intruder")
    patient, his_card = _bound_card(client, sandbox, owner, balance_fen=500)
    card_no = his_card["card_no"]

    for path in (f"{MP}/cards/{card_no}", f"{MP}/cards/{card_no}/bills"):
        resp = client.get(path, headers=intruder)
        assert resp.status_code == 404 and resp.get_json()["error"] == "card_not_found"
        assert "500" not in resp.get_data(as_text=True)
    for body in ({"card_no": card_no}, {"create": True}):
        resp = client.post(f"{MP}/patients/{patient['id']}/cards", json=body, headers=intruder)
        assert resp.status_code == 404 and resp.get_json()["error"] == "patient_not_found"
    assert client.get(f"{MP}/patients", headers=intruder).get_json() == []
    assert client.get(f"{MP}/cards/NOT-BOUND-1", headers=owner).status_code == 404


def test_a_his_outage_is_503_his_unavailable(client, sandbox, demo_clinic):
    headers = _user(client, sandbox, "patients-test-outage")
    patient, his_card = _bound_card(client, sandbox, headers)
    requests.post(f"{sandbox.url}/sandbox/faults", json={"his_error_rate": 1.0}, timeout=5).raise_for_status()
    try:
        balance = client.get(f"{MP}/cards/{his_card['card_no']}", headers=headers)
        bills = client.get(f"{MP}/cards/{his_card['card_no']}/bills", headers=headers)
        opening = client.post(f"{MP}/patients/{patient['id']}/cards", json={"create": True}, headers=headers)
        binding = ask_code(client, headers, patient["id"], "D0000009")
    finally:
        requests.delete(f"{sandbox.url}/sandbox/faults", timeout=5).raise_for_status()
    for resp in (balance, bills, opening, binding):
        assert resp.status_code == 503
        assert resp.get_json()["error"] == "his_unavailable" and resp.get_json()["message"]


@pytest.mark.parametrize("method, path, body", [
    ("get", f"{MP}/patients", None),
    ("post", f"{MP}/patients", {"name": ""}),
    ("post", f"{MP}/patients/1/cards", {"card_no": "D0000001"}),
    ("get", f"{MP}/cards/D0000001", None),
    ("get", f"{MP}/cards/D0000001/bills", None),
])
def test_every_endpoint_needs_a_bearer_token(client, demo_clinic, method, path, body):
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        resp = getattr(client, method)(path, json=body, headers=headers)
        assert resp.status_code == 401, (path, resp.get_json())
        assert resp.get_json()["message"]


def test_hostile_input_gets_a_4xx_never_a_500(client, sandbox, demo_clinic):
    headers = _user(client, sandbox, "patients-test-hostile")
    assert client.post(f"{MP}/patients", json={"name": "a\x00b", "phone": "13812345678"},
                       headers=headers).status_code == 422
    long_name = _add_patient(client, headers, "长" * 45)
    # A decoded slash leaves no route at all: a plain 404.
    assert client.get(f"{MP}/cards/9%5E%2F%40s%21", headers=headers).status_code == 404
    for path in (f"{MP}/cards/%00", f"{MP}/cards/{'9' * 33}", f"{MP}/cards/%E5%8D%A1/bills", f"{MP}/cards/D1%0A",
                 f"{MP}/cards/9%5E%40s%21/bills"):
        resp = client.get(path, headers=headers)
        assert resp.status_code == 404 and resp.get_json()["error"] == "card_not_found", path
    huge = client.post(f"{MP}/patients/99999999999/cards", json={"create": True}, headers=headers)
    assert huge.status_code == 404 and huge.get_json()["error"] == "patient_not_found"
    # The sandbox HIS keeps names to 40 characters: its refusal reaches the user as a 422, not a crash.
    refused = client.post(f"{MP}/patients/{long_name['id']}/cards", json={"create": True}, headers=headers)
    assert refused.status_code == 422 and refused.get_json()["error"] == "his_rejected"
