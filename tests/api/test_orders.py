"""The mini-program orders API against real PostgreSQL and the sandbox channels and HIS over HTTP.

Orders are placed through the Flask test client, whose notify URL is a dead port: a payment made
at the sandbox here is only ever learnt by querying the channel, which is what expiry must do.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests
from sqlalchemy import select, update

from app.channels import wechat_sign
from app.db.models import ItemInventory, OrderEvent
from app.services.payments.attempts import expire_order
from tests.api.order_helpers import (
    MP,
    add_patient,
    alipay_trade,
    attempts_of,
    bills,
    booking,
    bound_card,
    created,
    his_bill,
    label,
    make_overdue,
    orders_of_user,
    pay,
    paying_booking,
    place_order,
    refusal,
    remaining,
    topup,
    user,
    wechat_merchant,
    wechat_trade,
)
from tests.e2e.helpers import fresh_slot, order_row


@pytest.fixture()
def patient_user(client, sandbox, demo_clinic):
    """A WeChat user with one patient: (headers, patient)."""
    headers = user(client, sandbox, label("patient"))
    return headers, add_patient(client, headers, "王五", "13812345678")


# --- booking ---------------------------------------------------------------------------------------

def test_booking_holds_one_place_at_the_item_price_until_it_expires(client, rt, patient_user):
    headers, patient = patient_user
    item_id, slot_id = fresh_slot(rt, capacity=3)
    before = remaining(client, headers, rt, item_id, slot_id)

    placed_at = datetime.now(UTC)
    order = created(place_order(client, headers, booking(item_id, slot_id, patient["id"])))

    assert before == 3 and remaining(client, headers, rt, item_id, slot_id) == 2
    assert order["type"] == "booking" and order["status"] == "created" and order["channel"] == "wechat"
    assert order["amount_fen"] == 2000 == order["item"]["price_fen"] and order["item"]["id"] == item_id
    assert order["slot"]["id"] == slot_id and order["patient"]["id"] == patient["id"]
    assert order["payments"] == [] and order["refunded_fen"] == 0 and order["paid_at"] is None
    expires_in = datetime.fromisoformat(order["expires_at"]) - placed_at
    assert abs(expires_in.total_seconds() - rt.settings.ORDER_TTL_S) < 10
    assert datetime.fromisoformat(order["appointment_at"]) == datetime.fromisoformat(order["slot"]["starts_at"])


def test_booking_a_slot_of_another_item_or_no_slot_is_404(client, rt, patient_user):
    headers, patient = patient_user
    item_id, slot_id = fresh_slot(rt, capacity=2)
    _other_item, other_slot = fresh_slot(rt, capacity=2)

    wrong = place_order(client, headers, booking(item_id, other_slot, patient["id"]))
    missing = place_order(client, headers, booking(item_id, 2**31 - 1, patient["id"]))

    assert refusal(wrong) == (404, "slot_not_found")
    assert refusal(missing) == (404, "slot_not_found")
    assert remaining(client, headers, rt, item_id, slot_id) == 2


def test_booking_a_slot_that_has_started_is_409(client, rt, patient_user):
    headers, patient = patient_user
    item_id, slot_id = fresh_slot(rt, capacity=2, starts_in=timedelta(minutes=-10))

    resp = place_order(client, headers, booking(item_id, slot_id, patient["id"]))

    assert refusal(resp) == (409, "slot_in_past")
    assert remaining(client, headers, rt, item_id, slot_id) == 2


def test_booking_for_another_users_patient_is_404(client, sandbox, rt, patient_user):
    headers, _mine = patient_user
    other = user(client, sandbox, label("other-patient"))
    theirs = add_patient(client, other, "赵六", "13900009999")
    item_id, slot_id = fresh_slot(rt, capacity=2)

    resp = place_order(client, headers, booking(item_id, slot_id, theirs["id"]))

    assert refusal(resp) == (404, "patient_not_found")
    assert remaining(client, headers, rt, item_id, slot_id) == 2


def test_booking_on_a_channel_other_than_the_login_channel_is_422(client, rt, patient_user):
    headers, patient = patient_user
    item_id, slot_id = fresh_slot(rt, capacity=2)

    resp = place_order(client, headers, booking(item_id, slot_id, patient["id"], channel="alipay"))

    assert refusal(resp) == (422, "channel_mismatch")
    assert remaining(client, headers, rt, item_id, slot_id) == 2


def test_the_last_place_goes_once_then_the_slot_is_sold_out(client, sandbox, rt, patient_user):
    headers, patient = patient_user
    late = user(client, sandbox, label("late"))
    late_patient = add_patient(client, late, "迟到")
    item_id, slot_id = fresh_slot(rt, capacity=1)

    created(place_order(client, headers, booking(item_id, slot_id, patient["id"])))
    resp = place_order(client, late, booking(item_id, slot_id, late_patient["id"]))

    assert refusal(resp) == (409, "slot_sold_out")
    assert remaining(client, headers, rt, item_id, slot_id) == 0


def test_a_channel_whose_inventory_is_used_up_is_409_while_the_slot_keeps_its_place(client, sandbox, rt,
                                                                                    patient_user):
    headers, patient = patient_user
    item_id, slot_id = fresh_slot(rt, capacity=5)
    created(place_order(client, headers, booking(item_id, slot_id, patient["id"])))
    alipay = user(client, sandbox, label("alipay-stock"), channel="alipay")
    alipay_patient = add_patient(client, alipay, "支付宝")
    row = (ItemInventory.item_id == item_id) & (ItemInventory.channel == "wechat")
    with rt.db.session() as session:
        quantity = session.scalar(select(ItemInventory.quantity).where(row))
        session.execute(update(ItemInventory).where(row).values(quantity=ItemInventory.reserved))
    family = add_patient(client, headers, "家属")  # the patient already holds a booking of the item that day
    try:
        resp = place_order(client, headers, booking(item_id, slot_id, family["id"]))
        other_channel = place_order(client, alipay, booking(item_id, slot_id, alipay_patient["id"], "alipay"))
    finally:
        with rt.db.session() as session:
            session.execute(update(ItemInventory).where(row).values(quantity=quantity))

    assert refusal(resp) == (409, "inventory_sold_out")
    assert created(other_channel)["channel"] == "alipay"
    assert remaining(client, headers, rt, item_id, slot_id) == 3


# --- top-ups ---------------------------------------------------------------------------------------

@pytest.fixture()
def card_user(client, sandbox, demo_clinic):
    """A WeChat user with a bound HIS card: (headers, card_no)."""
    headers = user(client, sandbox, label("card"))
    return headers, bound_card(client, sandbox, headers)


def test_topup_amounts_at_the_limits_pass_and_one_fen_outside_is_422(client, rt, card_user):
    headers, card_no = card_user
    low, high = rt.settings.TOPUP_MIN_FEN, rt.settings.TOPUP_MAX_FEN

    lowest = created(place_order(client, headers, topup(card_no, low)))
    highest = created(place_order(client, headers, topup(card_no, high)))
    below = place_order(client, headers, topup(card_no, low - 1))
    above = place_order(client, headers, topup(card_no, high + 1))

    assert (lowest["amount_fen"], highest["amount_fen"]) == (low, high)
    assert lowest["type"] == "topup" and lowest["status"] == "created" and lowest["card_no"] == card_no
    assert refusal(below) == (422, "amount_out_of_range")
    assert refusal(above) == (422, "amount_out_of_range")
    assert above.get_json()["errors"] == {"min_fen": low, "max_fen": high}
    assert orders_of_user(rt, lowest["order_no"]) == 2


def test_topup_of_a_card_not_bound_to_the_user_is_404(client, sandbox, card_user):
    _headers, card_no = card_user
    stranger = user(client, sandbox, label("stranger"))

    assert refusal(place_order(client, stranger, topup(card_no, 1000))) == (404, "card_not_found")
    assert refusal(place_order(client, stranger, topup("NOSUCHCARD", 1000))) == (404, "card_not_found")


@pytest.mark.parametrize("amount", ["1000", 1000.0, 1000.5, None])
def test_topup_amount_must_be_an_integer(client, card_user, amount):
    headers, card_no = card_user
    resp = place_order(client, headers, topup(card_no, amount))
    assert refusal(resp) == (422, "validation_failed")
    assert "amount_fen" in resp.get_json()["errors"]["json"]
    assert client.get(f"{MP}/orders", headers=headers).get_json() == []


# --- visit bills -----------------------------------------------------------------------------------

def test_one_order_covers_several_bills_at_the_his_amounts(client, sandbox, card_user):
    headers, card_no = card_user
    first, second = his_bill(sandbox, card_no, 3650, "exam"), his_bill(sandbox, card_no, 1280, "prescription")

    order = created(place_order(client, headers, bills(card_no, [first, second])))

    assert order["type"] == "visit_bill" and order["status"] == "created"
    assert order["amount_fen"] == 3650 + 1280
    assert order["bill_ids"] == [first, second] and order["card_no"] == card_no


def test_a_client_sent_amount_for_bills_is_422(client, sandbox, card_user):
    headers, card_no = card_user
    bill = his_bill(sandbox, card_no, 3650)

    resp = place_order(client, headers, {**bills(card_no, [bill]), "amount_fen": 1})

    assert resp.status_code == 422 and "amount_fen" in resp.get_json()["errors"]["json"]
    assert client.get(f"{MP}/orders", headers=headers).get_json() == []


def test_bills_paid_elsewhere_or_unknown_to_the_his_are_not_payable(client, sandbox, card_user):
    headers, card_no = card_user
    payable, paid_at_window = his_bill(sandbox, card_no, 500), his_bill(sandbox, card_no, 700)
    resp = requests.post(f"{sandbox.url}/sandbox/his/bills/{paid_at_window}/pay-elsewhere", timeout=5)
    assert resp.status_code == 200, resp.text

    elsewhere = place_order(client, headers, bills(card_no, [payable, paid_at_window]))
    unknown = place_order(client, headers, bills(card_no, ["NO-SUCH-BILL"]))

    assert refusal(elsewhere) == (409, "bill_not_payable")
    assert elsewhere.get_json()["errors"] == {"bill_ids": [paid_at_window]}
    assert refusal(unknown) == (409, "bill_not_payable")
    assert client.get(f"{MP}/orders", headers=headers).get_json() == []


def test_a_bill_already_in_an_open_order_is_409_until_that_order_is_cancelled(client, sandbox, card_user):
    headers, card_no = card_user
    shared, other = his_bill(sandbox, card_no, 900), his_bill(sandbox, card_no, 400)
    first = created(place_order(client, headers, bills(card_no, [shared])))

    overlapping = place_order(client, headers, bills(card_no, [other, shared]))
    assert refusal(overlapping) == (409, "bill_in_progress")
    assert overlapping.get_json()["errors"] == {"bill_ids": [shared]}

    assert client.post(f"{MP}/orders/{first['order_no']}/cancel", json={}, headers=headers).status_code == 200
    again = created(place_order(client, headers, bills(card_no, [other, shared])))
    assert again["amount_fen"] == 1300


# --- Idempotency-Key -------------------------------------------------------------------------------

def test_the_same_key_and_body_returns_the_first_order(client, rt, patient_user):
    headers, patient = patient_user
    item_id, slot_id = fresh_slot(rt, capacity=5)
    body = booking(item_id, slot_id, patient["id"])

    first = place_order(client, headers, body, key="book-once")
    again = place_order(client, headers, body, key="book-once")
    reused = place_order(client, headers, {**body, "channel": "alipay"}, key="book-once")

    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    assert refusal(reused) == (409, "idempotency_key_reused")
    assert orders_of_user(rt, first.get_json()["order_no"]) == 1
    assert remaining(client, headers, rt, item_id, slot_id) == 4


def test_without_a_key_a_repeat_is_a_new_request_not_a_replay(client, rt, patient_user):
    """No key, no replay: the same body again is a second booking of the same patient, item and day, which the
    one-booking rule refuses (it takes no place); the same body for another patient is a new order."""
    headers, patient = patient_user
    item_id, slot_id = fresh_slot(rt, capacity=5)
    body = booking(item_id, slot_id, patient["id"])

    first = created(place_order(client, headers, body))
    assert refusal(place_order(client, headers, body)) == (409, "patient_already_booked")
    other = add_patient(client, headers, "赵六", "13812345679")
    second = created(place_order(client, headers, booking(item_id, slot_id, other["id"])))

    assert first["order_no"] != second["order_no"]
    assert orders_of_user(rt, first["order_no"]) == 2
    assert remaining(client, headers, rt, item_id, slot_id) == 3


def test_a_refusal_is_replayed_for_its_key_even_after_a_place_frees_up(client, sandbox, rt, patient_user):
    headers, patient = patient_user
    holder = user(client, sandbox, label("holder"))
    holder_patient = add_patient(client, holder, "占位")
    item_id, slot_id = fresh_slot(rt, capacity=1)
    held = created(place_order(client, holder, booking(item_id, slot_id, holder_patient["id"])))
    body = booking(item_id, slot_id, patient["id"])

    refused = place_order(client, headers, body, key="sold-out-once")
    assert client.post(f"{MP}/orders/{held['order_no']}/cancel", json={}, headers=holder).status_code == 200
    replayed = place_order(client, headers, body, key="sold-out-once")

    assert refusal(refused) == refusal(replayed) == (409, "slot_sold_out")
    assert replayed.get_json() == refused.get_json()
    assert remaining(client, headers, rt, item_id, slot_id) == 1
    assert created(place_order(client, headers, body, key="sold-out-twice"))["slot"]["id"] == slot_id


# --- paying ----------------------------------------------------------------------------------------

def test_wechat_pay_params_are_signed_for_the_trade_and_a_repeat_reuses_it(client, sandbox, rt, card_user):
    headers, card_no = card_user
    order = created(place_order(client, headers, topup(card_no, 1500)))

    first = pay(client, headers, order["order_no"])
    again = pay(client, headers, order["order_no"])

    merchant = wechat_merchant(sandbox)
    params = first["pay_params"]
    assert first["channel"] == "wechat" and set(params) == {"timeStamp", "nonceStr", "package", "signType",
                                                              "paySign"}
    assert params["signType"] == merchant["sign_type"] and params["timeStamp"].isdigit()
    signed = {"appId": merchant["appid"], **{k: params[k] for k in ("timeStamp", "nonceStr", "package", "signType")}}
    assert params["paySign"] == wechat_sign.sign(signed, merchant["api_key"], params["signType"])
    [attempt] = attempts_of(rt, order["order_no"])
    assert first["out_trade_no"] == again["out_trade_no"] == attempt.out_trade_no
    assert params["package"] == again["pay_params"]["package"] == f"prepay_id={attempt.prepay_id}"
    trade = wechat_trade(sandbox, attempt.out_trade_no)
    assert (trade["prepay_id"], trade["trade_state"], trade["total_fee"]) == (attempt.prepay_id, "NOTPAY", 1500)
    shown = client.get(f"{MP}/orders/{order['order_no']}", headers=headers).get_json()
    assert shown["status"] == "created"
    assert shown["payments"] == [{"out_trade_no": attempt.out_trade_no, "channel": "wechat", "status": "pending",
                                  "amount_fen": 1500, "channel_trade_no": None, "late": False}]


def test_alipay_pay_returns_the_trade_no_and_a_repeat_reuses_it(client, sandbox, rt, demo_clinic):
    headers = user(client, sandbox, label("alipay-pay"), channel="alipay")
    card_no = bound_card(client, sandbox, headers)
    order = created(place_order(client, headers, topup(card_no, 2500, "alipay")))

    first = pay(client, headers, order["order_no"])
    again = pay(client, headers, order["order_no"])

    [attempt] = attempts_of(rt, order["order_no"])
    assert first["channel"] == "alipay" and "pay_params" not in first
    assert first["trade_no"] and first["trade_no"] == again["trade_no"] == attempt.channel_trade_no
    assert first["out_trade_no"] == again["out_trade_no"] == attempt.out_trade_no
    trade = alipay_trade(sandbox, attempt.out_trade_no)
    assert trade["trade_no"] == first["trade_no"]


def test_a_cancelled_or_expired_order_cannot_be_paid(client, rt, card_user):
    headers, card_no = card_user
    cancelled = created(place_order(client, headers, topup(card_no, 1000)))
    expired = created(place_order(client, headers, topup(card_no, 1000)))
    assert client.post(f"{MP}/orders/{cancelled['order_no']}/cancel", json={}, headers=headers).status_code == 200
    make_overdue(rt, expired["order_no"])

    assert refusal(client.post(f"{MP}/orders/{cancelled['order_no']}/pay", headers=headers)) == \
        (409, "order_not_payable")
    assert refusal(client.post(f"{MP}/orders/{expired['order_no']}/pay", headers=headers)) == (409, "order_expired")
    assert attempts_of(rt, cancelled["order_no"]) == [] and attempts_of(rt, expired["order_no"]) == []


def test_another_users_order_cannot_be_paid_read_or_cancelled(client, sandbox, rt, card_user):
    headers, card_no = card_user
    order = created(place_order(client, headers, topup(card_no, 1000)))
    stranger = user(client, sandbox, label("stranger-pay"))
    no = order["order_no"]

    assert refusal(client.post(f"{MP}/orders/{no}/pay", headers=stranger)) == (404, "order_not_found")
    assert refusal(client.get(f"{MP}/orders/{no}", headers=stranger)) == (404, "order_not_found")
    assert refusal(client.post(f"{MP}/orders/{no}/cancel", json={}, headers=stranger)) == (404, "order_not_found")
    assert attempts_of(rt, no) == [] and order_row(rt, no).status == "created"


# --- cancelling and expiry -------------------------------------------------------------------------

def test_cancelling_an_unpaid_booking_frees_its_place_and_closes_the_trade(client, sandbox, rt, patient_user):
    headers, patient = patient_user
    item_id, slot_id, order, out_trade_no = paying_booking(client, rt, headers, patient)
    assert remaining(client, headers, rt, item_id, slot_id) == 1

    resp = client.post(f"{MP}/orders/{order['order_no']}/cancel", json={"reason": "改天再来"}, headers=headers)
    twice = client.post(f"{MP}/orders/{order['order_no']}/cancel", json={}, headers=headers)

    assert resp.status_code == 200, resp.get_json()
    cancelled = resp.get_json()
    assert cancelled["status"] == "cancelled" and [p["status"] for p in cancelled["payments"]] == ["closed"]
    assert remaining(client, headers, rt, item_id, slot_id) == 2
    assert wechat_trade(sandbox, out_trade_no)["trade_state"] == "CLOSED"
    assert refusal(twice) == (409, "invalid_transition")
    assert remaining(client, headers, rt, item_id, slot_id) == 2


def test_an_expired_unpaid_booking_is_closed_after_its_trade_is_closed(client, sandbox, rt, patient_user):
    headers, patient = patient_user
    item_id, slot_id, order, out_trade_no = paying_booking(client, rt, headers, patient)
    order_id = make_overdue(rt, order["order_no"])

    assert expire_order(rt, order_id) == "closed"

    shown = client.get(f"{MP}/orders/{order['order_no']}", headers=headers).get_json()
    assert shown["status"] == "closed" and [p["status"] for p in shown["payments"]] == ["closed"]
    assert remaining(client, headers, rt, item_id, slot_id) == 2
    assert wechat_trade(sandbox, out_trade_no)["trade_state"] == "CLOSED"
    assert expire_order(rt, order_id) == "closed"
    assert remaining(client, headers, rt, item_id, slot_id) == 2


def test_an_expired_booking_paid_at_the_channel_is_paid_not_closed(client, sandbox, rt, patient_user):
    headers, patient = patient_user
    item_id, slot_id, order, out_trade_no = paying_booking(client, rt, headers, patient)
    [attempt] = attempts_of(rt, order["order_no"])
    paid = requests.post(f"{sandbox.url}/sandbox/wechat/pay", json={"prepay_id": attempt.prepay_id,
                                                                   "outcome": "success"}, timeout=5)
    assert paid.status_code == 200, paid.text
    order_id = make_overdue(rt, order["order_no"])

    assert expire_order(rt, order_id) == "paid"

    shown = client.get(f"{MP}/orders/{order['order_no']}", headers=headers).get_json()
    assert shown["status"] == "paid" and shown["paid_at"]
    [payment] = shown["payments"]
    assert payment["status"] == "paid" and payment["channel_trade_no"] == paid.json()["transaction_id"]
    assert remaining(client, headers, rt, item_id, slot_id) == 1
    assert wechat_trade(sandbox, out_trade_no)["trade_state"] == "SUCCESS"
    with rt.db.session() as session:
        moves = list(session.scalars(select(OrderEvent.to_status).where(OrderEvent.order_id == order_id)))
    assert moves == ["paid"]


# --- reading ---------------------------------------------------------------------------------------

def test_orders_are_listed_newest_first_and_only_the_users_own(client, sandbox, rt, demo_clinic):
    headers = user(client, sandbox, label("lister"))
    card_no = bound_card(client, sandbox, headers)
    patient = add_patient(client, headers, "钱七", "13612345678")
    item_id, slot_id = fresh_slot(rt, capacity=2)
    placed = [created(place_order(client, headers, topup(card_no, 1000)))["order_no"],
              created(place_order(client, headers, booking(item_id, slot_id, patient["id"])))["order_no"],
              created(place_order(client, headers, topup(card_no, 2000)))["order_no"]]
    other = user(client, sandbox, label("other-lister"))
    theirs = created(place_order(client, other, topup(bound_card(client, sandbox, other), 3000)))

    listed = client.get(f"{MP}/orders", headers=headers)
    assert listed.status_code == 200
    assert [o["order_no"] for o in listed.get_json()] == placed[::-1]
    assert [o["order_no"] for o in client.get(f"{MP}/orders", headers=other).get_json()] == [theirs["order_no"]]
    assert [o["order_no"] for o in client.get(f"{MP}/orders", query_string={"limit": 1, "offset": 1},
                                              headers=headers).get_json()] == [placed[1]]

    one = client.get(f"{MP}/orders/{placed[1]}", headers=headers)
    assert one.status_code == 200 and one.get_json() == listed.get_json()[1]
    assert one.get_json()["patient"] == {"id": patient["id"], "name": "钱七", "phone": "136****5678"}
    assert "13612345678" not in listed.get_data(as_text=True) + one.get_data(as_text=True)
    assert refusal(client.get(f"{MP}/orders/{theirs['order_no']}", headers=headers)) == (404, "order_not_found")


# --- authentication --------------------------------------------------------------------------------

@pytest.mark.parametrize("method, path, body", [
    ("POST", "/orders", {"type": "topup", "card_no": "D0000001", "amount_fen": 1000, "channel": "wechat"}),
    ("POST", "/orders", None),
    ("GET", "/orders", None),
    ("GET", "/orders?limit=0", None),
    ("GET", "/orders/B20250101000000000000", None),
    ("POST", "/orders/B20250101000000000000/pay", None),
    ("POST", "/orders/B20250101000000000000/cancel", {}),
])
@pytest.mark.parametrize("auth", [None, "Bearer not-a-token"])
def test_every_orders_endpoint_needs_a_token(client, demo_clinic, method, path, body, auth):
    headers = {"Authorization": auth} if auth else {}
    resp = client.open(f"{MP}{path}", method=method, json=body, headers=headers)
    assert resp.status_code == 401, resp.get_json()
    assert resp.get_json()["error"] in ("missing_token", "invalid_token")
