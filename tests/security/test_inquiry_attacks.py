"""Attack: use "I paid but it does not show" to hammer the payment channel, or to learn about other people's orders.

Each inquiry costs a query to the channel, so it is limited per mini-program user and per order; asking about
someone else's order is a 404 that never reaches the channel and does not use up the owner's budget.
"""
from __future__ import annotations

import requests

from tests.api.order_helpers import MP, add_patient, booking, created, label, place_order, user
from tests.e2e.helpers import fresh_slot
from tests.security.test_rate_limits import assert_rate_limited, limited_app


def _paying_order(client, sandbox, rt, headers) -> str:
    patient = add_patient(client, headers, "郑十", "13700005555")
    item_id, slot_id = fresh_slot(rt, capacity=3)
    order_no = created(place_order(client, headers, booking(item_id, slot_id, patient["id"])))["order_no"]
    assert client.post(f"{MP}/orders/{order_no}/pay", headers=headers).status_code == 200
    return order_no


def _channel_queries(sandbox, out_trade_prefix: str) -> int:
    log = requests.get(f"{sandbox.url}/sandbox/log", timeout=10).json()
    return sum(1 for entry in log if out_trade_prefix in str(entry) and "orderquery" in str(entry))


def test_one_order_is_asked_about_a_few_times_a_minute_then_429(settings, sandbox, rt, demo_clinic):
    with limited_app(settings, RATE_INQUIRY_PER_ORDER="3/minute") as client:
        headers = user(client, sandbox, label("rl-inquiry"))
        first, second = _paying_order(client, sandbox, rt, headers), _paying_order(client, sandbox, rt, headers)
        answers = [client.post(f"{MP}/orders/{first}/inquiry", headers=headers) for _ in range(6)]
        other_order = client.post(f"{MP}/orders/{second}/inquiry", headers=headers)

    assert [a.status_code for a in answers[:3]] == [200] * 3
    for answer in answers[3:]:
        assert_rate_limited(answer)
    assert other_order.status_code == 200
    assert _channel_queries(sandbox, first) == 3


def test_one_user_asking_about_many_orders_is_cut_off(settings, sandbox, rt, demo_clinic):
    with limited_app(settings, RATE_INQUIRY_PER_USER="2/minute") as client:
        headers = user(client, sandbox, label("rl-inquirer"))
        orders = [_paying_order(client, sandbox, rt, headers) for _ in range(3)]
        answers = [client.post(f"{MP}/orders/{order_no}/inquiry", headers=headers) for order_no in orders]
        someone_else = user(client, sandbox, label("rl-bystander"))
        theirs = client.post(f"{MP}/orders/{_paying_order(client, sandbox, rt, someone_else)}/inquiry",
                             headers=someone_else)

    assert [a.status_code for a in answers[:2]] == [200, 200]
    assert_rate_limited(answers[2])
    assert theirs.status_code == 200


def test_probing_someone_elses_order_is_404_and_spends_none_of_its_owners_budget(settings, sandbox, rt, demo_clinic):
    with limited_app(settings, RATE_INQUIRY_PER_ORDER="2/minute", RATE_INQUIRY_PER_USER="100/minute") as client:
        owner = user(client, sandbox, label("rl-owner"))
        order_no = _paying_order(client, sandbox, rt, owner)
        prober = user(client, sandbox, label("rl-prober"))
        probes = [client.post(f"{MP}/orders/{order_no}/inquiry", headers=prober) for _ in range(5)]
        receipt = client.get(f"{MP}/orders/{order_no}/receipt", headers=prober)
        owners = [client.post(f"{MP}/orders/{order_no}/inquiry", headers=owner) for _ in range(2)]

    assert {(p.status_code, p.get_json()["error"]) for p in probes} == {(404, "order_not_found")}
    assert order_no not in receipt.get_data(as_text=True) and receipt.status_code == 404
    assert [o.status_code for o in owners] == [200, 200]
    assert _channel_queries(sandbox, order_no) == 2
