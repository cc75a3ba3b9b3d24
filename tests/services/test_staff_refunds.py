"""Staff refunds of any paid order with finance's approval above HPAY_REFUND_APPROVAL_FEN (maker-checker), as use
cases on PostgreSQL with the fake channels and HIS: what the HIS is told before the money leaves, and the attacks
on the rules (approving one's own request, two approvers at once, asking for more than remains, splitting a large
refund into small ones)."""
from __future__ import annotations

import secrets
import threading

import pytest
from sqlalchemy import select

from app.db.models import AuditEvent, PaymentAttempt, RefundRequest, StatusEvent
from app.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from app.his.base import HisRejected
from app.services.common.principals import StaffPrincipal
from app.services.people.staff_auth import create_user
from app.services.refunds import approve, list_requests, refund_quote, reject, request_refund, request_staff_refund
from tests.services.helpers import (
    advance_refunds,
    audit_actions,
    new_clinic,
    new_holder,
    order,
    pay,
    place_bill_payment,
    place_topup,
    send_writes,
    writes,
)

THRESHOLD = 5000


@pytest.fixture()
def rt(world):
    return world.runtime(REFUND_APPROVAL_FEN=THRESHOLD)


def person(rt, clinic, role: str) -> StaffPrincipal:
    username = f"svc-{role}-{secrets.token_hex(4)}"
    with rt.db.session() as session:
        user = create_user(session, username, "pw-" + secrets.token_hex(8), role, [clinic.code], created_by="test")
        return StaffPrincipal(user.id, username, role, (clinic.id,))


def paid_topup(rt, world, clinic, amount_fen: int = 20_000):
    holder = new_holder(rt, world, clinic)
    order_no = place_topup(rt, holder, amount_fen)
    pay(rt, world, holder, order_no)
    assert send_writes(rt, clinic) == ["sent"]
    return holder, order_no


def paid_bills(rt, world, clinic, amounts: tuple[int, ...] = (6000, 4000)):
    holder = new_holder(rt, world, clinic)
    bill_ids = [world.his.add_bill(holder.card_no, amount) for amount in amounts]
    order_no = place_bill_payment(rt, holder, bill_ids)
    pay(rt, world, holder, order_no)
    assert send_writes(rt, clinic) == ["sent"]
    assert order(rt, order_no).status == "completed"
    return holder, order_no


def test_a_small_top_up_refund_takes_the_amount_off_the_card_then_goes_back_at_once(rt, world):
    clinic = new_clinic(rt)
    desk = person(rt, clinic, "staff")
    holder, order_no = paid_topup(rt, world, clinic)

    asked = request_staff_refund(rt, desk, order_no, 3000, "患者不再需要 not needed")

    assert (asked["status"], asked["amount_fen"], asked["requested_by"]["username"]) == ("processing", 3000,
                                                                                         desk.username)
    assert [(w["kind"], w["status"]) for w in asked["his_writes"]] == [("refund_hold", "sent")]
    assert world.his.balances[holder.card_no] == 17_000
    assert advance_refunds(rt, clinic) == ["succeeded"]
    paid = order(rt, order_no)
    assert (paid.status, paid.refunded_fen) == ("partially_refunded", 3000)
    assert "refund_requested" in audit_actions(rt, clinic)


def test_a_visit_bill_refund_reverses_the_his_settlement_before_any_money_leaves(rt, world):
    clinic = new_clinic(rt)
    desk = person(rt, clinic, "staff")
    holder, order_no = paid_bills(rt, world, clinic)
    world.his.down = True  # the reversal cannot be recorded yet: the refund part waits for it

    asked = request_staff_refund(rt, desk, order_no, 4000, "检查未做 the exam was not done")

    assert [(p["status"], p["amount_fen"]) for p in asked["parts"]] == [("waiting", 4000)]
    assert advance_refunds(rt, clinic) == []
    assert world.channels.refunds_of(_out_trade_no(rt, order_no)) == []
    world.his.down = False
    assert send_writes(rt, clinic) == ["sent"]
    [reversal] = writes(rt, clinic, "bill_settlement_reversal")
    assert (reversal.payload["amount_fen"], reversal.payload["order_no"]) == (4000, order_no)
    assert reversal.idempotency_key == f"{asked['refund_request_no']}:bill_settlement_reversal"
    assert [r.kind for r in world.his.records if r.order_no == order_no] == ["bill_settlement",
                                                                            "bill_settlement_reversal"]
    assert advance_refunds(rt, clinic) == ["succeeded"]
    refunded = order(rt, order_no)
    assert (refunded.status, refunded.refunded_fen) == ("partially_refunded", 4000)

    # The rest, in full (with the first, above the threshold: finance approves): the order ends refunded.
    rest = request_staff_refund(rt, desk, order_no, 6000, "全部退 the rest")
    assert rest["status"] == "awaiting_approval"
    approve(rt, person(rt, clinic, "finance"), rest["refund_request_no"])
    assert send_writes(rt, clinic) == []  # the approval sent the reversal itself
    assert advance_refunds(rt, clinic) == ["succeeded"]
    assert (order(rt, order_no).status, order(rt, order_no).refunded_fen) == ("refunded", 10_000)


def test_a_reversal_the_his_refuses_fails_the_refund_and_nothing_leaves(rt, world):
    clinic = new_clinic(rt)
    desk = person(rt, clinic, "staff")
    _holder, order_no = paid_bills(rt, world, clinic)
    world.his.fail_next("reverse_bill_settlement", HisRejected("bill_in_use", "the bills went to the insurer"))

    asked = request_staff_refund(rt, desk, order_no, 2000, "退部分 part")

    assert asked["status"] == "failed"
    assert [(p["status"], p["failure_code"]) for p in asked["parts"]] == [("failed", "bill_in_use")]
    assert advance_refunds(rt, clinic) == []
    assert world.channels.refunds_of(_out_trade_no(rt, order_no)) == []
    assert (order(rt, order_no).status, order(rt, order_no).refunded_fen) == ("completed", 0)
    assert "bill_settlement_reversal_refused" in audit_actions(rt, clinic)


def test_a_large_refund_waits_for_another_finance_user_and_never_for_its_requester(rt, world):
    clinic = new_clinic(rt)
    maker = person(rt, clinic, "finance")
    checker = person(rt, clinic, "finance")
    holder, order_no = paid_topup(rt, world, clinic)

    asked = request_staff_refund(rt, maker, order_no, 12_000, "大额退款 large")
    assert (asked["status"], asked["parts"], asked["his_writes"]) == ("awaiting_approval", [], [])
    assert world.his.balances[holder.card_no] == 20_000  # nothing was held yet

    with pytest.raises(Forbidden) as own:
        approve(rt, maker, asked["refund_request_no"])
    with pytest.raises(Forbidden):
        reject(rt, maker, asked["refund_request_no"], "我自己")
    assert own.value.code == "self_approval_forbidden"
    [listed] = list_requests(rt, maker, "awaiting_approval")
    assert (listed["mine"], listed["can_decide"]) == (True, False)
    assert list_requests(rt, checker, "awaiting_approval")[0]["can_decide"] is True

    approved = approve(rt, checker, asked["refund_request_no"], "核实无误 checked")

    assert (approved["status"], approved["decided_by"]["username"]) == ("processing", checker.username)
    assert world.his.balances[holder.card_no] == 8000
    assert advance_refunds(rt, clinic) == ["succeeded"]
    assert order(rt, order_no).refunded_fen == 12_000
    with rt.db.session() as session:
        approval = session.scalar(select(AuditEvent).where(AuditEvent.action == "refund_approved",
                                                           AuditEvent.clinic_id == clinic.id))
        moved = session.scalar(select(StatusEvent).where(StatusEvent.record_type == "refund request",
                                                         StatusEvent.to_status == "processing",
                                                         StatusEvent.actor == f"staff:{checker.username}"))
    assert (approval.actor_name, approval.after["note"]) == (checker.username, "核实无误 checked")
    assert moved is not None


def test_two_finance_users_approving_at_once_start_the_refund_once(rt, world):
    clinic = new_clinic(rt)
    maker = person(rt, clinic, "staff")
    checkers = [person(rt, clinic, "finance") for _ in range(4)]
    holder, order_no = paid_topup(rt, world, clinic)
    request_no = request_staff_refund(rt, maker, order_no, 9000, "大额 large")["refund_request_no"]
    outcomes, start = [], threading.Barrier(len(checkers))

    def decide(checker):
        start.wait()
        try:
            outcomes.append(approve(rt, checker, request_no)["status"])
        except Conflict as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=decide, args=(c,)) for c in checkers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["processing"] + ["refund_request_decided"] * 3
    assert [w.status for w in writes(rt, clinic, "refund_hold")] == ["sent"]
    assert world.his.balances[holder.card_no] == 11_000
    assert advance_refunds(rt, clinic) == ["succeeded"]


def test_a_rejected_refund_leaves_nothing_and_cannot_be_approved_after(rt, world):
    clinic = new_clinic(rt)
    maker, checker, other = (person(rt, clinic, role) for role in ("staff", "finance", "finance"))
    _holder, order_no = paid_topup(rt, world, clinic)
    request_no = request_staff_refund(rt, maker, order_no, 8000, "大额 large")["refund_request_no"]

    rejected = reject(rt, checker, request_no, "理由不足 not justified")
    with pytest.raises(Conflict) as late:
        approve(rt, other, request_no)

    assert (rejected["status"], rejected["decision_note"]) == ("rejected", "理由不足 not justified")
    assert late.value.code == "refund_request_decided"
    assert writes(rt, clinic, "refund_hold") == [] and advance_refunds(rt, clinic) == []
    # The held amount is free again.
    assert refund_quote(rt, maker, order_no)["refundable_fen"] == 20_000


def test_nobody_refunds_more_than_remains_not_even_two_staff_asking_at_once(rt, world):
    clinic = new_clinic(rt)
    desks = [person(rt, clinic, "staff") for _ in range(4)]
    _holder, order_no = paid_bills(rt, world, clinic, (3000,))
    with pytest.raises(Conflict) as over:
        request_staff_refund(rt, desks[0], order_no, 3001, "多退 too much")
    assert (over.value.code, over.value.details) == ("refund_exceeds_refundable", {"refundable_fen": 3000})
    with pytest.raises(InvalidInput):
        request_staff_refund(rt, desks[0], order_no, 0, "零 zero")
    outcomes, start = [], threading.Barrier(len(desks))

    def ask(desk):
        start.wait()
        try:
            outcomes.append(request_staff_refund(rt, desk, order_no, 2000, "并发 at once")["status"])
        except Conflict as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=ask, args=(d,)) for d in desks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["processing"] + ["refund_exceeds_refundable"] * 3
    assert advance_refunds(rt, clinic) == ["succeeded"]
    assert order(rt, order_no).refunded_fen == 2000


def test_a_request_awaiting_approval_holds_its_amount_against_the_order_and_the_card(rt, world):
    clinic = new_clinic(rt)
    maker = person(rt, clinic, "staff")
    holder, order_no = paid_topup(rt, world, clinic, 10_000)
    request_staff_refund(rt, maker, order_no, 8000, "大额 large")

    with pytest.raises(Conflict) as staff_over:
        request_staff_refund(rt, maker, order_no, 3000, "再退 more")
    # The patient's own card refund cannot draw on what the request holds either.
    with pytest.raises(Conflict) as patient_over:
        request_refund(rt, clinic_id=clinic.id, card_no=holder.card_no, amount_fen=3000, origin="patient",
                       account_ids={clinic.accounts["wechat"]}, user_id=holder.principal.user_id)

    assert (staff_over.value.code, staff_over.value.details) == ("refund_exceeds_refundable", {"refundable_fen": 2000})
    assert patient_over.value.code == "refund_exceeds_online_topups"


def test_splitting_a_large_refund_into_small_ones_still_needs_approval(rt, world):
    clinic = new_clinic(rt)
    maker = person(rt, clinic, "staff")
    _holder, order_no = paid_topup(rt, world, clinic)

    first = request_staff_refund(rt, maker, order_no, 4000, "第一笔 first")
    second = request_staff_refund(rt, maker, order_no, 4000, "第二笔 second")

    assert (first["status"], second["status"]) == ("processing", "awaiting_approval")
    quote = refund_quote(rt, maker, order_no)
    assert (quote["staff_refunded_fen"], quote["approval_needed_above_fen"]) == (8000, 0)


def test_a_top_up_refund_needs_the_amount_on_the_card(rt, world):
    clinic = new_clinic(rt)
    desk = person(rt, clinic, "staff")
    holder, order_no = paid_topup(rt, world, clinic, 4000)
    world.his.balances[holder.card_no] = 1000  # spent at the hospital meanwhile

    with pytest.raises(Conflict) as refused:
        request_staff_refund(rt, desk, order_no, 2000, "退 back")

    assert (refused.value.code, refused.value.details) == ("refund_exceeds_balance", {"balance_fen": 1000})
    with rt.db.session() as session:
        assert session.scalars(select(RefundRequest).where(RefundRequest.clinic_id == clinic.id)).all() == []


def test_staff_refund_only_their_own_clinics_orders(rt, world):
    clinic, elsewhere = new_clinic(rt), new_clinic(rt)
    outsider = person(rt, elsewhere, "finance")
    maker = person(rt, clinic, "staff")
    _holder, order_no = paid_topup(rt, world, clinic)
    request_no = request_staff_refund(rt, maker, order_no, 9000, "大额 large")["refund_request_no"]

    for attempt in (lambda: request_staff_refund(rt, outsider, order_no, 100, "外人 outsider"),
                    lambda: approve(rt, outsider, request_no), lambda: refund_quote(rt, outsider, order_no)):
        with pytest.raises(NotFound):
            attempt()
    assert list_requests(rt, outsider) == []


def _out_trade_no(rt, order_no: str) -> str:
    paid = order(rt, order_no)
    with rt.db.session() as session:
        return session.get(PaymentAttempt, paid.paid_attempt_id).out_trade_no

