"""Duplicate, concurrent and forged payment notifications against the running platform."""
from __future__ import annotations

import secrets
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import func, select

from app.channels.wechat_sign import sign
from app.db.models import NotificationInbox
from tests.e2e.helpers import events_to, new_client, order_row, outbox_rows, wait_until


def _xml(fields: dict) -> bytes:
    return ("<xml>" + "".join(f"<{k}><![CDATA[{v}]]></{k}>" for k, v in fields.items()) + "</xml>").encode()


def _wechat_notification(merchant: dict, out_trade_no: str, total_fee: int, transaction_id: str,
                         api_key: str | None = None) -> bytes:
    fields = {"appid": merchant["appid"], "mch_id": merchant["mch_id"], "nonce_str": secrets.token_hex(8),
              "result_code": "SUCCESS", "return_code": "SUCCESS", "openid": "o-test", "trade_type": "JSAPI",
              "bank_type": "CMC", "total_fee": str(total_fee), "cash_fee": str(total_fee), "fee_type": "CNY",
              "transaction_id": transaction_id, "out_trade_no": out_trade_no, "time_end": "20261122101010"}
    fields["sign"] = sign(fields, api_key or merchant["api_key"], "MD5")
    return _xml(fields)


@pytest.fixture()
def unpaid_topup(platform, sandbox):
    """A top-up order with a WeChat trade created at the channel but not yet paid."""
    client = new_client(platform, sandbox, "wechat", f"notify-{secrets.token_hex(4)}")
    _, card_no = client.patient_with_card("D0000006")
    order = client.call("POST", "/orders", json={"type": "topup", "card_no": card_no, "amount_fen": 1234,
                                                 "channel": "wechat"})
    pay = client.call("POST", f"/orders/{order['order_no']}/pay")
    return client, order, pay


def _post(platform, body: bytes) -> requests.Response:
    return requests.post(f"{platform.url}/notify/wechat/demo/pay", data=body,
                         headers={"Content-Type": "text/xml"}, timeout=10)


def test_same_notification_five_times_concurrently_changes_once(platform, sandbox, rt, unpaid_topup):
    client, order, pay = unpaid_topup
    merchant = client.merchant()
    body = _wechat_notification(merchant, pay["out_trade_no"], 1234, "4200000000202611220000000001")
    with ThreadPoolExecutor(max_workers=5) as pool:
        replies = list(pool.map(lambda _: _post(platform, body), range(5)))
    assert all(r.status_code == 200 and "SUCCESS" in r.text for r in replies)
    wait_until(lambda: order_row(rt, order["order_no"]).status == "completed", what="order completed")
    time.sleep(2)
    assert events_to(rt, order["order_no"], "paid") == 1
    [write] = outbox_rows(rt, order["order_no"])
    assert write.kind == "recharge" and write.status == "sent"
    assert [r["kind"] for r in client.his_records(order["order_no"])] == ["recharge"]


@pytest.mark.parametrize("forgery", ["wrong_key", "tampered_amount", "wrong_merchant", "unknown_order"])
def test_forged_notifications_change_nothing(platform, sandbox, rt, unpaid_topup, forgery):
    client, order, pay = unpaid_topup
    merchant = dict(client.merchant())
    out_trade_no, amount, key = pay["out_trade_no"], 1234, merchant["api_key"]
    if forgery == "wrong_key":
        key = secrets.token_hex(16)
    elif forgery == "tampered_amount":
        amount = 1
    elif forgery == "wrong_merchant":
        other = requests.post(f"{sandbox.url}/sandbox/merchants", json={"channel": "wechat"}, timeout=5).json()
        merchant, key = other, other["api_key"]
    else:
        out_trade_no = "T20991231235959000000P01"
    with rt.db.session() as session:
        inbox_before = session.scalar(select(func.count(NotificationInbox.id)))
    reply = _post(platform, _wechat_notification(merchant, out_trade_no, amount, "4200000000202611229999999999",
                                                 api_key=key))
    assert reply.status_code == 200 and "FAIL" in reply.text
    with rt.db.session() as session:
        assert session.scalar(select(func.count(NotificationInbox.id))) == inbox_before
    time.sleep(1.5)
    assert order_row(rt, order["order_no"]).status == "created"
    assert outbox_rows(rt, order["order_no"]) == []
