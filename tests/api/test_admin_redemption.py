"""Redemption (核销) over the admin API: on the appointment day, once (also under concurrency), with the
HIS charge carrying the settlement type and extra charges becoming unpaid HIS bills, never lost or doubled."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.db.models import AuditEvent, Clinic, ExtraCharge, HisOutbox, Order, OrderEvent
from app.services.booking.staff_patients import ensure_card
from app.services.his import send
from app.services.his.gateway import his_client
from tests.api.admin_helpers import (
    ADMIN,
    confirmed_booking,
    drive_his_writes,
    move_appointment,
    now,
    order_status,
    outbox_writes,
    staff_headers,
)
from tests.e2e.fault_helpers import sandbox_faults
from workers.dispatcher import lease_spec


@pytest.fixture()
def desk(client, rt, demo_clinic):
    return staff_headers(client, rt, "staff")


def _his(rt):
    with rt.db.session() as session:
        return his_client(rt, session.scalar(select(Clinic).where(Clinic.code == "demo")))


def _redeem(client, headers, order_no: str, charges: list[dict] | None = None, **headers_extra):
    return client.post(f"{ADMIN}/orders/{order_no}/redeem", json={"extra_charges": charges or []},
                       headers={**headers, **headers_extra})


def _charge_payload(rt, order_id: int) -> dict:
    with rt.db.session() as session:
        [row] = session.scalars(select(HisOutbox).where(HisOutbox.order_id == order_id, HisOutbox.kind == "charge"))
        return dict(row.payload)


def test_redeem_records_the_his_charge_and_turns_extra_charges_into_unpaid_bills(client, sandbox, rt, desk):
    headers, username = desk
    booked = confirmed_booking(client, sandbox, rt, username)
    extras = [{"name": "拍片 X-ray", "amount_fen": 8000}, {"name": "麻药 Anaesthetic", "amount_fen": 1500}]

    resp = _redeem(client, headers, booked.order_no, extras)
    twice = _redeem(client, headers, booked.order_no)

    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["status"] == "redeemed" and body["redeemed_at"]
    [card_no] = body["patient"]["card_nos"]
    assert [(c["name"], c["amount_fen"], c["status"]) for c in body["extra_charges"]] == [
        ("拍片 X-ray", 8000, "created"), ("麻药 Anaesthetic", 1500, "created")]
    bills = {b.bill_id: b for b in _his(rt).unpaid_bills(card_no)}
    for charge in body["extra_charges"]:
        bill = bills[charge["bill_id"]]
        assert (bill.title, bill.amount_fen, bill.kind, bill.status) == (charge["name"], charge["amount_fen"],
                                                                         "charge", "unpaid")
    assert (twice.status_code, twice.get_json()["error"]) == (409, "invalid_transition")
    payload = _charge_payload(rt, booked.order_id)
    assert payload["card_no"] == card_no and payload["amount_fen"] == 2000
    with rt.db.session() as session:
        [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "booking_redeemed",
                                                           AuditEvent.target_id == booked.order_no))
    assert event.actor_name == username and event.before["status"] == "booked"
    assert event.after["status"] == "redeemed" and len(event.after["extra_charges"]) == 2

    drive_his_writes(rt, booked.order_no)
    assert ("charge", f"{booked.order_no}:charge", "sent") in outbox_writes(rt, booked.order_no)


def test_the_charge_carries_the_clinics_settlement_type_for_the_channel(client, sandbox, rt, desk):
    headers, username = desk
    admin, _ = staff_headers(client, rt, "admin")
    chosen = [{"channel": "alipay", "settlement_type": "llds_alipay", "count_in_cash_flow": False,
               "count_in_revenue": False}]
    try:
        assert client.put(f"{ADMIN}/settings/settlement-types", json=chosen, headers=admin).status_code == 200
        booked = confirmed_booking(client, sandbox, rt, username, channel="alipay")
        assert _redeem(client, headers, booked.order_no).status_code == 200
    finally:
        client.put(f"{ADMIN}/settings/settlement-types", headers=admin, json=[
            {"channel": "alipay", "count_in_cash_flow": True, "count_in_revenue": True}])

    payload = _charge_payload(rt, booked.order_id)
    assert (payload["settlement_type"], payload["count_in_cash_flow"], payload["count_in_revenue"]) == (
        "llds_alipay", False, False)
    drive_his_writes(rt, booked.order_no)
    # The HIS answers a repeat of a write it holds from its record: this is what it stored.
    stored = _his(rt).charge(booked.order_no, payload["card_no"], payload["amount_fen"], "llds_alipay",
                             f"{booked.order_no}:charge")
    assert stored.replayed and stored.extra["settlement_type"] == "llds_alipay"


def test_only_the_appointment_day_and_only_booked_or_rescheduled_bookings_redeem(client, sandbox, rt, desk):
    headers, username = desk
    tomorrow = confirmed_booking(client, sandbox, rt, username, appointment_at=now() + timedelta(days=1))
    missed = confirmed_booking(client, sandbox, rt, username)
    move_appointment(rt, missed.order_no, now() - timedelta(hours=2))
    assert client.post(f"{ADMIN}/bookings/{missed.order_no}/no-show", headers=headers).status_code == 200

    early = _redeem(client, headers, tomorrow.order_no)
    no_show = _redeem(client, headers, missed.order_no)
    unknown = _redeem(client, headers, "B00000000000000000000")
    bad = _redeem(client, headers, tomorrow.order_no, [{"name": "", "amount_fen": 0}])

    assert (early.status_code, early.get_json()["error"]) == (409, "not_appointment_day")
    assert (no_show.status_code, no_show.get_json()["error"]) == (409, "invalid_transition")
    assert "reschedule" in no_show.get_json()["message"]
    assert (unknown.status_code, unknown.get_json()["error"]) == (404, "order_not_found")
    assert bad.status_code == 422
    assert order_status(rt, tomorrow.order_no) == "booked"

    resumed = client.post(f"{ADMIN}/bookings/{missed.order_no}/reschedule", json={"appointment_at": now().isoformat()},
                          headers=headers)
    assert resumed.status_code == 200
    assert _redeem(client, headers, missed.order_no).status_code == 200
    cancel = client.post(f"{ADMIN}/bookings/{missed.order_no}/cancel", json={"reason": "太晚了"}, headers=headers)
    assert (cancel.status_code, cancel.get_json()["error"]) == (409, "invalid_transition")


def test_two_staff_redeeming_one_order_at_once_exactly_one_wins(app, client, sandbox, rt, desk):
    headers, username = desk
    other_headers, _ = staff_headers(client, rt, "staff")
    booked = confirmed_booking(client, sandbox, rt, username)
    barrier = threading.Barrier(2)
    answers = {}

    def redeem(who: str, auth: dict, charge: dict) -> None:
        own_client = app.test_client()
        barrier.wait()
        answers[who] = _redeem(own_client, auth, booked.order_no, [charge])

    threads = [threading.Thread(target=redeem, args=("a", headers, {"name": "甲项", "amount_fen": 100})),
               threading.Thread(target=redeem, args=("b", other_headers, {"name": "乙项", "amount_fen": 200}))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    codes = sorted(resp.status_code for resp in answers.values())
    assert codes == [200, 409], {k: (v.status_code, v.get_json()) for k, v in answers.items()}
    loser = next(resp for resp in answers.values() if resp.status_code == 409)
    winner = next(resp for resp in answers.values() if resp.status_code == 200)
    assert loser.get_json()["error"] == "invalid_transition"
    with rt.db.session() as session:
        redeemed_moves = session.scalar(select(func.count(OrderEvent.id)).where(
            OrderEvent.order_id == booked.order_id, OrderEvent.to_status == "redeemed"))
        charges = session.scalar(select(func.count(HisOutbox.id)).where(HisOutbox.order_id == booked.order_id,
                                                                       HisOutbox.kind == "charge"))
        extras = list(session.scalars(select(ExtraCharge.name).where(ExtraCharge.order_id == booked.order_id)))
    assert (redeemed_moves, charges) == (1, 1)
    assert extras == [winner.get_json()["extra_charges"][0]["name"]]


def test_extra_charges_the_his_could_not_take_are_created_later_once(client, sandbox, rt, desk):
    headers, username = desk
    booked = confirmed_booking(client, sandbox, rt, username)
    card_no = ensure_card(rt, booked.patient_id)
    extras = [{"name": "补牙 Filling", "amount_fen": 30000}, {"name": "抛光 Polish", "amount_fen": 500}]

    with sandbox_faults(sandbox, his_error_rate=1.0):
        resp = _redeem(client, headers, booked.order_no, extras)
    assert resp.status_code == 200, resp.get_json()
    assert [(c["status"], c["bill_id"]) for c in resp.get_json()["extra_charges"]] == [("pending", None)] * 2
    with rt.db.session() as session:
        keys = list(session.scalars(select(ExtraCharge.idempotency_key).where(ExtraCharge.order_id == booked.order_id)
                                    .order_by(ExtraCharge.seq)))
        writes = {w.idempotency_key: w for w in session.scalars(select(HisOutbox).where(
            HisOutbox.order_id == booked.order_id, HisOutbox.kind == "extra_charge"))}
        # One bill per charge, each an outbox write under the charge's own key; the request stops at the first
        # failure and leaves the rest to the outbox's retries.
        assert sorted(writes) == sorted(keys) == [f"{booked.order_no}:extra:1", f"{booked.order_no}:extra:2"]
        assert [writes[k].attempts for k in keys] == [1, 0] and "503" in writes[keys[0]].last_error
        latest = max(w.next_attempt_at for w in writes.values())
        assert {w.id for w in writes.values()} <= set(lease_spec("his_outbox").due_ids(session, latest, 100_000))

    for key in keys:
        assert send(rt, writes[key].id) == "sent"
        assert send(rt, writes[key].id) == "sent"
    unpaid = _his(rt).unpaid_bills(card_no)
    for extra in extras:
        bills = [b for b in unpaid if b.title == extra["name"]]
        assert len(bills) == 1 and bills[0].amount_fen == extra["amount_fen"]
    shown = client.get(f"{ADMIN}/bookings/{booked.order_no}", headers=headers).get_json()
    assert [c["status"] for c in shown["extra_charges"]] == ["created", "created"]
    assert {c["bill_id"] for c in shown["extra_charges"]} == {b.bill_id for b in unpaid
                                                              if b.title in {e["name"] for e in extras}}


def test_a_patient_without_a_card_gets_one_opened_in_the_his_at_redemption(client, sandbox, rt, desk):
    headers, username = desk
    booked = confirmed_booking(client, sandbox, rt, username, name="无卡患者", phone="13700007777")
    drive_his_writes(rt, booked.order_no)

    resp = _redeem(client, headers, booked.order_no)

    assert resp.status_code == 200, resp.get_json()
    [card_no] = resp.get_json()["patient"]["card_nos"]
    his = _his(rt)
    card = his.get_card(card_no)
    assert card.patient.name == "无卡患者"
    # The same HIS person the registration was made for, not a second one.
    assert card.patient.id == his.get_registration(booked.order_no).patient_id
    with rt.db.session() as session:
        assert session.scalar(select(Order.status).where(Order.id == booked.order_id)) == "redeemed"
