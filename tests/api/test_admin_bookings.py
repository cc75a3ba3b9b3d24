"""The front desk over the admin API: listing, confirming (existing or new patient, a shared phone),
no-shows, rescheduling and cancelling, with the HIS registration following each change."""
from __future__ import annotations

import secrets
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from app.db.models import AuditEvent, Clinic, Order, OrderEvent, Patient, RefundRequest, Slot
from app.services.booking import no_shows
from app.services.his.gateway import his_client
from tests.api.admin_helpers import (
    ADMIN,
    SHANGHAI,
    confirmed_booking,
    drive_his_writes,
    move_appointment,
    now,
    order_status,
    other_clinic,
    outbox_writes,
    paid_booking,
    staff_headers,
)
from tests.api.order_helpers import booking, place_order, refusal
from workers.dispatcher import lease_spec

NO_SHOWS = lease_spec("no_shows")


@pytest.fixture()
def desk(client, rt, demo_clinic):
    """Headers and username of a staff user of the demo clinic."""
    return staff_headers(client, rt, "staff")


def _his(rt):
    with rt.db.session() as session:
        return his_client(rt, session.scalar(select(Clinic).where(Clinic.code == "demo")))


def _post(client, headers, path: str, body: dict | None = None, **kwargs):
    return client.post(f"{ADMIN}{path}", json=body or {}, headers={**headers, **kwargs.pop("extra", {})}, **kwargs)


def _audit(rt, action: str, target_id: str) -> list[AuditEvent]:
    """The staff's own audit events (the platform may record its side of the same change too)."""
    with rt.db.session() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action,
                                                            AuditEvent.target_id == target_id,
                                                            AuditEvent.actor_type == "staff")))


# --- listing ---------------------------------------------------------------------------------------

def test_paid_bookings_wait_for_confirmation_filtered_by_status_date_and_channel(client, sandbox, rt, desk):
    headers, _ = desk
    paid = paid_booking(client, sandbox, rt, channel="alipay", starts_in=timedelta(days=5, hours=3))
    elsewhere = other_clinic(rt)
    with rt.db.session() as session:
        day = session.scalar(select(Order.appointment_at).where(Order.order_no == paid.order_no)) \
            .astimezone(SHANGHAI).date().isoformat()

    def listed(**query):
        resp = client.get(f"{ADMIN}/bookings", query_string={"limit": 200, **query}, headers=headers)
        assert resp.status_code == 200, resp.get_json()
        return [b["order_no"] for b in resp.get_json()["items"]]

    assert paid.order_no in listed(status="paid", date=day, channel="alipay")
    assert paid.order_no in listed(date=day)
    assert paid.order_no not in listed(status="booked", date=day)
    assert paid.order_no not in listed(status="paid", date=day, channel="wechat")
    assert elsewhere.order_no not in listed(status="paid")
    page = client.get(f"{ADMIN}/bookings", query_string={"date": day, "limit": 1}, headers=headers).get_json()
    assert len(page["items"]) == 1 and page["total"] >= 1 and page["limit"] == 1
    [shown] = [b for b in client.get(f"{ADMIN}/bookings", query_string={"date": day, "status": "paid", "limit": 200},
                                     headers=headers).get_json()["items"] if b["order_no"] == paid.order_no]
    assert shown["clinic_code"] == "demo" and shown["patient"]["phone"] == "138****5678"


def test_bad_list_queries_are_422(client, desk):
    headers, _ = desk
    for query in ({"status": "lost"}, {"date": "2026-13-01"}, {"channel": "paypal"}, {"limit": 0},
                  {"limit": 1000}, {"offset": -1}):
        assert client.get(f"{ADMIN}/bookings", query_string=query, headers=headers).status_code == 422, query



def test_search_finds_a_booking_by_order_number_prefix_patient_name_or_phone_tail(client, sandbox, rt, desk):
    headers, _ = desk
    tail = f"{secrets.randbelow(10**4 - 1):04d}"  # never 9999, the neighbour's
    name = f"搜索{secrets.token_hex(3)}"
    paid = paid_booking(client, sandbox, rt, name=name, phone=f"1390000{tail}")
    neighbour = paid_booking(client, sandbox, rt, name="邻居", phone="13911119999")
    elsewhere = other_clinic(rt)

    def found(q: str, **query) -> list[str]:
        resp = client.get(f"{ADMIN}/bookings", query_string={"q": q, "limit": 200, **query}, headers=headers)
        assert resp.status_code == 200, resp.get_json()
        return [b["order_no"] for b in resp.get_json()["items"]]

    assert paid.order_no in found(paid.order_no)
    assert paid.order_no in found(paid.order_no[:12].lower())
    assert paid.order_no in found(name[2:]) and neighbour.order_no not in found(name[2:])
    assert paid.order_no in found(tail, status="paid")
    assert neighbour.order_no not in found(tail)
    assert found(paid.order_no[1:]) == []  # a number is matched from its start only
    assert found(paid.order_no, status="booked") == []
    assert elsewhere.order_no not in found(elsewhere.order_no) + found("别人") + found("9999")
    # Wildcards are text: `%` and `_` match only themselves.
    assert found("%") == [] and found("_") == []


def test_a_search_longer_than_an_order_number_or_blank_is_422(client, desk):
    headers, _ = desk
    for q in ("", "x" * 65):
        assert client.get(f"{ADMIN}/bookings", query_string={"q": q}, headers=headers).status_code == 422, q


# --- confirming ------------------------------------------------------------------------------------

def test_confirm_binds_the_patient_and_time_and_the_his_registration_follows(client, sandbox, rt, desk):
    headers, username = desk
    paid = paid_booking(client, sandbox, rt)
    at = now() + timedelta(days=1, hours=2)

    resp = _post(client, headers, f"/bookings/{paid.order_no}/confirm",
                 {"patient_id": paid.patient_id, "appointment_at": at.isoformat()})

    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["status"] == "booked" and body["patient"]["id"] == paid.patient_id
    assert datetime.fromisoformat(body["appointment_at"]) == at
    assert body["registration_sync"]["status"] == "pending"
    [event] = _audit(rt, "booking_confirmed", paid.order_no)
    assert event.actor_name == username and event.actor_type == "staff"
    assert event.before["status"] == "paid" and event.after["status"] == "booked"
    assert event.after["appointment_at"] == at.isoformat()

    drive_his_writes(rt, paid.order_no)

    assert [(kind, status) for kind, _, status in outbox_writes(rt, paid.order_no)] == [
        ("registration", "sent"), ("registration_revert", "sent"), ("registration", "sent")]
    registration = _his(rt).get_registration(paid.order_no)
    assert registration.status == "active" and registration.appointment_at == at
    shown = client.get(f"{ADMIN}/bookings/{paid.order_no}", headers=headers).get_json()
    assert shown["registration_sync"] == {"status": "done", "note": None}


def test_confirming_the_booked_patient_and_slot_time_writes_nothing_more(client, sandbox, rt, desk):
    headers, _ = desk
    paid = paid_booking(client, sandbox, rt)
    slot_start = client.get(f"{ADMIN}/bookings/{paid.order_no}", headers=headers).get_json()["appointment_at"]

    resp = _post(client, headers, f"/bookings/{paid.order_no}/confirm",
                 {"patient_id": paid.patient_id, "appointment_at": slot_start})
    drive_his_writes(rt, paid.order_no)

    assert resp.status_code == 200, resp.get_json()
    assert [kind for kind, _, _ in outbox_writes(rt, paid.order_no)] == ["registration"]


def test_a_new_patient_sharing_a_phone_is_a_distinct_patient_registered_in_the_his(client, sandbox, rt, desk):
    headers, _ = desk
    phone = "13912340001"
    first = paid_booking(client, sandbox, rt, name="张伟", phone=phone)
    second = paid_booking(client, sandbox, rt, mp_headers=first.mp_headers, name="张伟", phone=phone)
    at = (now() + timedelta(days=2)).isoformat()

    one = _post(client, headers, f"/bookings/{first.order_no}/confirm",
                {"patient_id": first.patient_id, "appointment_at": at})
    two = _post(client, headers, f"/bookings/{second.order_no}/confirm",
                {"new_patient": {"name": "张小雨", "phone": phone, "relation": "child"}, "appointment_at": at})

    assert one.status_code == 200 and two.status_code == 200, (one.get_json(), two.get_json())
    new_id = two.get_json()["patient"]["id"]
    assert new_id not in (first.patient_id, second.patient_id)
    assert two.get_json()["patient"]["name"] == "张小雨"
    with rt.db.session() as session:
        new_patient = session.get(Patient, new_id)
        booker = session.get(Patient, first.patient_id)
        assert new_patient.phone == phone and new_patient.user_id == booker.user_id
    found = client.get(f"{ADMIN}/patients", query_string={"phone": phone}, headers=headers).get_json()
    assert {first.patient_id, new_id} <= {p["id"] for p in found}

    drive_his_writes(rt, first.order_no)
    drive_his_writes(rt, second.order_no)

    his = _his(rt)
    first_reg, second_reg = his.get_registration(first.order_no), his.get_registration(second.order_no)
    assert first_reg.status == second_reg.status == "active"
    assert first_reg.patient_id != second_reg.patient_id
    second_person = his.get_patient(second_reg.patient_id)
    assert second_person.name == "张小雨" and second_person.phone == phone


@pytest.mark.parametrize("body", [
    {"appointment_at": "2030-01-01T10:00:00+08:00"},
    {"patient_id": 1, "new_patient": {"name": "甲", "phone": "13800000001"},
     "appointment_at": "2030-01-01T10:00:00+08:00"},
    {"patient_id": 1, "appointment_at": "2030-01-01T10:00:00"},
    {"patient_id": 1, "appointment_at": "0001-01-01T00:00:00+14:00"},
    {"patient_id": 1},
    {"new_patient": {"name": "甲", "phone": "12345"}, "appointment_at": "2030-01-01T10:00:00+08:00"},
    {"patient_id": "1", "appointment_at": "2030-01-01T10:00:00+08:00"},
])
def test_invalid_confirmations_are_422(client, sandbox, rt, desk, body):
    headers, _ = desk
    resp = _post(client, headers, "/bookings/B00000000000000000000/confirm", body)
    assert resp.status_code == 422, resp.get_json()


def test_confirm_refuses_a_past_time_another_clinics_patient_and_a_state_that_is_not_paid(client, sandbox, rt,
                                                                                         desk):
    headers, username = desk
    paid = paid_booking(client, sandbox, rt)
    elsewhere = other_clinic(rt)
    with rt.db.session() as session:
        foreign_patient = session.scalar(select(Order.patient_id).where(Order.order_no == elsewhere.order_no))
    future = (now() + timedelta(days=1)).isoformat()

    past = _post(client, headers, f"/bookings/{paid.order_no}/confirm",
                 {"patient_id": paid.patient_id, "appointment_at": (now() - timedelta(hours=3)).isoformat()})
    foreign = _post(client, headers, f"/bookings/{paid.order_no}/confirm",
                    {"patient_id": foreign_patient, "appointment_at": future})
    assert (past.status_code, past.get_json()["error"]) == (422, "appointment_in_past")
    assert (foreign.status_code, foreign.get_json()["error"]) == (404, "patient_not_found")
    assert order_status(rt, paid.order_no) == "paid"

    booked = confirmed_booking(client, sandbox, rt, username)
    move_appointment(rt, booked.order_no, now() - timedelta(hours=2))
    assert _post(client, headers, f"/bookings/{booked.order_no}/no-show").status_code == 200
    again = _post(client, headers, f"/bookings/{booked.order_no}/confirm",
                  {"patient_id": booked.patient_id, "appointment_at": future})
    assert (again.status_code, again.get_json()["error"]) == (409, "invalid_transition")


def test_a_booked_order_can_be_confirmed_again_and_a_repeat_with_the_same_key_changes_nothing(client, sandbox, rt,
                                                                                             desk):
    headers, _ = desk
    paid = paid_booking(client, sandbox, rt)
    first_time = {"patient_id": paid.patient_id, "appointment_at": (now() + timedelta(days=1)).isoformat()}
    later = {"patient_id": paid.patient_id, "appointment_at": (now() + timedelta(days=3)).isoformat()}

    one = _post(client, headers, f"/bookings/{paid.order_no}/confirm", first_time, extra={"Idempotency-Key": "k1"})
    repeat = _post(client, headers, f"/bookings/{paid.order_no}/confirm", first_time, extra={"Idempotency-Key": "k1"})
    reused = _post(client, headers, f"/bookings/{paid.order_no}/confirm", later, extra={"Idempotency-Key": "k1"})
    moved = _post(client, headers, f"/bookings/{paid.order_no}/confirm", later)

    assert one.status_code == repeat.status_code == 200 and repeat.get_json() == one.get_json()
    assert (reused.status_code, reused.get_json()["error"]) == (409, "idempotency_key_reused")
    assert moved.status_code == 200 and moved.get_json()["status"] == "booked"
    assert moved.get_json()["appointment_at"] != one.get_json()["appointment_at"]
    with rt.db.session() as session:
        moves = list(session.scalars(select(OrderEvent.to_status).where(OrderEvent.order_id == paid.order_id)
                                     .order_by(OrderEvent.id)))
    assert moves == ["paid", "booked", "booked"]
    drive_his_writes(rt, paid.order_no)
    assert _his(rt).get_registration(paid.order_no).appointment_at == \
        datetime.fromisoformat(moved.get_json()["appointment_at"])


# --- no-shows and rescheduling ------------------------------------------------------------------------

def test_staff_mark_a_no_show_only_once_the_appointment_has_begun(client, sandbox, rt, desk):
    headers, username = desk
    booked = confirmed_booking(client, sandbox, rt, username, appointment_at=now() + timedelta(hours=2))

    early = _post(client, headers, f"/bookings/{booked.order_no}/no-show")
    move_appointment(rt, booked.order_no, now() - timedelta(minutes=5))
    marked = _post(client, headers, f"/bookings/{booked.order_no}/no-show")
    twice = _post(client, headers, f"/bookings/{booked.order_no}/no-show")

    assert (early.status_code, early.get_json()["error"]) == (409, "appointment_not_due")
    assert marked.status_code == 200 and marked.get_json()["status"] == "no_show"
    assert (twice.status_code, twice.get_json()["error"]) == (409, "invalid_transition")
    [event] = _audit(rt, "booking_no_show", booked.order_no)
    assert event.actor_name == username and event.before["status"] == "booked"


def test_the_no_show_job_marks_bookings_whose_appointment_ended_and_only_those(client, sandbox, rt, desk):
    _, username = desk
    ended = confirmed_booking(client, sandbox, rt, username)
    running = confirmed_booking(client, sandbox, rt, username)
    move_appointment(rt, ended.order_no, now() - timedelta(hours=1, minutes=1))
    move_appointment(rt, running.order_no, now() - timedelta(minutes=30))

    with rt.db.session() as session:
        due = NO_SHOWS.due_ids(session, now(), 500)
    assert ended.order_id in due and running.order_id not in due
    with rt.db.session() as session:
        assert NO_SHOWS.lease(session, [ended.order_id], now() + timedelta(seconds=30)) == [ended.order_id]
    with rt.db.session() as session:
        assert ended.order_id not in NO_SHOWS.due_ids(session, now(), 500)

    assert no_shows.mark_if_overdue(rt, ended.order_id) == "no_show"
    assert no_shows.mark_if_overdue(rt, running.order_id) == "booked"
    assert no_shows.mark_if_overdue(rt, ended.order_id) == "no_show"
    with rt.db.session() as session:
        assert session.scalar(select(func.count(OrderEvent.id)).where(OrderEvent.order_id == ended.order_id,
                                                                     OrderEvent.to_status == "no_show")) == 1


def test_a_no_show_is_rescheduled_to_today_or_later_and_registered_anew(client, sandbox, rt, desk):
    headers, username = desk
    booked = confirmed_booking(client, sandbox, rt, username)
    drive_his_writes(rt, booked.order_no)
    not_yet = _post(client, headers, f"/bookings/{booked.order_no}/reschedule", {"appointment_at": now().isoformat()})
    move_appointment(rt, booked.order_no, now() - timedelta(hours=3))
    assert no_shows.mark_if_overdue(rt, booked.order_id) == "no_show"

    yesterday = _post(client, headers, f"/bookings/{booked.order_no}/reschedule",
                      {"appointment_at": (now() - timedelta(days=1)).isoformat()})
    today = _post(client, headers, f"/bookings/{booked.order_no}/reschedule", {"appointment_at": now().isoformat()})

    assert (not_yet.status_code, not_yet.get_json()["error"]) == (409, "invalid_transition")
    assert "confirm it again" in not_yet.get_json()["message"]
    assert (yesterday.status_code, yesterday.get_json()["error"]) == (422, "appointment_in_past")
    assert today.status_code == 200 and today.get_json()["status"] == "rescheduled"
    [event] = _audit(rt, "booking_rescheduled", booked.order_no)
    assert event.before["status"] == "no_show" and event.after["status"] == "rescheduled"

    drive_his_writes(rt, booked.order_no)
    kinds = [kind for kind, _, _ in outbox_writes(rt, booked.order_no)]
    assert kinds[-2:] == ["registration_revert", "registration"]
    registration = _his(rt).get_registration(booked.order_no)
    assert registration.status == "active"
    assert registration.appointment_at == datetime.fromisoformat(today.get_json()["appointment_at"])


# --- cancelling -------------------------------------------------------------------------------------

def test_staff_cancel_a_paid_booking_once_with_a_full_refund_request(client, sandbox, rt, desk):
    headers, username = desk
    paid = paid_booking(client, sandbox, rt, channel="alipay")

    resp = _post(client, headers, f"/bookings/{paid.order_no}/cancel", {"reason": "患者无法就诊"})
    again = _post(client, headers, f"/bookings/{paid.order_no}/cancel", {"reason": "再次取消"})
    missing_reason = _post(client, headers, f"/bookings/{paid.order_no}/cancel", {})

    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["status"] == "refunding"
    assert (again.status_code, again.get_json()["error"]) == (409, "invalid_transition")
    assert missing_reason.status_code == 422
    with rt.db.session() as session:
        [request] = session.scalars(select(RefundRequest).where(RefundRequest.order_id == paid.order_id))
        assert request.amount_fen == 2000 and request.origin == "cancellation"
    [event] = _audit(rt, "booking_cancelled", paid.order_no)
    assert event.actor_name == username and event.before["status"] == "paid" and event.note == "患者无法就诊"


def _slot_of(rt, item_id: int, starts_at: datetime) -> int:
    with rt.db.session() as session:
        slot = Slot(item_id=item_id, starts_at=starts_at, ends_at=starts_at + timedelta(minutes=30), capacity=4,
                    reserved=0)
        session.add(slot)
        session.flush()
        return slot.id


def test_a_booking_holds_the_patients_day_staff_chose_so_one_a_day_still_holds(client, sandbox, rt, desk):
    headers, username = desk
    booked = confirmed_booking(client, sandbox, rt, username)  # paid for a slot in two days, confirmed for today
    move_appointment(rt, booked.order_no, now() - timedelta(hours=3))
    assert no_shows.mark_if_overdue(rt, booked.order_id) == "no_show"
    tomorrow, in_three_days = now() + timedelta(days=1), now() + timedelta(days=3)
    slot_in_two_days = booked.slot_id
    again = place_order(client, booked.mp_headers,
                        booking(booked.item_id, _slot_of(rt, booked.item_id, tomorrow), booked.patient_id))
    assert again.status_code == 201, again.get_json()  # the confirmation moved the key off the paid slot's day

    onto_tomorrow = _post(client, headers, f"/bookings/{booked.order_no}/reschedule",
                          {"appointment_at": tomorrow.isoformat()})
    later = _post(client, headers, f"/bookings/{booked.order_no}/reschedule",
                  {"appointment_at": in_three_days.isoformat()})

    assert (onto_tomorrow.status_code, onto_tomorrow.get_json()["error"]) == (409, "patient_already_booked")
    assert later.status_code == 200 and later.get_json()["status"] == "rescheduled"
    third_day = place_order(client, booked.mp_headers,
                            booking(booked.item_id, _slot_of(rt, booked.item_id, in_three_days), booked.patient_id))
    assert refusal(third_day) == (409, "patient_already_booked")
    second_day = place_order(client, booked.mp_headers, booking(booked.item_id, slot_in_two_days, booked.patient_id))
    assert second_day.status_code == 201, second_day.get_json()
