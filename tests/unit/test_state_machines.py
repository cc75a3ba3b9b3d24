"""Every money record's state machine, walked exhaustively: each (from, to) pair of its states is either one
of the legal moves written out below or refused with `invalid_transition`.

The legal moves are spelled out here on purpose, not read from the module: a change to a table must change
this file too, so no move becomes legal (or illegal) without someone saying so.
"""
from __future__ import annotations

import pytest

from app.domain.cards import CARD_VERIFICATION
from app.domain.errors import InvalidTransition
from app.domain.his_writes import HIS_WRITE, REGISTRATION_SYNC
from app.domain.messaging import PUSH
from app.domain.orders import MACHINES, transition
from app.domain.payments import INBOX_NOTIFICATION, PAYMENT_ATTEMPT
from app.domain.reconciliation_runs import CLAIM, DISCREPANCY, RECONCILIATION_RUN
from app.domain.refunds import REFUND, REFUND_REQUEST, request_status
from app.domain.settlement import COUPON_MACHINE, INVOICE_MACHINE, SETTLEMENT, STATEMENT
from app.domain.state_machine import StateMachine

_ORDER_COMMON = {
    ("created", "paid"), ("created", "closed"), ("created", "cancelled"), ("closed", "paid"),
    ("refunding", "refunded"), ("refunding", "partially_refunded"),
    ("partially_refunded", "refunding"), ("partially_refunded", "refunded"),
}

LEGAL = {
    "booking order": (MACHINES["booking"], _ORDER_COMMON | {
        ("paid", "booked"), ("paid", "refunding"),
        ("booked", "booked"), ("booked", "redeemed"), ("booked", "no_show"), ("booked", "refunding"),
        ("no_show", "rescheduled"), ("no_show", "refunding"),
        ("rescheduled", "rescheduled"), ("rescheduled", "redeemed"), ("rescheduled", "no_show"),
        ("rescheduled", "refunding"),
    }),
    "topup order": (MACHINES["topup"], _ORDER_COMMON | {
        ("paid", "completed"), ("paid", "refunding"),
        ("completed", "refunding"), ("completed", "partially_refunded"), ("completed", "refunded"),
    }),
    "visit_bill order": (MACHINES["visit_bill"], _ORDER_COMMON | {
        ("paid", "completed"), ("paid", "refunding"),
        ("completed", "refunding"), ("completed", "partially_refunded"), ("completed", "refunded"),
    }),
    "payment attempt": (PAYMENT_ATTEMPT, {("pending", "paid"), ("pending", "closed"), ("closed", "paid")}),
    "refund": (REFUND, {
        ("waiting", "pending"), ("waiting", "failed"),
        ("pending", "processing"), ("pending", "succeeded"), ("pending", "failed"),
        ("processing", "succeeded"), ("processing", "failed"), ("processing", "pending"),
    }),
    "refund request": (REFUND_REQUEST, {
        ("awaiting_approval", "processing"), ("awaiting_approval", "rejected"),
        ("processing", "succeeded"), ("processing", "failed"), ("processing", "partially_failed"),
    }),
    "HIS write": (HIS_WRITE, {
        ("pending", "sent"), ("pending", "rejected"), ("pending", "flagged"),
        ("flagged", "pending"), ("sent", "pending"),
    }),
    "inbox notification": (INBOX_NOTIFICATION, {("received", "processed"), ("received", "failed")}),
    "registration sync": (REGISTRATION_SYNC, {
        ("pending", "done"), ("pending", "stopped"), ("done", "pending"), ("stopped", "pending"),
    }),
    "card verification": (CARD_VERIFICATION, {
        ("pending", "used"), ("pending", "superseded"), ("pending", "failed"),
    }),
    "statement": (STATEMENT, {("generated", "checked"), ("checked", "settled"), ("checked", "generated")}),
    "settlement": (SETTLEMENT, {("pending_payment", "paid")}),
    "settlement_invoice": (INVOICE_MACHINE, {("awaiting", "received")}),
    "coupon": (COUPON_MACHINE, {("unused", "used"), ("unused", "expired")}),
    "claim": (CLAIM, {("open", "settled")}),
    "reconciliation run": (RECONCILIATION_RUN, {
        ("running", "done"), ("running", "failed"), ("done", "running"), ("failed", "running"),
    }),
    "discrepancy": (DISCREPANCY, {("open", "resolved")}),
    "message push": (PUSH, {("pending", "sent"), ("pending", "refused"), ("pending", "failed")}),
}

PAIRS = [(name, origin, target) for name, (machine, _) in LEGAL.items()
         for origin in machine.states for target in machine.states]


@pytest.mark.parametrize(("name", "origin", "target"), PAIRS)
def test_every_pair_is_legal_or_refused(name, origin, target):
    machine, legal = LEGAL[name]
    expected = (str(origin), str(target)) in legal
    assert machine.allows(origin, target) is expected
    if expected:
        assert machine.check(origin, target) == (origin, target)
    else:
        with pytest.raises(InvalidTransition) as refused:
            machine.check(origin, target)
        assert refused.value.code == "invalid_transition" and refused.value.http_status == 409
        assert refused.value.details == {"from": str(origin), "to": str(target)}
        assert machine.name in refused.value.message


@pytest.mark.parametrize("name", LEGAL)
def test_each_table_names_only_its_own_states(name):
    machine, legal = LEGAL[name]
    assert machine.name == name
    assert {(str(a), str(b)) for a, b in machine.legal_moves()} == legal


def test_a_status_the_machine_does_not_know_is_refused():
    with pytest.raises(InvalidTransition):
        PAYMENT_ATTEMPT.check("pending", "refunded")
    with pytest.raises(InvalidTransition):
        REFUND.check("lost", "pending")
    assert not PAYMENT_ATTEMPT.allows("teleported", "paid")


def test_order_transitions_go_through_the_machine_of_their_type():
    assert transition("topup", "paid", "completed", "HIS recorded it").to_status == "completed"
    with pytest.raises(InvalidTransition):
        transition("booking", "paid", "completed", "a booking is never completed")
    with pytest.raises(InvalidTransition):
        transition("parcel", "created", "paid", "no such order type")


def test_final_states_have_no_way_out():
    assert REFUND.final("succeeded") and REFUND.final("failed") and not REFUND.final("processing")
    assert STATEMENT.final("settled") and not STATEMENT.final("checked")


@pytest.mark.parametrize(("parts", "expected"), [
    (["succeeded", "succeeded"], "succeeded"),
    (["failed"], "failed"),
    (["succeeded", "failed"], "partially_failed"),
    (["succeeded", "waiting"], "processing"),
    (["failed", "pending"], "processing"),
    (["processing"], "processing"),
])
def test_a_request_follows_its_parts(parts, expected):
    assert request_status(parts) == expected


def test_a_machine_refuses_a_move_from_a_state_absent_from_its_table():
    machine = StateMachine("test", type(REFUND.states[0]), {"waiting": {"pending"}})
    assert machine.final("pending") and machine.allows("waiting", "pending")
