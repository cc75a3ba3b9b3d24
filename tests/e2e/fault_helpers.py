"""Steps shared by the fault-injection and late-payment tests: own HIS cards, paying in two steps,
sandbox faults that are always cleared, stopped processes that are always started again, and the
one check that matters: a payment was applied exactly once, in the database and at the HIS."""
from __future__ import annotations

import secrets
from contextlib import contextmanager

import requests
from sqlalchemy import select

from app.db.models import AuditEvent, NotificationInbox, Order, OrderEvent, PaymentAttempt
from mini_program_mock.patient import MiniProgramClient
from tests.e2e.helpers import new_client, order_row, outbox_rows, wait_until

# What the HIS records once an order's money arrived, and where the order ends up.
WRITE_OF = {"topup": ("recharge", "completed"), "visit_bill": ("bill_settlement", "completed"),
            "booking": ("registration", "paid")}


@contextmanager
def sandbox_faults(sandbox, **faults):
    """Set global sandbox faults for the block; they are cleared whatever happens."""
    try:
        set_faults(sandbox, **faults)
        yield
    finally:
        requests.delete(f"{sandbox.url}/sandbox/faults", timeout=10).raise_for_status()


def set_faults(sandbox, **faults) -> dict:
    resp = requests.post(f"{sandbox.url}/sandbox/faults", json=faults, timeout=10)
    resp.raise_for_status()
    return resp.json()


@contextmanager
def stopped(*processes):
    """Stop platform processes (cron, workers) for the block; each is running again afterwards."""
    try:
        for proc in processes:
            proc.stop()
        yield
    finally:
        for proc in processes:
            ensure_running(proc)


def ensure_running(proc) -> None:
    if proc.proc is None or proc.proc.poll() is not None:
        proc.start()


def own_card(sandbox, balance_fen: int = 10_000) -> str:
    """A HIS card of a new patient, so balance checks see only this test's writes."""
    phone = "139" + "".join(secrets.choice("0123456789") for _ in range(8))
    resp = requests.post(f"{sandbox.url}/sandbox/his/cards", timeout=10,
                         json={"name": "赵六", "phone": phone, "balance_fen": balance_fen})
    resp.raise_for_status()
    return resp.json()["card_no"]


def card_balance(sandbox, card_no: str) -> int:
    resp = requests.get(f"{sandbox.url}/sandbox/cards/{card_no}", timeout=10)
    resp.raise_for_status()
    return resp.json()["balance_fen"]


def client_with_card(platform, sandbox, channel: str, label: str, card_no: str) -> MiniProgramClient:
    client = new_client(platform, sandbox, channel, f"{label}-{secrets.token_hex(4)}")
    client.patient_with_card(card_no)
    return client


def new_topup(client: MiniProgramClient, card_no: str, amount_fen: int) -> dict:
    return client.call("POST", "/orders", json={"type": "topup", "card_no": card_no, "amount_fen": amount_fen,
                                                "channel": client.channel})


def new_bill_order(client: MiniProgramClient, sandbox, card_no: str, amount_fen: int) -> dict:
    bill = client.sandbox_call("POST", "/sandbox/his/bills", json={"card_no": card_no, "kind": "lab",
                                                                   "title": "血常规 Blood count",
                                                                   "amount_fen": amount_fen})
    return client.call("POST", "/orders", json={"type": "visit_bill", "card_no": card_no, "channel": client.channel,
                                                "bill_ids": [bill["bill_id"]]})


def start_payment(client: MiniProgramClient, order_no: str) -> dict:
    """The platform's half of paying: the attempt and the channel's trade, not yet paid by the patient."""
    return client.call("POST", f"/orders/{order_no}/pay")


def patient_pays(client: MiniProgramClient, pay: dict, ignore_close: bool = False) -> dict:
    """The patient's half: the sandbox records the payment and notifies the platform."""
    if client.channel == "wechat":
        prepay_id = pay["pay_params"]["package"].removeprefix("prepay_id=")
        return client.sandbox_call("POST", "/sandbox/wechat/pay", json={"prepay_id": prepay_id, "outcome": "success",
                                                                        "ignore_close": ignore_close})
    return client.sandbox_call("POST", "/sandbox/alipay/pay", json={"trade_no": pay["trade_no"], "outcome": "success",
                                                                    "ignore_close": ignore_close})


def channel_trade(client: MiniProgramClient, out_trade_no: str) -> dict:
    """The sandbox channel's ledger view of a trade (state, refunds)."""
    merchant = client.merchant()
    if client.channel == "wechat":
        return client.sandbox_call("GET", f"/sandbox/wechat/trades/{out_trade_no}",
                                   params={"appid": merchant["appid"]})
    return client.sandbox_call("GET", f"/sandbox/alipay/trades/{out_trade_no}", params={"app_id": merchant["app_id"]})


def trade_closed(client: MiniProgramClient, trade: dict) -> bool:
    if client.channel == "wechat":
        return trade["trade_state"] == "CLOSED"
    return trade["trade_status"] == "TRADE_CLOSED"


def attempts_of(rt, order_no: str) -> list[PaymentAttempt]:
    with rt.db.session() as session:
        order = session.scalar(select(Order).where(Order.order_no == order_no))
        return list(session.scalars(select(PaymentAttempt).where(PaymentAttempt.order_id == order.id)
                                    .order_by(PaymentAttempt.id)))


def inbox_rows(rt, out_trade_no: str) -> list[NotificationInbox]:
    with rt.db.session() as session:
        return list(session.scalars(select(NotificationInbox).where(NotificationInbox.out_trade_no == out_trade_no)))


def paid_events(rt, order_no: str) -> list[OrderEvent]:
    with rt.db.session() as session:
        order = session.scalar(select(Order).where(Order.order_no == order_no))
        return list(session.scalars(select(OrderEvent).where(OrderEvent.order_id == order.id,
                                                             OrderEvent.to_status == "paid")))


def audit_events(rt, action: str, order_no: str) -> list[AuditEvent]:
    with rt.db.session() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action,
                                                             AuditEvent.target_type == "order",
                                                             AuditEvent.target_id == order_no)))


def wait_for_status(rt, order_no: str, status: str, timeout: float = 60.0) -> Order:
    return wait_until(lambda: (lambda o: o if o.status == status else None)(order_row(rt, order_no)),
                      timeout=timeout, what=f"order {order_no} to become {status}")


def assert_applied_once(rt, client: MiniProgramClient, order: dict) -> None:
    """One `paid` event, one paid attempt, one HIS write of the order's kind, sent and recorded once."""
    kind, final = WRITE_OF[order["type"]]
    order_no = order["order_no"]
    assert order_row(rt, order_no).status == final
    assert len(paid_events(rt, order_no)) == 1
    assert [a.status for a in attempts_of(rt, order_no)].count("paid") == 1
    rows = outbox_rows(rt, order_no)
    assert [(r.kind, r.status) for r in rows] == [(kind, "sent")], [(r.kind, r.status, r.last_error) for r in rows]
    records = client.his_records(order_no)
    assert [(r["kind"], r["amount_fen"]) for r in records] == [(kind, order["amount_fen"])], records

