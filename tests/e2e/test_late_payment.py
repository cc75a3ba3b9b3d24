"""A payment that arrives after the platform closed the expired order, on both channels.

The dispatcher closes an expired order only after asking the channel (NOTPAY: it closes the
trade). The patient then pays the closed trade anyway (`ignore_close`), and the channel tells us:
a top-up is honoured; a booking whose place was taken meanwhile is refunded automatically.
"""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from app.db.models import Order, RefundRequest, Slot
from app.db.types import utcnow
from tests.e2e.fault_helpers import (
    assert_applied_once,
    attempts_of,
    audit_events,
    card_balance,
    channel_trade,
    client_with_card,
    new_topup,
    own_card,
    paid_events,
    patient_pays,
    start_payment,
    trade_closed,
    wait_for_status,
)
from tests.e2e.helpers import fresh_slot, new_client, new_patient, order_row, outbox_rows, wait_until


def _expire_and_wait_for_close(rt, client, order_no: str, out_trade_no: str) -> None:
    with rt.db.session() as session:
        session.execute(update(Order).where(Order.order_no == order_no)
                        .values(expires_at=utcnow() - timedelta(seconds=1)))
    wait_for_status(rt, order_no, "closed")
    assert [a.status for a in attempts_of(rt, order_no)] == ["closed"]
    assert trade_closed(client, channel_trade(client, out_trade_no)), "the platform should have closed the trade"


@pytest.mark.parametrize("channel", ["wechat", "alipay"])
def test_late_topup_payment_is_honoured(platform, sandbox, rt, channel):
    card_no = own_card(sandbox)
    client = client_with_card(platform, sandbox, channel, "late-topup", card_no)
    order = new_topup(client, card_no, 1800)
    pay = start_payment(client, order["order_no"])
    _expire_and_wait_for_close(rt, client, order["order_no"], pay["out_trade_no"])
    before = card_balance(sandbox, card_no)

    patient_pays(client, pay, ignore_close=True)

    wait_for_status(rt, order["order_no"], "completed")
    [attempt] = attempts_of(rt, order["order_no"])
    assert attempt.status == "paid" and attempt.late
    [event] = paid_events(rt, order["order_no"])
    assert event.from_status == "closed"
    assert_applied_once(rt, client, order)
    assert card_balance(sandbox, card_no) == before + 1800
    [audit] = audit_events(rt, "late_payment", order["order_no"])
    assert audit.after["outcome"] == "late_honoured" and audit.after["out_trade_no"] == pay["out_trade_no"]


@pytest.mark.parametrize("channel", ["wechat", "alipay"])
def test_late_booking_payment_after_the_slot_filled_is_refunded(platform, sandbox, rt, channel):
    item_id, slot_id = fresh_slot(rt, capacity=1)
    client = new_client(platform, sandbox, channel, f"late-booking-{slot_id}")
    patient = new_patient(client)
    order = client.call("POST", "/orders", json={"type": "booking", "item_id": item_id, "slot_id": slot_id,
                                                 "patient_id": patient["id"], "channel": channel})
    pay = start_payment(client, order["order_no"])
    _expire_and_wait_for_close(rt, client, order["order_no"], pay["out_trade_no"])
    with rt.db.session() as session:
        slot = session.get(Slot, slot_id)
        assert slot.reserved == 0, "closing the order gives its place back"
        slot.reserved = slot.capacity  # someone else booked the place meanwhile

    patient_pays(client, pay, ignore_close=True)

    def settled_refund():
        order_id = order_row(rt, order["order_no"]).id
        with rt.db.session() as session:
            request = session.scalar(select(RefundRequest).where(RefundRequest.order_id == order_id))
            return request if request is not None and request.status == "succeeded" else None

    request = wait_until(settled_refund, timeout=60, what="the late payment's refund to succeed")
    assert request.origin == "late_payment" and request.amount_fen == order["amount_fen"]
    with rt.db.session() as session:
        [part] = session.get(RefundRequest, request.id).parts
        assert part.status == "succeeded" and part.amount_fen == order["amount_fen"]
        refund_no = part.refund_no
        assert session.get(Slot, slot_id).reserved == 1, "the refunded payment took no place"
    trade = channel_trade(client, pay["out_trade_no"])
    if channel == "wechat":
        assert trade["refunded_fee"] == order["amount_fen"]
        assert [(r["out_refund_no"], r["refund_status"]) for r in trade["refunds"]] == [(refund_no, "SUCCESS")]
    else:
        assert trade["refunded_fen"] == order["amount_fen"]
        assert [(r["out_request_no"], r["refund_fen"]) for r in trade["refunds"]] == [(refund_no, order["amount_fen"])]
    assert order_row(rt, order["order_no"]).status == "closed"
    assert paid_events(rt, order["order_no"]) == []
    [attempt] = attempts_of(rt, order["order_no"])
    assert attempt.status == "paid" and attempt.late
    assert outbox_rows(rt, order["order_no"]) == []
    assert client.his_records(order["order_no"]) == []
    [audit] = audit_events(rt, "late_payment", order["order_no"])
    assert audit.after["outcome"] == "late_refunded"

