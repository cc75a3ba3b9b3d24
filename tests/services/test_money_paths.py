"""The money paths no other test names, run as use cases on PostgreSQL with fake channels and a fake HIS."""
from __future__ import annotations

import time

import pytest
from sqlalchemy import select, update

from app.db.models import HisOutbox, MerchantAccount, MpUser, PaymentAttempt, RefundRequest, StatusEvent
from app.db.types import utcnow
from app.domain.errors import Conflict
from app.domain.refunds import RefundStatus
from app.his.base import HisRejected
from app.services.his import redrive, send
from app.services.payments import pay_order, query_attempt
from app.services.refunds import add_refund, request_refund
from tests.services.helpers import (
    advance_refunds,
    attempt_of,
    audit_actions,
    events,
    new_clinic,
    new_holder,
    order,
    parts,
    pay,
    place_bill_payment,
    place_topup,
    refund_requests,
    send_writes,
    writes,
)


def test_a_second_payment_of_a_paid_order_goes_back_in_full_and_the_order_keeps_the_first(rt, world):
    clinic = new_clinic(rt)
    holder = new_holder(rt, world, clinic)
    order_no = place_topup(rt, holder, 5000)
    first = pay_order(rt, holder.principal, order_no, "127.0.0.1").out_trade_no
    # The patient's payments move to another app of the clinic while the first payment is still open (before
    # payments followed the app a user signed in through, a clinic's newer app took over this way).
    with rt.db.session() as session:
        moved = MerchantAccount(clinic_id=clinic.id, channel="wechat", app_id=f"wx2{clinic.code}",
                                mch_id="1900000110", api_key="k" * 32, app_secret="s" * 32, sign_type="MD5",
                                api_base_url="https://api.mch.example.test/", refund_window_days=365, active=True)
        session.add(moved)
        session.flush()
        session.execute(update(MpUser).where(MpUser.id == holder.principal.user_id)
                        .values(merchant_account_id=moved.id))
    second = pay_order(rt, holder.principal, order_no, "127.0.0.1").out_trade_no
    world.channels.pay(first)
    world.channels.pay(second)

    assert query_attempt(rt, attempt_of(rt, first).id) == "paid"
    assert query_attempt(rt, attempt_of(rt, second).id) == "paid"
    [request] = refund_requests(rt, clinic)
    assert (request.origin, request.amount_fen, request.status) == ("duplicate_payment", 5000, "processing")
    [part] = parts(rt, request.id)
    assert part.payment_attempt_id == attempt_of(rt, second).id

    assert send_writes(rt, clinic) == ["sent"]
    assert advance_refunds(rt, clinic) == ["succeeded"]

    kept = order(rt, order_no)
    assert (kept.status, kept.refunded_fen, kept.paid_attempt_id) == ("completed", 0, attempt_of(rt, first).id)
    assert [r.amount_fen for r in world.channels.refunds_of(second)] == [5000]
    assert world.channels.refunds_of(first) == []
    assert world.his.balances[holder.card_no] == 5000
    assert events(rt, "payment attempt", attempt_of(rt, second).id) == [("pending", "paid")]
    assert events(rt, "refund", part.id) == [("pending", "succeeded")]
    assert events(rt, "refund request", request.id) == [("processing", "succeeded")]
    assert "duplicate_payment" in audit_actions(rt, clinic)


def test_a_paid_order_whose_his_write_is_rejected_is_refunded(rt, world):
    clinic = new_clinic(rt)
    holder = new_holder(rt, world, clinic)
    bill = world.his.add_bill(holder.card_no, 3000)
    order_no = place_bill_payment(rt, holder, [bill])
    world.his.pay_at_window(bill)  # the patient paid the same bill at the hospital's window meanwhile

    paid = pay(rt, world, holder, order_no)
    assert send_writes(rt, clinic) == ["rejected"]

    assert order(rt, order_no).status == "refunding"
    [request] = refund_requests(rt, clinic)
    assert (request.origin, request.amount_fen) == ("his_rejected", 3000)
    assert advance_refunds(rt, clinic) == ["succeeded"]
    refunded = order(rt, order_no)
    assert (refunded.status, refunded.refunded_fen) == ("refunded", 3000)
    assert [r.amount_fen for r in world.channels.refunds_of(paid.out_trade_no)] == [3000]
    [write] = writes(rt, clinic, "bill_settlement")
    assert write.last_error.startswith("bill_already_paid")
    assert events(rt, "HIS write", write.id) == [("pending", "rejected")]
    assert "his_write_rejected" in audit_actions(rt, clinic)


def test_a_his_write_failing_past_the_retry_horizon_is_flagged_and_a_person_can_send_it_again(world):
    # 24 hours of retries scaled down to under a second.
    rt = world.runtime(RETRY_TIME_SCALE=1e-5)
    clinic = new_clinic(rt)
    holder = new_holder(rt, world, clinic)
    order_no = place_topup(rt, holder, 2000)
    pay(rt, world, holder, order_no)
    world.his.down = True
    [write] = writes(rt, clinic, "recharge")
    horizon_s = 24 * 3600 * 1e-5

    statuses = []
    while not statuses or statuses[-1] == "pending":
        with rt.db.session() as session:
            due_in = (session.get(HisOutbox, write.id).next_attempt_at - utcnow()).total_seconds()
        time.sleep(max(0.0, due_in))  # the dispatcher hands a write out only once it is due
        statuses.append(send(rt, write.id))
        assert len(statuses) < 10_000

    [flagged] = writes(rt, clinic, "recharge")
    assert statuses[-1] == "flagged" and set(statuses[:-1]) == {"pending"}
    assert flagged.attempts == len(statuses) > 3 and "HisUnavailable" in flagged.last_error
    with rt.db.session() as session:
        flagged_at = session.scalar(select(StatusEvent.at).where(StatusEvent.record_type == "HIS write",
                                                                 StatusEvent.record_id == write.id))
    assert (flagged_at - flagged.created_at).total_seconds() >= horizon_s
    assert "his_write_flagged" in audit_actions(rt, clinic)
    # The money is kept and the order waits: the HIS never recorded the top-up.
    assert order(rt, order_no).status == "paid" and world.his.balances[holder.card_no] == 0

    world.his.down = False
    with rt.db.session() as session:
        assert redrive(session, session.get(HisOutbox, write.id), "the HIS is back", actor="staff:ops")
    assert send(rt, write.id) == "sent"
    assert order(rt, order_no).status == "completed" and world.his.balances[holder.card_no] == 2000
    assert events(rt, "HIS write", write.id) == [("pending", "flagged"), ("flagged", "pending"), ("pending", "sent")]


def test_wechat_takes_at_most_50_refunds_of_one_payment(rt, world):
    clinic = new_clinic(rt)
    holder = new_holder(rt, world, clinic)
    order_no = place_topup(rt, holder, 10_000)
    paid = pay(rt, world, holder, order_no)
    assert send_writes(rt, clinic) == ["sent"]

    def ask(amount_fen: int) -> str:
        return request_refund(rt, clinic_id=clinic.id, card_no=holder.card_no, amount_fen=amount_fen,
                              origin="patient", account_ids={clinic.accounts["wechat"]},
                              user_id=holder.principal.user_id)

    for _ in range(50):
        ask(1)
        assert advance_refunds(rt, clinic) == ["succeeded"]
    with pytest.raises(Conflict) as refused:
        ask(1)
    assert refused.value.code == "refund_exceeds_refundable_orders"
    assert len(world.channels.refunds_of(paid.out_trade_no)) == 50
    assert world.his.balances[holder.card_no] == 10_000 - 50

    # A part recorded before the limit was reached (two requests at once) is refused before the channel sees it.
    with rt.db.session() as session:
        request = RefundRequest(refund_request_no=f"R{time.time_ns() % 10**20:020d}", clinic_id=clinic.id,
                                origin="admin", order_id=paid.order_id, amount_fen=1, status="processing")
        session.add(request)
        late = add_refund(session, request, session.get(PaymentAttempt, paid.id), 1)
        session.flush()
        late_id = late.id
    refunds_sent = sum(1 for op, _ in world.channels.calls if op == "refund")
    assert advance_refunds(rt, clinic) == ["failed"]
    [refused_part] = [p for p in parts(rt, request.id) if p.id == late_id]
    assert (refused_part.status, refused_part.failure_code) == (RefundStatus.FAILED, "refund_count_limit")
    assert sum(1 for op, _ in world.channels.calls if op == "refund") == refunds_sent


def test_a_card_restore_the_his_refuses_is_left_for_a_person(rt, world):
    clinic = new_clinic(rt)
    holder = new_holder(rt, world, clinic)
    pay(rt, world, holder, place_topup(rt, holder, 8000))
    assert send_writes(rt, clinic) == ["sent"]
    world.channels.refuse_refunds("NOTENOUGH")  # the merchant account cannot pay refunds out today

    request_no = request_refund(rt, clinic_id=clinic.id, card_no=holder.card_no, amount_fen=3000, origin="patient",
                                account_ids={clinic.accounts["wechat"]}, user_id=holder.principal.user_id)
    assert world.his.balances[holder.card_no] == 5000  # the hold took it off the card first
    world.his.fail_next("refund_restore", HisRejected("restore_exceeds_hold", "the hold was released by hand"))
    assert advance_refunds(rt, clinic) == ["failed"]
    assert send_writes(rt, clinic) == ["rejected"]

    [request] = [r for r in refund_requests(rt, clinic) if r.refund_request_no == request_no]
    [part] = parts(rt, request.id)
    [restore] = writes(rt, clinic, "refund_restore")
    assert (request.status, part.failure_code) == ("failed", "NOTENOUGH")
    assert (restore.status, restore.payload["amount_fen"]) == ("rejected", 3000)
    assert "refund_restore_refused" in audit_actions(rt, clinic)
    assert world.his.balances[holder.card_no] == 5000  # still short: a person gives the 3000 fen back


def test_a_card_refund_part_that_fails_gives_its_amount_back_to_the_card(rt, world):
    clinic = new_clinic(rt)
    holder = new_holder(rt, world, clinic)
    pay(rt, world, holder, place_topup(rt, holder, 8000))
    send_writes(rt, clinic)
    world.channels.refuse_refunds("NOTENOUGH")

    request_refund(rt, clinic_id=clinic.id, card_no=holder.card_no, amount_fen=3000, origin="patient",
                   account_ids={clinic.accounts["wechat"]}, user_id=holder.principal.user_id)
    assert advance_refunds(rt, clinic) == ["failed"]
    assert send_writes(rt, clinic) == ["sent"]
    assert world.his.balances[holder.card_no] == 8000
