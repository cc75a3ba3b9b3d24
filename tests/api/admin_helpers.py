"""Steps shared by the admin API tests: staff users, a second clinic, paid and confirmed bookings,
and driving the HIS writes by hand where no workers run."""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import requests
from sqlalchemy import select, update

from app.db.models import Clinic, HisOutbox, Item, ItemInventory, Order, Patient, PaymentAttempt, RegistrationSync, Slot
from app.domain import ids
from app.services.booking import registration_sync
from app.services.common.principals import StaffPrincipal
from app.services.his import delivery
from app.services.payments import attempts
from app.services.people.staff_auth import create_user
from tests.api.order_helpers import add_patient, booking, created, pay, place_order, user
from tests.e2e.helpers import fresh_slot

ADMIN = "/api/admin/v1"
SHANGHAI = timezone(timedelta(hours=8))


def label(name: str) -> str:
    return f"adm-{name}-{secrets.token_hex(4)}"


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def make_user(rt, role: str, clinics: tuple[str, ...] = ("demo",), name: str | None = None) -> tuple[str, str]:
    """A new staff user; returns (username, password)."""
    username, password = label(name or role), "pw-" + secrets.token_hex(8)
    with rt.db.session() as session:
        create_user(session, username, password, role, list(clinics), created_by="test")
    return username, password


def sign_in(client, username: str, password: str) -> dict:
    resp = client.post(f"{ADMIN}/auth/login", json={"username": username, "password": password})
    assert resp.status_code == 200, resp.get_json()
    return {"Authorization": f"Bearer {resp.get_json()['token']}"}


def staff_headers(client, rt, role: str = "staff", clinics: tuple[str, ...] = ("demo",)) -> tuple[dict, str]:
    username, password = make_user(rt, role, clinics)
    return sign_in(client, username, password), username


def principal(rt, username: str) -> StaffPrincipal:
    from app.services.people.staff_auth import authenticate, token_for

    return authenticate(rt, token_for(rt, _user_id(rt, username)))


def _user_id(rt, username: str) -> int:
    from app.db.models import StaffUser

    with rt.db.session() as session:
        return session.scalar(select(StaffUser.id).where(StaffUser.username == username))


def clinic_id(rt, code: str = "demo") -> int:
    with rt.db.session() as session:
        return session.scalar(select(Clinic.id).where(Clinic.code == code))


@dataclass(frozen=True)
class OtherClinic:
    """A clinic none of the test users belongs to, with an item and a paid booking of its own."""

    code: str
    item_id: int
    order_no: str
    slot_id: int = 0


def other_clinic(rt) -> OtherClinic:
    code = label("elsewhere")[:32]
    at = now() + timedelta(days=3)
    with rt.db.session() as session:
        clinic = Clinic(code=code, name="别家诊所 Elsewhere", his_base_url="http://127.0.0.1:1/his/",
                        his_key_id=f"key-{code}", his_secret="not-used-but-long-enough")
        session.add(clinic)
        session.flush()
        item = Item(clinic_id=clinic.id, code="ELSE01", name="别家套餐", price_fen=3000)
        session.add(item)
        session.flush()
        session.add(ItemInventory(item_id=item.id, channel="wechat", quantity=10, reserved=1))
        slot = Slot(item_id=item.id, starts_at=at, ends_at=at + timedelta(hours=1), capacity=5, reserved=1)
        patient = Patient(clinic_id=clinic.id, name="别人", phone="13800009999")
        session.add_all([slot, patient])
        session.flush()
        order = Order(order_no=ids.new_business_no("booking", now()), clinic_id=clinic.id, type="booking",
                      status="paid", channel="wechat", amount_fen=3000, refunded_fen=0, patient_id=patient.id,
                      item_id=item.id, slot_id=slot.id, description="别家套餐", appointment_at=at,
                      expires_at=now() + timedelta(minutes=15), paid_at=now())
        session.add(order)
        return OtherClinic(code, item.id, order.order_no, slot.id)


# --- bookings ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PaidBooking:
    order_no: str
    order_id: int
    patient_id: int
    item_id: int
    slot_id: int
    mp_headers: dict
    channel: str


def paid_booking(client, sandbox, rt, *, channel: str = "wechat", name: str = "王五", phone: str = "13812345678",
                 starts_in: timedelta = timedelta(days=2), mp_headers: dict | None = None) -> PaidBooking:
    """A booking paid through the sandbox channel and recorded by querying it (no notification reaches the
    test client); its payment-time HIS registration waits in the outbox."""
    headers = mp_headers or user(client, sandbox, label("patient"), channel)
    patient = add_patient(client, headers, name, phone)
    item_id, slot_id = fresh_slot(rt, capacity=4, starts_in=starts_in)
    order = created(place_order(client, headers, booking(item_id, slot_id, patient["id"], channel)))
    paying = pay(client, headers, order["order_no"])
    if channel == "wechat":
        prepay_id = paying["pay_params"]["package"].removeprefix("prepay_id=")
        body, path = {"prepay_id": prepay_id, "outcome": "success"}, "/sandbox/wechat/pay"
    else:
        body, path = {"trade_no": paying["trade_no"], "outcome": "success"}, "/sandbox/alipay/pay"
    resp = requests.post(f"{sandbox.url}{path}", json=body, timeout=10)
    assert resp.status_code == 200, resp.text
    with rt.db.session() as session:
        row = session.scalar(select(Order).where(Order.order_no == order["order_no"]))
        attempt_id = session.scalar(select(PaymentAttempt.id).where(PaymentAttempt.order_id == row.id))
        order_id = row.id
    assert attempts.query_attempt(rt, attempt_id) == "paid"
    return PaidBooking(order["order_no"], order_id, patient["id"], item_id, slot_id, headers, channel)


def confirmed_booking(client, sandbox, rt, staff_username: str, *, appointment_at: datetime | None = None,
                      **kwargs) -> PaidBooking:
    """A paid booking confirmed by `staff_username` for its own patient at `appointment_at` (default now)."""
    from app.services.booking import front_desk

    paid = paid_booking(client, sandbox, rt, **kwargs)
    front_desk.confirm(rt, principal(rt, staff_username), paid.order_no,
                           appointment_at=appointment_at or now(), patient_id=paid.patient_id)
    return paid


def order_status(rt, order_no: str) -> str:
    with rt.db.session() as session:
        return session.scalar(select(Order.status).where(Order.order_no == order_no))


def move_appointment(rt, order_no: str, appointment_at: datetime) -> None:
    """As if time passed: the appointment moves without a staff action (no registration change owed)."""
    with rt.db.session() as session:
        session.execute(update(Order).where(Order.order_no == order_no).values(appointment_at=appointment_at))


def drive_his_writes(rt, order_no: str, rounds: int = 10) -> None:
    """Do what the workers would: send the order's pending HIS writes in order and step its registration
    sync, until nothing is left to do."""
    for _ in range(rounds):
        with rt.db.session() as session:
            order_id = session.scalar(select(Order.id).where(Order.order_no == order_no))
            pending = list(session.scalars(select(HisOutbox.id).where(HisOutbox.order_id == order_id,
                                                                      HisOutbox.status == "pending")
                                           .order_by(HisOutbox.id)))
            sync_id = session.scalar(select(RegistrationSync.id).where(RegistrationSync.order_id == order_id,
                                                                       RegistrationSync.status == "pending"))
        if not pending and sync_id is None:
            return
        for row_id in pending:
            delivery.send(rt, row_id)
        if sync_id is not None:
            registration_sync.sync(rt, sync_id)
    raise AssertionError(f"the HIS writes of {order_no} did not settle in {rounds} rounds")


def outbox_writes(rt, order_no: str) -> list[tuple[str, str, str]]:
    """(kind, idempotency key, status) of the order's HIS writes, in write order."""
    with rt.db.session() as session:
        order_id = session.scalar(select(Order.id).where(Order.order_no == order_no))
        return [(r.kind, r.idempotency_key, r.status) for r in session.scalars(
            select(HisOutbox).where(HisOutbox.order_id == order_id).order_by(HisOutbox.id))]
