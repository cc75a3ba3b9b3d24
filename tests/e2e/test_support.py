"""Support end to end on the running platform, through the real SDKs and the sandbox, on both channels: a payment
whose notification was dropped is found by the channel's trade number, its story shows no notification, the
patient's "I paid but it does not show" completes it, and its receipt holds the trade number.

A WeChat transaction id we have not heard of is looked up at WeChat by the search. The janitor would find the
payment by itself at its next query; the rq cron that dispatches it is stopped for the test, so that only the
inquiry can have completed the order. Afterwards the cron runs again and the HIS write the payment owes is sent.
"""
from __future__ import annotations

import io
import secrets

import pytest
import requests
from pypdf import PdfReader

from tests.e2e.fault_helpers import (
    client_with_card,
    inbox_rows,
    new_topup,
    own_card,
    paid_events,
    patient_pays,
    sandbox_faults,
    start_payment,
    stopped,
    wait_for_status,
)
from tests.e2e.helpers import order_row, outbox_rows

ADMIN = "/api/admin/v1"


def _staff(platform, rt, role: str) -> requests.Session:
    from app.services.people.staff_auth import create_user

    username, password = f"e2e-{role}-{secrets.token_hex(4)}", "pw-" + secrets.token_hex(10)
    with rt.db.session() as session:
        create_user(session, username, password, role, ["demo"], created_by="e2e")
    http = requests.Session()
    resp = http.post(f"{platform.url}{ADMIN}/auth/login", json={"username": username, "password": password},
                     timeout=30)
    assert resp.status_code == 200, resp.text
    http.headers["Authorization"] = f"Bearer {resp.json()['token']}"
    return http


def _trade_number(channel: str, paid_at_sandbox: dict) -> str:
    return paid_at_sandbox["transaction_id"] if channel == "wechat" else paid_at_sandbox["trade_no"]


@pytest.mark.parametrize("channel", ["wechat", "alipay"])
def test_a_payment_whose_notification_was_dropped_is_found_and_completed_by_asking(platform, sandbox, rt, channel):
    card_no = own_card(sandbox, balance_fen=0)
    client = client_with_card(platform, sandbox, channel, f"support-{channel}", card_no)
    finance = _staff(platform, rt, "finance")
    with stopped(platform.cron):
        order = new_topup(client, card_no, 4321)
        order_no = order["order_no"]
        pay = start_payment(client, order_no)
        with sandbox_faults(sandbox, notify_drop_rate=1):
            trade_no = _trade_number(channel, patient_pays(client, pay))

        # Support finds it by the number the patient reads from their WeChat or Alipay bill.
        found = finance.get(f"{platform.url}{ADMIN}/transactions", params={"q": trade_no}, timeout=30)
        assert found.status_code == 200, found.text
        [row] = found.json()["items"]
        assert (row["order_no"], row["kind"], row["status"], row["amount_fen"]) == (order_no, "payment", "pending",
                                                                                   4321)
        # WeChat tells its transaction id only when it reports the payment: we learnt it by asking WeChat which
        # trade bears it. Alipay gave its trade number when the trade was created.
        lookup = found.json()["channel_lookup"]
        if channel == "wechat":
            assert lookup == {"channel": "wechat", "out_trade_no": pay["out_trade_no"], "state": "SUCCESS"}
        else:
            assert lookup is None and row["channel_trade_no"] == trade_no
        story = finance.get(f"{platform.url}{ADMIN}/orders/{order_no}", timeout=30).json()
        assert story["order"]["status"] == "created" and story["notifications"] == []
        assert story["receipt_available"] is False
        assert inbox_rows(rt, pay["out_trade_no"]) == [] and order_row(rt, order_no).status == "created"

        # The patient: "I paid but it does not show".
        asked = client.call("POST", f"/orders/{order_no}/inquiry")
        assert (asked["status"], asked["inquiry"]["outcome"]) == ("paid", "paid_now")
        assert asked["payments"][0]["channel_trade_no"] == trade_no
        assert [event.reason for event in paid_events(rt, order_no)] == ["paid via inquiry"]
        assert [(w.kind, w.status) for w in outbox_rows(rt, order_no)] == [("recharge", "pending")]

    # With the dispatcher back, the recharge reaches the HIS and the order completes.
    wait_for_status(rt, order_no, "completed")
    assert [(r["kind"], r["amount_fen"]) for r in client.his_records(order_no)] == [("recharge", 4321)]
    story = finance.get(f"{platform.url}{ADMIN}/orders/{order_no}", timeout=30).json()
    assert [(a["actor_type"], a["action"], a["after"]["outcome"]) for a in story["audit"]] == [
        ("mp_user", "order_inquiry", "paid_now")]
    assert {(w["kind"], w["status"]) for w in story["his_writes"]} == {("recharge", "sent")}

    receipt = finance.get(f"{platform.url}{ADMIN}/orders/{order_no}/receipt", timeout=30)
    assert receipt.status_code == 200 and receipt.headers["Content-Type"] == "application/pdf"
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(receipt.content)).pages)
    assert trade_no in text and order_no in text and "¥43.21" in text and card_no in text
    mine = requests.get(f"{platform.url}/api/mp/v1/orders/{order_no}/receipt",
                        headers={"Authorization": f"Bearer {client.token}"}, timeout=30)
    assert mine.status_code == 200 and trade_no in "".join(
        page.extract_text() for page in PdfReader(io.BytesIO(mine.content)).pages)
