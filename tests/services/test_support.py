"""Support's use cases on PostgreSQL with the fake channels and HIS: asking the channel now (once, whatever races
it), the transaction search by every shape within a clinic's scope, the export's cap, masking and neutralising,
an order's story, and the receipt's text."""
from __future__ import annotations

import csv
import io
import threading
from datetime import date

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select, update

from app.channels.base import ChannelUnavailable
from app.db.models import Order, OrderEvent, Patient, PaymentAttempt, StatusEvent
from app.domain.errors import Conflict, InvalidInput, NotFound, Unavailable
from app.services.booking import orders
from app.services.common.principals import StaffPrincipal
from app.services.payments import expire_order, inquire, pay_order, query_attempt
from app.services.refunds import request_patient_refund
from app.services.support import (
    export_transactions,
    get_order_story,
    list_transactions,
    patient_inquiry,
    patient_receipt,
    staff_inquiry,
    staff_receipt,
)
from tests.services.helpers import (
    advance_refunds,
    attempt_of,
    new_clinic,
    new_holder,
    order,
    parts,
    pay,
    place_topup,
    refund_requests,
    send_writes,
)


def _unpaid_at_our_side(rt, world, holder, amount_fen: int = 2500) -> tuple[str, str]:
    """An order the patient paid at the channel, whose notification never came: (order_no, out_trade_no)."""
    order_no = place_topup(rt, holder, amount_fen)
    out_trade_no = pay_order(rt, holder.principal, order_no, "127.0.0.1").out_trade_no
    world.channels.pay(out_trade_no)
    return order_no, out_trade_no


def _staff(clinic, username: str = "support-test") -> StaffPrincipal:
    return StaffPrincipal(user_id=1, username=username, role="staff", clinic_ids=(clinic.id,))


def _paid_events(rt, order_no: str) -> list[str]:
    with rt.db.session() as session:
        row = order(rt, order_no)
        return list(session.scalars(select(OrderEvent.reason).where(OrderEvent.order_id == row.id,
                                                                    OrderEvent.to_status == "paid")))


# --- asking the channel now ---------------------------------------------------------------------------------------

def test_an_inquiry_completes_a_paid_order_whose_notification_never_came(rt, world):
    clinic = new_clinic(rt)
    holder = new_holder(rt, world, clinic)
    order_no, out_trade_no = _unpaid_at_our_side(rt, world, holder)
    assert order(rt, order_no).status == "created"

    answer = patient_inquiry(rt, holder.principal, order_no)

    assert answer["status"] == "paid" and answer["inquiry"]["outcome"] == "paid_now"
    assert answer["payments"][0]["channel_trade_no"] == world.channels.trades[out_trade_no].trade_no
    assert _paid_events(rt, order_no) == ["paid via inquiry"]
    # The HIS write the payment owes is recorded with it, and goes out as after a notification.
    assert send_writes(rt, clinic) == ["sent"]
    assert order(rt, order_no).status == "completed"
    story = get_order_story(rt, (clinic.id,), order_no)
    assert story["notifications"] == []
    assert [(a["actor_type"], a["action"], a["after"]["outcome"]) for a in story["audit"]] == [
        ("mp_user", "order_inquiry", "paid_now")]


def test_an_inquiry_about_an_unpaid_order_changes_nothing_and_leaves_the_janitor_its_schedule(rt, world):
    clinic = new_clinic(rt)
    holder = new_holder(rt, world, clinic)
    order_no = place_topup(rt, holder, 1800)
    out_trade_no = pay_order(rt, holder.principal, order_no, "127.0.0.1").out_trade_no
    before = attempt_of(rt, out_trade_no)

    answer = patient_inquiry(rt, holder.principal, order_no)

    assert (answer["status"], answer["inquiry"]["outcome"], answer["inquiry"]["asked"]) == ("created", "not_paid", 1)
    assert "暂未收到" in answer["inquiry"]["hint"]
    after = attempt_of(rt, out_trade_no)
    assert (after.status, after.query_count, after.next_query_at) == ("pending", before.query_count,
                                                                      before.next_query_at)
    assert ("close_payment", out_trade_no) not in world.channels.calls


def test_an_order_never_sent_to_a_channel_is_not_asked_about(rt, world):
    clinic = new_clinic(rt)
    holder = new_holder(rt, world, clinic)
    order_no = place_topup(rt, holder, 1800)
    calls = len(world.channels.calls)
    assert patient_inquiry(rt, holder.principal, order_no)["inquiry"]["outcome"] == "no_payment"
    assert len(world.channels.calls) == calls


def test_a_channel_that_does_not_answer_is_a_503_and_changes_nothing(rt, world):
    clinic = new_clinic(rt)
    holder = new_holder(rt, world, clinic)
    order_no, _ = _unpaid_at_our_side(rt, world, holder)
    world.channels.fail_next("query_payment", ChannelUnavailable("timeout", "no answer"))
    with pytest.raises(Unavailable) as refused:
        patient_inquiry(rt, holder.principal, order_no)
    assert refused.value.code == "channel_unavailable" and refused.value.retry_after_s
    assert order(rt, order_no).status == "created"


def test_a_patient_asks_only_about_their_own_orders(rt, world):
    clinic = new_clinic(rt)
    owner, stranger = new_holder(rt, world, clinic), new_holder(rt, world, clinic)
    order_no, _ = _unpaid_at_our_side(rt, world, owner)
    calls = len(world.channels.calls)
    with pytest.raises(NotFound):
        patient_inquiry(rt, stranger.principal, order_no)
    with pytest.raises(NotFound):
        patient_receipt(rt, stranger.principal, order_no)
    assert len(world.channels.calls) == calls and order(rt, order_no).status == "created"


def test_an_inquiry_racing_the_janitor_and_a_notification_records_the_payment_once(rt, world):
    clinic = new_clinic(rt)
    holder = new_holder(rt, world, clinic)
    order_no, out_trade_no = _unpaid_at_our_side(rt, world, holder)
    attempt_id = attempt_of(rt, out_trade_no).id
    start = threading.Barrier(3)
    outcomes: list = []

    def run(work):
        start.wait()
        outcomes.append(work())

    threads = [threading.Thread(target=run, args=(work,)) for work in (
        lambda: inquire(rt, order(rt, order_no).id).outcome,
        lambda: query_attempt(rt, attempt_id),
        lambda: expire_order(rt, order(rt, order_no).id))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert len(outcomes) == 3
    with rt.db.session() as session:
        row = order(rt, order_no)
        paid_moves = session.scalar(select(func.count(OrderEvent.id)).where(OrderEvent.order_id == row.id,
                                                                            OrderEvent.to_status == "paid"))
        attempt_moves = session.scalar(select(func.count(StatusEvent.id)).where(
            StatusEvent.record_type == "payment attempt", StatusEvent.record_id == attempt_id,
            StatusEvent.to_status == "paid"))
    assert (row.status, paid_moves, attempt_moves) == ("paid", 1, 1)
    assert len([w for w in send_writes(rt, clinic)]) == 1


def test_a_payment_the_channel_took_after_we_closed_the_order_is_found_by_asking(rt, world):
    clinic = new_clinic(rt)
    holder = new_holder(rt, world, clinic)
    order_no = place_topup(rt, holder, 3100)
    out_trade_no = pay_order(rt, holder.principal, order_no, "127.0.0.1").out_trade_no
    with rt.db.session() as session:
        session.execute(update(Order).where(Order.order_no == order_no).values(expires_at=func.now()))
    assert expire_order(rt, order(rt, order_no).id) == "closed"
    # The patient's money went through at the channel after all (a trade closed too late).
    world.channels.pay(out_trade_no)

    answer = staff_inquiry(rt, _staff(clinic), order_no)

    assert answer["inquiry"]["outcome"] == "paid_now"
    assert answer["order"]["status"] == "paid" and answer["payments"][0]["late"] is True
    assert any(a["action"] == "late_payment" for a in answer["audit"])
    assert [a["actor_name"] for a in answer["audit"] if a["action"] == "order_inquiry"] == ["support-test"]


def test_a_trade_number_we_never_heard_of_is_looked_up_at_the_channel_and_then_asked_about(rt, world):
    clinic = new_clinic(rt)
    holder = new_holder(rt, world, clinic)
    order_no, out_trade_no = _unpaid_at_our_side(rt, world, holder)
    trade_no = world.channels.trades[out_trade_no].trade_no
    assert attempt_of(rt, out_trade_no).channel_trade_no is None

    page = list_transactions(rt, (clinic.id,), q=trade_no)

    assert [(r["out_trade_no"], r["status"]) for r in page["items"]] == [(out_trade_no, "pending")]
    assert page["channel_lookup"] == {"channel": "wechat", "out_trade_no": out_trade_no, "state": "PAID"}
    assert order(rt, order_no).status == "created"
    assert staff_inquiry(rt, _staff(clinic), order_no)["order"]["status"] == "paid"
    # Another clinic's staff cannot reach it by its number, even at the channel.
    other = new_clinic(rt)
    assert list_transactions(rt, (other.id,), q=trade_no) == {**list_transactions(rt, (other.id,), q="0" * 20),
                                                              "channel_lookup": None}


def test_staff_ask_about_their_own_clinics_orders_only(rt, world):
    clinic, other = new_clinic(rt), new_clinic(rt)
    holder = new_holder(rt, world, clinic)
    order_no, _ = _unpaid_at_our_side(rt, world, holder)
    for call in (lambda: staff_inquiry(rt, _staff(other), order_no),
                 lambda: get_order_story(rt, (other.id,), order_no),
                 lambda: staff_receipt(rt, (other.id,), order_no)):
        with pytest.raises(NotFound):
            call()
    assert order(rt, order_no).status == "created"


# --- the transaction search -----------------------------------------------------------------------------------------

@pytest.fixture()
def paid_and_refunded(rt, world):
    """A clinic with two holders: a paid top-up, one refunded in part, and an unpaid one; and another clinic's."""
    clinic, other = new_clinic(rt), new_clinic(rt)
    holder = new_holder(rt, world, clinic)
    second = new_holder(rt, world, clinic, channel="alipay")
    paid = pay(rt, world, holder, place_topup(rt, holder, 5000))
    refunded = pay(rt, world, second, place_topup(rt, second, 7000))
    send_writes(rt, clinic)
    orders_refund = _refund(rt, world, clinic, second, 2000)
    unpaid_no = place_topup(rt, holder, 900)
    pay_order(rt, holder.principal, unpaid_no, "127.0.0.1")
    foreign_holder = new_holder(rt, world, other)
    foreign = pay(rt, world, foreign_holder, place_topup(rt, foreign_holder, 4000))
    return dict(clinic=clinic, other=other, holder=holder, second=second, paid=paid, refunded=refunded,
                refund=orders_refund, unpaid_no=unpaid_no, foreign=foreign)


def _refund(rt, world, clinic, holder, amount_fen: int):
    request_patient_refund(rt, holder.principal, holder.card_no, amount_fen)
    send_writes(rt, clinic)
    advance_refunds(rt, clinic)
    [request] = refund_requests(rt, clinic)
    [part] = parts(rt, request.id)
    return part


def _found(rt, clinic, **filters) -> list[tuple[str, str]]:
    page = list_transactions(rt, (clinic.id,), **filters)
    return [(row["kind"], row["out_trade_no"]) for row in page["items"]]


def test_every_shape_of_q_finds_its_payment_or_refund(rt, paid_and_refunded):
    s = paid_and_refunded
    clinic, paid, refunded, part = s["clinic"], s["paid"], s["refunded"], s["refund"]
    with rt.db.session() as session:
        phone = session.get(Patient, s["second"].patient_id).phone
    refunded_pair = [("refund", refunded.out_trade_no), ("payment", refunded.out_trade_no)]
    assert _found(rt, clinic, q=paid.out_trade_no) == [("payment", paid.out_trade_no)]
    assert _found(rt, clinic, q=paid.out_trade_no.lower()) == [("payment", paid.out_trade_no)]
    assert _found(rt, clinic, q=paid.out_trade_no[:21]) == [("payment", paid.out_trade_no)]
    assert _found(rt, clinic, q=paid.channel_trade_no) == [("payment", paid.out_trade_no)]
    assert _found(rt, clinic, q=refunded.channel_trade_no) == refunded_pair
    assert _found(rt, clinic, q=part.refund_no) == [("refund", refunded.out_trade_no)]
    assert _found(rt, clinic, q=part.channel_refund_id) == [("refund", refunded.out_trade_no)]
    assert _found(rt, clinic, q=s["second"].card_no) == refunded_pair
    assert _found(rt, clinic, q=phone) == refunded_pair
    assert refunded_pair[0] in _found(rt, clinic, q=phone[-4:])
    page = list_transactions(rt, (clinic.id,), q=part.refund_no)
    [row] = page["items"]
    assert row["refund_request_no"] and _found(rt, clinic, q=row["refund_request_no"]) == [
        ("refund", refunded.out_trade_no)]
    assert (row["amount_fen"], row["status"], row["order_type"], row["channel"]) == (2000, "succeeded", "topup",
                                                                                      "alipay")
    assert row["patient"]["phone"] == f"{phone[:3]}****{phone[-4:]}"


def test_filters_narrow_and_another_clinics_rows_never_show(rt, paid_and_refunded):
    s = paid_and_refunded
    clinic = s["clinic"]
    everything = list_transactions(rt, (clinic.id,))
    assert everything["total"] == 4 and everything["total_exact"] is True
    assert [r["kind"] for r in everything["items"]] == ["payment", "refund", "payment", "payment"]
    assert s["foreign"].out_trade_no not in {r["out_trade_no"] for r in everything["items"]}
    assert _found(rt, clinic, q=s["foreign"].out_trade_no) == []
    assert _found(rt, clinic, q=s["foreign"].channel_trade_no) == []
    assert _found(rt, clinic, kind="refund") == [("refund", s["refunded"].out_trade_no)]
    assert [r["status"] for r in list_transactions(rt, (clinic.id,), status="pending")["items"]] == ["pending"]
    assert _found(rt, clinic, channel="alipay") == [("refund", s["refunded"].out_trade_no),
                                                     ("payment", s["refunded"].out_trade_no)]
    assert list_transactions(rt, (clinic.id,), status="succeeded", kind="payment")["items"] == []
    page = list_transactions(rt, (clinic.id,), limit=2, offset=2)
    assert [r["out_trade_no"] for r in page["items"]] == [r["out_trade_no"] for r in everything["items"][2:]]


def test_bad_searches_are_refused_with_a_reason(rt, paid_and_refunded):
    clinic = paid_and_refunded["clinic"]
    for filters, code in (({"q": "two words"}, "invalid_search"), ({"offset": 9990, "limit": 50}, "page_too_deep")):
        with pytest.raises(InvalidInput) as refused:
            list_transactions(rt, (clinic.id,), **filters)
        assert refused.value.code == code
    with pytest.raises(InvalidInput) as refused:
        list_transactions(rt, (clinic.id,), date_from=date(2026, 3, 2), date_to=date(2026, 3, 1))
    assert refused.value.code == "invalid_date_range"


def test_the_export_masks_neutralises_and_refuses_more_than_its_cap(world, paid_and_refunded):
    s = paid_and_refunded
    clinic = s["clinic"]
    capped = world.runtime(TRANSACTION_EXPORT_MAX_ROWS=3)
    with pytest.raises(InvalidInput) as refused:
        export_transactions(capped, (clinic.id,), "csv")
    assert refused.value.code == "export_too_large"

    rt = world.runtime()
    with rt.db.session() as session:
        session.execute(update(Patient).where(Patient.id == s["holder"].patient_id).values(name="=HYPERLINK(1)"))
    exported = export_transactions(rt, (clinic.id,), "csv")
    text = b"".join(exported.chunks).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:3] == ["类型", "诊所", "平台订单号"] and len(rows) == 5
    names = {row[14] for row in rows[1:]}
    assert "'=" + "*" * 11 + ")" in names, names
    phones = {row[15] for row in rows[1:]}
    assert all("****" in phone for phone in phones)
    assert {row[9] for row in rows[1:]} == {"50.00", "70.00", "20.00", "9.00"}

    from openpyxl import load_workbook
    book = load_workbook(io.BytesIO(b"".join(export_transactions(rt, (clinic.id,), "xlsx").chunks)))
    sheet = book.active
    values = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert len(values) == 5 and sorted(v[9] for v in values[1:]) == [9.0, 20.0, 50.0, 70.0]
    assert all(not str(v[14]).startswith("=") for v in values[1:])


# --- the story and the receipt --------------------------------------------------------------------------------------

def test_an_orders_story_holds_its_events_payments_his_writes_refunds_and_notifications(rt, world, paid_and_refunded):
    s = paid_and_refunded
    order_no = order_of(rt, s["refunded"])
    story = get_order_story(rt, (s["clinic"].id,), order_no)
    assert story["order"]["status"] == "partially_refunded" and story["order"]["refunded_fen"] == 2000
    records = {(e["record"], e["to_status"]) for e in story["events"]}
    assert {("order", "paid"), ("order", "completed"), ("order", "partially_refunded"), ("payment attempt", "paid"),
            ("HIS write", "sent"), ("refund", "succeeded"), ("refund request", "succeeded")} <= records
    assert [e["at"] for e in story["events"]] == sorted(e["at"] for e in story["events"])
    assert [(w["kind"], w["status"]) for w in story["his_writes"]][:1] == [("recharge", "sent")]
    assert [(r["amount_fen"], [p["status"] for p in r["parts"]]) for r in story["refunds"]] == [(2000, ["succeeded"])]
    assert story["notifications"] == [] and story["receipt_available"] is True


def order_of(rt, attempt: PaymentAttempt) -> str:
    with rt.db.session() as session:
        return session.scalar(select(Order.order_no).where(Order.id == attempt.order_id))


def test_the_receipt_reads_back_with_the_hospital_patient_trade_number_and_refunds(rt, world, paid_and_refunded):
    s = paid_and_refunded
    refunded = s["refunded"]
    order_no = order_of(rt, refunded)
    made = patient_receipt(rt, s["second"].principal, order_no)
    assert made.filename == f"receipt-{order_no}.pdf" and made.content.startswith(b"%PDF-")
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(made.content)).pages)
    with rt.db.session() as session:
        patient = session.get(Patient, s["second"].patient_id)
    masked_phone = f"{patient.phone[:3]}****{patient.phone[-4:]}"
    for expected in (f"诊所 {s['clinic'].code}", order_no, refunded.channel_trade_no, refunded.out_trade_no,
                     "¥70.00", "支付宝", s["refund"].refund_no, "¥20.00", masked_phone):
        assert expected in text, (expected, text)
    assert patient.phone not in text and patient.name not in text

    with pytest.raises(Conflict) as refused:
        staff_receipt(rt, (s["clinic"].id,), s["unpaid_no"])
    assert refused.value.code == "no_receipt"
    assert orders.get_order(rt, s["holder"].principal, s["unpaid_no"])["status"] == "created"
