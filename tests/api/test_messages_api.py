"""The HIS announcing bills (`POST /api/his/v1/events`), the patient's subscriptions and inbox
(`/api/mp/v1/subscriptions`, `/api/mp/v1/messages`), and a channel app's message templates
(`/api/admin/v1/channel-apps/{id}/message-templates`), on the in-process app against the sandbox HIS."""
from __future__ import annotations

import json
import secrets

import pytest
import requests
from sqlalchemy import select

from app.db.models import MessagePush
from tests.api.admin_helpers import label
from tests.api.order_helpers import add_patient, user
from tests.his_auth import his_headers

MP = "/api/mp/v1"
EVENTS = "/api/his/v1/events"


def _his_key(sandbox) -> dict:
    return sandbox.merchants()["his"][0]  # the demo clinic's key (seed-demo)


def announce(client, sandbox, body: dict, key: dict | None = None):
    raw = json.dumps(body).encode()
    key = key or _his_key(sandbox)
    headers = {"Content-Type": "application/json", **his_headers(key["key_id"], key["secret"], "POST", EVENTS, raw)}
    return client.post(EVENTS, data=raw, headers=headers)


def new_bill(sandbox, card_no: str, amount_fen: int = 2500, title: str = "血常规") -> str:
    """A bill the sandbox HIS opens on the card (the platform hears of it when the test announces it)."""
    resp = requests.post(f"{sandbox.url}/sandbox/his/bills", json={"card_no": card_no, "kind": "lab", "title": title,
                                                                   "amount_fen": amount_fen}, timeout=10)
    assert resp.status_code == 201, resp.text
    return resp.json()["bill_id"]


def card_holder(client, sandbox, channel: str = "wechat") -> tuple[dict, str]:
    """A new mini-program user with a patient and a card the HIS opened for them: (headers, card_no)."""
    headers = user(client, sandbox, label("msg"), channel)
    patient = add_patient(client, headers, "赵六", "13700002222")
    resp = client.post(f"{MP}/patients/{patient['id']}/cards", json={"create": True}, headers=headers)
    assert resp.status_code == 201, resp.get_json()
    return headers, resp.get_json()["card_no"]


def bill_template(client, headers: dict) -> str:
    resp = client.get(f"{MP}/subscriptions", headers=headers)
    assert resp.status_code == 200, resp.get_json()
    return next(t["template_id"] for t in resp.get_json() if t["purpose"] == "bill_created")


def inbox(client, headers: dict, **query) -> dict:
    resp = client.get(f"{MP}/messages", headers=headers, query_string=query)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


@pytest.mark.parametrize("channel", ["wechat", "alipay"])
def test_the_app_lists_its_templates_and_each_accept_allows_one_more_message(client, sandbox, demo_clinic, channel):
    headers = user(client, sandbox, label("subs"), channel)
    listed = client.get(f"{MP}/subscriptions", headers=headers).get_json()
    app = next(m for m in sandbox.merchants()[channel] if m["clinic_code"] == "demo")
    assert {(t["template_id"], t["purpose"]) for t in listed} == {(t["template_id"], t["purpose"])
                                                                 for t in app["message_templates"]}
    assert all(t["allowance"] == 0 for t in listed)
    tid = bill_template(client, headers)
    for expected in (1, 2):
        answered = client.post(f"{MP}/subscriptions", json={"template_ids": [tid]}, headers=headers)
        assert answered.status_code == 200
        assert next(t["allowance"] for t in answered.get_json() if t["template_id"] == tid) == expected
    banned = client.post(f"{MP}/subscriptions", json={"template_ids": [tid], "result": "ban"}, headers=headers)
    assert next(t["allowance"] for t in banned.get_json() if t["template_id"] == tid) == 0


def test_an_answer_is_counted_once_per_idempotency_key(client, sandbox, demo_clinic):
    headers = user(client, sandbox, label("subs"))
    tid = bill_template(client, headers)
    for _ in range(3):
        resp = client.post(f"{MP}/subscriptions", json={"template_ids": [tid]},
                           headers={**headers, "Idempotency-Key": "answer-1"})
        assert next(t["allowance"] for t in resp.get_json() if t["template_id"] == tid) == 1


@pytest.mark.parametrize(("body", "code"), [
    ({"template_ids": ["not-a-template-of-this-app"]}, "unknown_template"),
    ({"template_ids": []}, "validation_failed"),
    ({"template_ids": ["a", "b", "c", "d"]}, "validation_failed"),
    ({"template_ids": ["dup", "dup"]}, "validation_failed"),
    ({"template_ids": ["x"], "result": "maybe"}, "validation_failed"),
    ({}, "validation_failed"),
])
def test_bad_answers_are_refused(client, sandbox, demo_clinic, body, code):
    headers = user(client, sandbox, label("subs"))
    resp = client.post(f"{MP}/subscriptions", json=body, headers=headers)
    assert resp.status_code == 422 and resp.get_json()["error"] == code


def test_another_apps_template_cannot_be_subscribed(client, sandbox, demo_clinic):
    wechat = user(client, sandbox, label("subs"), "wechat")
    alipay = user(client, sandbox, label("subs"), "alipay")
    resp = client.post(f"{MP}/subscriptions", json={"template_ids": [bill_template(client, alipay)]}, headers=wechat)
    assert resp.status_code == 422 and resp.get_json()["error"] == "unknown_template"


def test_an_announced_bill_lands_in_the_holders_inbox_and_a_push_waits_for_the_subscribed(client, sandbox, rt,
                                                                                          demo_clinic):
    headers, card_no = card_holder(client, sandbox)
    client.post(f"{MP}/subscriptions", json={"template_ids": [bill_template(client, headers)]}, headers=headers)
    bill_id = new_bill(sandbox, card_no, 2500, "血常规")

    event = {"type": "bill_created", "card_no": card_no, "bill_id": bill_id}
    resp = announce(client, sandbox, event)
    assert resp.status_code == 202 and resp.get_json() == {"accepted": True}
    assert announce(client, sandbox, event).status_code == 202  # the HIS announcing again changes nothing
    page = inbox(client, headers)
    assert page["total"] == 1
    [message] = page["items"]
    assert (message["kind"], message["bill_id"], message["card_no"], message["amount_fen"]) == (
        "bill_created", bill_id, card_no, 2500)
    assert message["title"] == "待缴费：血常规" and message["page"] == f"pages/bills/index?card_no={card_no}"
    # Pending until a worker sends it (a platform started by an earlier test may have sent it already).
    assert message["pushed"] in ("pending", "sent")
    with rt.db.session() as session:
        [push] = session.scalars(select(MessagePush).where(MessagePush.message_id == message["id"])).all()
        assert push.data["thing1"] == {"value": "血常规"} and push.data["amount2"] == {"value": "25.00"}


def test_a_holder_who_did_not_subscribe_sees_the_bill_but_nothing_is_pushed(client, sandbox, demo_clinic):
    headers, card_no = card_holder(client, sandbox, "alipay")
    bill_id = new_bill(sandbox, card_no)
    assert announce(client, sandbox, {"type": "bill_created", "card_no": card_no, "bill_id": bill_id}).status_code \
        == 202
    [message] = inbox(client, headers)["items"]
    assert message["bill_id"] == bill_id and message["pushed"] is None


def test_a_cancelled_bill_is_a_second_message_and_the_inbox_is_newest_first_and_paged(client, sandbox, demo_clinic):
    headers, card_no = card_holder(client, sandbox)
    bills = [new_bill(sandbox, card_no, 100 * n, f"检验 {n}") for n in (1, 2, 3)]
    for bill_id in bills:
        announce(client, sandbox, {"type": "bill_created", "card_no": card_no, "bill_id": bill_id})
    cancelled = requests.post(f"{sandbox.url}/sandbox/his/bills/{bills[0]}/cancel", timeout=10)
    assert cancelled.status_code == 200, cancelled.text
    announce(client, sandbox, {"type": "bill_cancelled", "card_no": card_no, "bill_id": bills[0]})
    page = inbox(client, headers, limit=2)
    assert page["total"] == 4 and [m["kind"] for m in page["items"]] == ["bill_cancelled", "bill_created"]
    assert page["items"][0]["title"] == "账单已撤销：检验 1" and page["items"][1]["bill_id"] == bills[2]
    assert [m["bill_id"] for m in inbox(client, headers, limit=2, offset=2)["items"]] == [bills[1], bills[0]]


def test_another_user_never_sees_someone_elses_messages(client, sandbox, demo_clinic):
    headers, card_no = card_holder(client, sandbox)
    announce(client, sandbox, {"type": "bill_created", "card_no": card_no, "bill_id": new_bill(sandbox, card_no)})
    stranger = user(client, sandbox, label("stranger"))
    assert inbox(client, headers)["total"] == 1 and inbox(client, stranger)["total"] == 0
    assert client.get(f"{MP}/messages").status_code == 401


def test_an_unknown_card_is_accepted_and_nothing_happens(client, sandbox, demo_clinic):
    resp = announce(client, sandbox, {"type": "bill_created", "card_no": "NOBODY-HOLDS-IT", "bill_id": "B404"})
    assert resp.status_code == 202 and resp.get_json() == {"accepted": True}


@pytest.mark.parametrize("body", [
    {"type": "bill_paid", "card_no": "D0000001", "bill_id": "B1"},
    {"type": "bill_created", "card_no": "D0000001", "bill_id": "../../etc"},
    {"type": "bill_created", "card_no": "D 01", "bill_id": "B1"},
    {"type": "bill_created", "card_no": "D0000001"},
])
def test_a_malformed_announcement_is_422_once_signed(client, sandbox, demo_clinic, body):
    resp = announce(client, sandbox, body)
    assert resp.status_code == 422 and resp.get_json()["error"] == "validation_failed"


def test_an_unsigned_or_replayed_announcement_is_401_before_its_body_is_read(client, sandbox, demo_clinic):
    body = {"type": "bill_created", "card_no": "D0000001", "bill_id": "B1"}
    assert client.post(EVENTS, json=body).status_code == 401
    raw = json.dumps(body).encode()
    key = _his_key(sandbox)
    signed = {"Content-Type": "application/json", **his_headers(key["key_id"], key["secret"], "POST", EVENTS, raw)}
    assert client.post(EVENTS, data=raw, headers=signed).status_code == 202
    replay = client.post(EVENTS, data=raw, headers=signed)
    assert replay.status_code == 401 and replay.get_json()["error"] == "replayed_request"
    garbage = {**signed, "X-HIS-Nonce": secrets.token_hex(16)}
    assert client.post(EVENTS, data=b"not json", headers=garbage).status_code == 401
