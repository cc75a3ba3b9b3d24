"""Every front-desk flow end to end on both channels, on real processes (gunicorn, rq workers and cron)
against the sandbox: the patient books and pays in the mini-program, staff act through the admin API,
and the HIS's own records show what happened."""
from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import pytest
import requests
from sqlalchemy import select, update

from app.db.models import Clinic, HisOutbox, Order, OrderEvent
from app.services.his.gateway import his_client
from app.services.people.staff_auth import create_user
from tests.e2e.helpers import fresh_slot, new_client, wait_until

ADMIN = "/api/admin/v1"
CHANNELS = ["wechat", "alipay"]


class Desk:
    """A staff user at the front desk, over HTTP."""

    def __init__(self, platform_url: str, username: str, password: str) -> None:
        self.url = platform_url.rstrip("/") + ADMIN
        self.http = requests.Session()
        resp = self.http.post(f"{self.url}/auth/login", json={"username": username, "password": password}, timeout=30)
        assert resp.status_code == 200, resp.text
        self.http.headers["Authorization"] = f"Bearer {resp.json()['token']}"

    def call(self, method: str, path: str, expect: int = 200, **kwargs) -> dict:
        resp = self.http.request(method, self.url + path, timeout=60, **kwargs)
        assert resp.status_code == expect, (method, path, resp.status_code, resp.text)
        return resp.json()

    def booking(self, order_no: str) -> dict:
        return self.call("GET", f"/bookings/{order_no}")

    def registration_settled(self, order_no: str) -> dict:
        return wait_until(lambda: (b := self.booking(order_no))["registration_sync"]["status"] == "done" and b,
                          timeout=60, what=f"the HIS registration of {order_no} to follow staff")


@pytest.fixture(scope="module")
def desk(platform, rt):
    username, password = f"desk-{secrets.token_hex(4)}", secrets.token_hex(12)
    with rt.db.session() as session:
        create_user(session, username, password, "staff", ["demo"], created_by="test")
    return Desk(platform.url, username, password)


@pytest.fixture(scope="module")
def his(rt, platform):
    with rt.db.session() as session:
        return his_client(rt, session.scalar(select(Clinic).where(Clinic.code == "demo")))


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _phone() -> str:
    return f"139{secrets.randbelow(10**8):08d}"


def _paid_booking(platform, sandbox, rt, mp, patient: dict) -> dict:
    item_id, slot_id = fresh_slot(rt, capacity=4)
    order = mp.call("POST", "/orders", json={"type": "booking", "item_id": item_id, "slot_id": slot_id,
                                             "patient_id": patient["id"], "channel": mp.channel})
    mp.pay(order["order_no"])
    return mp.wait_for(order["order_no"], {"paid"})


def _kinds(mp, order_no: str) -> list[str]:
    return [r["kind"] for r in mp.his_records(order_no)]


def _missed(desk: Desk, rt, order_no: str) -> None:
    """Let the appointment pass: the platform's no-show job marks the booking."""
    with rt.db.session() as session:
        session.execute(update(Order).where(Order.order_no == order_no)
                        .values(appointment_at=_now() - timedelta(hours=2)))
    wait_until(lambda: desk.booking(order_no)["status"] == "no_show", timeout=60,
               what=f"{order_no} to be marked a no-show")


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_new_patient_sharing_a_phone_is_confirmed_then_redeemed_with_an_extra_charge_the_patient_pays(
        platform, sandbox, rt, desk, his, channel):
    phone = _phone()
    mp = new_client(platform, sandbox, channel, f"desk-share-{channel}-{phone}")
    parent = mp.call("POST", "/patients", json={"name": "张伟", "phone": phone, "relation": "self"})
    first = _paid_booking(platform, sandbox, rt, mp, parent)
    second = _paid_booking(platform, sandbox, rt, mp, parent)
    at = _now().isoformat()

    desk.call("POST", f"/bookings/{first['order_no']}/confirm", json={"patient_id": parent["id"], "appointment_at": at})
    confirmed = desk.call("POST", f"/bookings/{second['order_no']}/confirm",
                          json={"new_patient": {"name": "张小雨", "phone": phone, "relation": "child"},
                                "appointment_at": at})
    desk.registration_settled(first["order_no"])
    desk.registration_settled(second["order_no"])

    child_id = confirmed["patient"]["id"]
    assert child_id != parent["id"] and confirmed["status"] == "booked"
    sharing = desk.call("GET", "/patients", params={"phone": phone})
    assert {p["id"] for p in sharing} == {parent["id"], child_id}
    first_reg, second_reg = his.get_registration(first["order_no"]), his.get_registration(second["order_no"])
    assert first_reg.patient_id != second_reg.patient_id
    assert his.get_patient(second_reg.patient_id).name == "张小雨"
    assert second_reg.appointment_at == datetime.fromisoformat(at)
    assert _kinds(mp, second["order_no"]) == ["registration", "registration_revert", "registration"]

    redeemed = desk.call("POST", f"/orders/{second['order_no']}/redeem",
                         json={"extra_charges": [{"name": "拍片 X-ray", "amount_fen": 8000}]})
    again = desk.call("POST", f"/orders/{second['order_no']}/redeem", json={}, expect=409)

    assert redeemed["status"] == "redeemed" and again["error"] == "invalid_transition"
    [extra] = redeemed["extra_charges"]
    assert extra["status"] == "created" and extra["bill_id"]
    wait_until(lambda: "charge" in _kinds(mp, second["order_no"]), timeout=60, what="the HIS charge record")
    [charge] = [r for r in mp.his_records(second["order_no"]) if r["kind"] == "charge"]
    assert charge["amount_fen"] == second["amount_fen"] and charge["card_no"] == extra["card_no"]

    # The patient pays the extra charge like any visit bill, through the mini-program.
    bills = mp.call("GET", f"/cards/{extra['card_no']}/bills")
    assert [(b["bill_id"], b["amount_fen"]) for b in bills] == [(extra["bill_id"], 8000)]
    bill_order = mp.call("POST", "/orders", json={"type": "visit_bill", "card_no": extra["card_no"],
                                                  "bill_ids": [extra["bill_id"]], "channel": channel})
    mp.pay(bill_order["order_no"])
    assert mp.wait_for(bill_order["order_no"], {"completed"})["amount_fen"] == 8000
    assert _kinds(mp, bill_order["order_no"]) == ["bill_settlement"]
    assert mp.call("GET", f"/cards/{extra['card_no']}/bills") == []


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_no_show_is_rescheduled_to_today_and_redeemed(platform, sandbox, rt, desk, his, channel):
    mp = new_client(platform, sandbox, channel, f"desk-resched-{channel}-{secrets.token_hex(3)}")
    patient = mp.call("POST", "/patients", json={"name": "李雷", "phone": _phone(), "relation": "self"})
    order = _paid_booking(platform, sandbox, rt, mp, patient)
    desk.call("POST", f"/bookings/{order['order_no']}/confirm",
              json={"patient_id": patient["id"], "appointment_at": (_now() + timedelta(days=1)).isoformat()})
    desk.registration_settled(order["order_no"])

    _missed(desk, rt, order["order_no"])
    refused = desk.call("POST", f"/orders/{order['order_no']}/redeem", json={}, expect=409)
    today = _now().isoformat()
    rescheduled = desk.call("POST", f"/bookings/{order['order_no']}/reschedule", json={"appointment_at": today})
    desk.registration_settled(order["order_no"])
    redeemed = desk.call("POST", f"/orders/{order['order_no']}/redeem", json={})

    assert refused["error"] == "invalid_transition" and rescheduled["status"] == "rescheduled"
    assert redeemed["status"] == "redeemed"
    registration = his.get_registration(order["order_no"])
    assert registration.status == "active" and registration.appointment_at == datetime.fromisoformat(today)
    wait_until(lambda: "charge" in _kinds(mp, order["order_no"]), timeout=60, what="the HIS charge record")
    assert _kinds(mp, order["order_no"]) == ["registration", "registration_revert", "registration",
                                             "registration_revert", "registration", "charge"]


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_no_show_is_cancelled_and_refunded_in_full(platform, sandbox, rt, desk, his, channel):
    mp = new_client(platform, sandbox, channel, f"desk-noshow-{channel}-{secrets.token_hex(3)}")
    patient = mp.call("POST", "/patients", json={"name": "韩梅梅", "phone": _phone(), "relation": "self"})
    order = _paid_booking(platform, sandbox, rt, mp, patient)
    desk.call("POST", f"/bookings/{order['order_no']}/confirm",
              json={"patient_id": patient["id"], "appointment_at": _now().isoformat()})
    desk.registration_settled(order["order_no"])
    _missed(desk, rt, order["order_no"])

    cancelled = desk.call("POST", f"/bookings/{order['order_no']}/cancel", json={"reason": "患者失约，不再就诊"})
    refunded = mp.wait_for(order["order_no"], {"refunded"}, timeout=90)

    assert cancelled["status"] == "refunding"
    assert refunded["refunded_fen"] == refunded["amount_fen"] == order["amount_fen"]
    assert his.get_registration(order["order_no"]).status == "reverted"
    assert _kinds(mp, order["order_no"])[-1] == "registration_revert"


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_same_day_cancellation_reverts_the_registration_before_the_refund(platform, sandbox, rt, desk, his,
                                                                            channel):
    mp = new_client(platform, sandbox, channel, f"desk-sameday-{channel}-{secrets.token_hex(3)}")
    patient = mp.call("POST", "/patients", json={"name": "王芳", "phone": _phone(), "relation": "self"})
    order = _paid_booking(platform, sandbox, rt, mp, patient)
    today = _now().isoformat()
    desk.call("POST", f"/bookings/{order['order_no']}/confirm",
              json={"patient_id": patient["id"], "appointment_at": today})
    desk.registration_settled(order["order_no"])
    assert his.get_registration(order["order_no"]).status == "active"

    desk.call("POST", f"/bookings/{order['order_no']}/cancel", json={"reason": "当天无法治疗"})
    refunded = mp.wait_for(order["order_no"], {"refunded"}, timeout=90)

    registration = his.get_registration(order["order_no"])
    assert registration.status == "reverted" and registration.appointment_at == datetime.fromisoformat(today)
    records = mp.his_records(order["order_no"])
    assert [r["kind"] for r in records][-1] == "registration_revert"
    assert refunded["refunded_fen"] == order["amount_fen"]
    with rt.db.session() as session:
        order_id = session.scalar(select(Order.id).where(Order.order_no == order["order_no"]))
        # The cancellation's revert: the last one (confirming had already reverted the payment-time registration).
        reverted_at = session.scalars(select(HisOutbox.sent_at).where(HisOutbox.order_id == order_id,
                                                                      HisOutbox.kind == "registration_revert",
                                                                      HisOutbox.status == "sent")
                                      .order_by(HisOutbox.id.desc())).first()
        refunded_at = session.scalar(select(OrderEvent.at).where(OrderEvent.order_id == order_id,
                                                                 OrderEvent.to_status == "refunded"))
    assert reverted_at <= refunded_at
    booking = desk.booking(order["order_no"])
    assert booking["status"] == "refunded" and booking["registration_sync"]["status"] in ("done", "stopped")
