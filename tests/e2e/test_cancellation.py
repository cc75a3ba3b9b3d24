"""A patient cancels a paid booking: the place is released at once, the HIS registration is reverted
first, then the whole payment goes back along its channel and the booking ends `refunded`.

Real PostgreSQL, Redis, gunicorn, rq workers and cron; the sandbox channels and HIS over HTTP.
"""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import requests
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from app.db.models import ItemInventory, Order, RefundRequest, Slot
from tests.e2e.helpers import events_to, fresh_slot, new_client, new_patient, order_row, outbox_rows, wait_until
from tests.e2e.refund_helpers import SHANGHAI, request_writes, sandbox_faults, trade_view


def _remaining(client, rt, item_id: int, slot_id: int) -> int:
    """Places left in the slot as the mini-program lists them."""
    with rt.db.session() as session:
        starts_at = session.get(Slot, slot_id).starts_at
    slots = client.call("GET", f"/items/{item_id}/slots",
                        params={"date": starts_at.astimezone(SHANGHAI).date().isoformat()})
    return next(s["remaining"] for s in slots if s["id"] == slot_id)


def _inventory_reserved(rt, item_id: int, channel: str) -> int:
    with rt.db.session() as session:
        return session.scalar(select(ItemInventory.reserved).where(ItemInventory.item_id == item_id,
                                                                   ItemInventory.channel == channel))


def _paid_booking(platform, sandbox, rt, channel: str, starts_in: timedelta = timedelta(days=2)):
    item_id, slot_id = fresh_slot(rt, capacity=2, starts_in=starts_in)
    client = new_client(platform, sandbox, channel, f"cancel-{channel}-{slot_id}")
    patient = new_patient(client)
    order = client.call("POST", "/orders", json={"type": "booking", "item_id": item_id, "slot_id": slot_id,
                                                 "patient_id": patient["id"], "channel": channel})
    client.pay(order["order_no"])
    return client, client.wait_for(order["order_no"], {"paid"}), item_id, slot_id


def _registration(rt, order_no: str):
    return next(w for w in outbox_rows(rt, order_no) if w.kind == "registration")


def _cancellation_request(rt, order_no: str) -> RefundRequest:
    with rt.db.session() as session:
        order = session.scalar(select(Order).where(Order.order_no == order_no))
        return session.scalar(select(RefundRequest).where(RefundRequest.order_id == order.id)
                              .options(selectinload(RefundRequest.parts)))


@pytest.mark.parametrize("channel", ["wechat", "alipay"])
def test_cancelling_a_paid_booking_reverts_the_registration_and_refunds_in_full(platform, sandbox, rt, channel):
    client, order, item_id, slot_id = _paid_booking(platform, sandbox, rt, channel)
    order_no, amount = order["order_no"], order["amount_fen"]
    wait_until(lambda: [r["kind"] for r in client.his_records(order_no)] == ["registration"], timeout=60,
               what="the registration at the HIS")
    assert _remaining(client, rt, item_id, slot_id) == 1 and _inventory_reserved(rt, item_id, channel) == 1

    cancelled = client.call("POST", f"/orders/{order_no}/cancel", json={"reason": "行程有变"})

    assert cancelled["status"] == "refunding"
    assert _remaining(client, rt, item_id, slot_id) == 2 and _inventory_reserved(rt, item_id, channel) == 0
    final = client.wait_for(order_no, {"refunded"}, timeout=60)
    assert final["refunded_fen"] == amount
    assert [(r["kind"], r["amount_fen"]) for r in client.his_records(order_no)] == [
        ("registration", amount), ("registration_revert", amount)]
    request = _cancellation_request(rt, order_no)
    assert (request.origin, request.amount_fen, request.status) == ("cancellation", amount, "succeeded")
    assert [(p.amount_fen, p.status) for p in request.parts] == [(amount, "succeeded")]
    [payment] = final["payments"]
    assert trade_view(sandbox, channel, payment["out_trade_no"])["refunded_fen"] == amount
    assert events_to(rt, order_no, "refunding") == 1 and events_to(rt, order_no, "refunded") == 1
    assert _remaining(client, rt, item_id, slot_id) == 2, "the place was released once"

    again = client.call("POST", f"/orders/{order_no}/cancel", json={}, expect=(409,))
    assert again["error"] == "invalid_transition"


def test_cancelling_before_the_registration_reached_the_his_reverts_it_after(platform, sandbox, rt):
    with sandbox_faults(sandbox, his_error_rate=1):
        client, order, item_id, slot_id = _paid_booking(platform, sandbox, rt, "wechat")
        order_no = order["order_no"]
        cancelled = client.call("POST", f"/orders/{order_no}/cancel", json={"reason": "不去了"})
        assert cancelled["status"] == "refunding"
        assert _remaining(client, rt, item_id, slot_id) == 2
        attempts = _registration(rt, order_no).attempts
        # Dispatcher rounds against the failing HIS after the cancellation: the revert waits for the registration.
        wait_until(lambda: _registration(rt, order_no).attempts >= attempts + 2, timeout=60,
                   what="the registration to be retried")
        request = _cancellation_request(rt, order_no)
        writes = sorted(outbox_rows(rt, order_no), key=lambda w: w.id)
        assert [(w.kind, w.status) for w in writes] == [("registration", "pending"), ("registration_revert", "pending")]
        assert writes[1].attempts == 0, "a revert is never sent before its registration"
        assert [p.status for p in request.parts] == ["waiting"], "no money back before the HIS reverted"
        [payment] = cancelled["payments"]
        assert trade_view(sandbox, "wechat", payment["out_trade_no"])["refunded_fen"] == 0
        assert client.his_records(order_no) == []

    final = client.wait_for(order_no, {"refunded"}, timeout=60)
    assert [r["kind"] for r in client.his_records(order_no)] == ["registration", "registration_revert"]
    assert [(w.kind, w.status) for w in request_writes(rt, request.refund_request_no)] == [
        ("registration_revert", "sent")]
    assert trade_view(sandbox, "wechat", payment["out_trade_no"])["refunded_fen"] == final["amount_fen"]


def test_cancelling_inside_the_deadline_is_refused_and_changes_nothing(platform, sandbox, rt):
    deadline = timedelta(seconds=rt.settings.CANCEL_DEADLINE_S)
    client, order, item_id, slot_id = _paid_booking(platform, sandbox, rt, "wechat",
                                                    starts_in=deadline - timedelta(minutes=10))
    order_no = order["order_no"]
    wait_until(lambda: [r["kind"] for r in client.his_records(order_no)] == ["registration"], timeout=60,
               what="the registration at the HIS")

    refused = client.call("POST", f"/orders/{order_no}/cancel", json={"reason": "来不及了"}, expect=(409,))

    assert refused["error"] == "cancellation_deadline_passed"
    assert order_row(rt, order_no).status == "paid" and order_row(rt, order_no).refunded_fen == 0
    assert _cancellation_request(rt, order_no) is None
    assert _remaining(client, rt, item_id, slot_id) == 1
    assert [w.kind for w in outbox_rows(rt, order_no)] == ["registration"]
    assert [r["kind"] for r in client.his_records(order_no)] == ["registration"]


def test_two_cancellations_at_once_refund_once(platform, sandbox, rt):
    client, order, item_id, slot_id = _paid_booking(platform, sandbox, rt, "alipay")
    order_no = order["order_no"]
    statuses: list[tuple[int, str | None]] = []

    def cancel():
        resp = requests.post(f"{platform.url}/api/mp/v1/orders/{order_no}/cancel", json={"reason": "双击"},
                             headers={"Authorization": f"Bearer {client.token}"}, timeout=60)
        statuses.append((resp.status_code, resp.json().get("error")))

    threads = [threading.Thread(target=cancel) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert sorted(statuses, key=str) == [(200, None), (409, "invalid_transition")], statuses
    final = client.wait_for(order_no, {"refunded"}, timeout=60)
    with rt.db.session() as session:
        assert session.scalar(select(func.count(RefundRequest.id)).where(
            RefundRequest.order_id == order_row(rt, order_no).id)) == 1
    [payment] = final["payments"]
    assert trade_view(sandbox, "alipay", payment["out_trade_no"])["refunded_fen"] == final["amount_fen"]
    assert _remaining(client, rt, item_id, slot_id) == 2 and _inventory_reserved(rt, item_id, "alipay") == 0
    assert events_to(rt, order_no, "refunding") == 1
