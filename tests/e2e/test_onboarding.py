"""A second clinic goes live from nothing through the admin API alone, on the real platform processes (gunicorn,
rq workers, the cron dispatcher) and the sandbox: the operator signs in, creates the clinic, connects and checks
its HIS (a new sandbox HIS key), adds a WeChat and an Alipay app from new sandbox merchants and checks both, and
creates the clinic's admin; the admin creates a package, stocks it and posts a schedule; patients of that clinic
sign in through the new apps and book and pay on both channels, the channels' notifications reach the platform
and the clinic's HIS records the registrations. Deactivated, the clinic takes no new login, while a paid booking
is still cancelled and refunded.
"""
from __future__ import annotations

import secrets
from datetime import datetime, timedelta, timezone

import requests
from sqlalchemy import select

from app.db.models import NotificationInbox
from mini_program_mock.patient import MiniProgramClient
from tests.api.mp_helpers import channel_user_id
from tests.api.onboarding_helpers import alipay_app_body, sandbox_merchant, wechat_app_body
from tests.e2e.helpers import wait_until

SHANGHAI = timezone(timedelta(hours=8))
ADMIN = "/api/admin/v1"


class Staff:
    """A staff user of the admin API over HTTP."""

    def __init__(self, platform_url: str, username: str, password: str) -> None:
        self.base = platform_url + ADMIN
        self.http = requests.Session()
        signed = self.http.post(f"{self.base}/auth/login", json={"username": username, "password": password},
                                timeout=30)
        assert signed.status_code == 200, signed.text
        self.http.headers["Authorization"] = f"Bearer {signed.json()['token']}"
        self.user = signed.json()["user"]

    def call(self, method: str, path: str, expect: int = 200, **kwargs):
        resp = self.http.request(method, f"{self.base}{path}", timeout=60, **kwargs)
        assert resp.status_code == expect, f"{method} {path} -> {resp.status_code} {resp.text}"
        return resp.json() if resp.content else None


def _notified(rt, out_trade_no: str) -> list[tuple[str, str]]:
    with rt.db.session() as session:
        return [(row.clinic_code, row.status) for row in session.scalars(
            select(NotificationInbox).where(NotificationInbox.out_trade_no == out_trade_no))]


def _book_and_pay(platform, sandbox, rt, code: str, item: dict, day, channel: str) -> tuple[MiniProgramClient, str]:
    """A patient signs in through the clinic's app of `channel`, books the item and pays; the channel's
    notification reaches the platform under the clinic's notify path and the HIS records the registration."""
    patient = MiniProgramClient(platform.url, sandbox.url, channel, clinic_code=code, say=lambda _line: None)
    patient.login(channel_user_id(channel, f"second-{code}-{channel}"))
    offered = patient.call("GET", "/items")
    assert [(i["id"], i["kind"], i["price_fen"]) for i in offered] == [(item["id"], "package", 12800)]
    slot = patient.call("GET", f"/items/{item['id']}/slots", params={"date": day.isoformat()})[0]
    person = patient.call("POST", "/patients", json={"name": "赵六", "phone": "13900005678", "relation": "self"})
    order = patient.call("POST", "/orders", json={"type": "booking", "item_id": item["id"], "slot_id": slot["id"],
                                                  "patient_id": person["id"], "channel": channel})
    order_no = order["order_no"]
    patient.pay(order_no)
    [payment] = patient.wait_for(order_no, {"paid"})["payments"]
    assert payment["status"] == "paid" and payment["amount_fen"] == 12800 and payment["channel_trade_no"]
    records = wait_until(lambda: patient.his_records(order_no), timeout=60,
                         what=f"the HIS registration of the {channel} booking")
    assert [r["kind"] for r in records] == ["registration"]
    wait_until(lambda: (code, "processed") in _notified(rt, payment["out_trade_no"]), timeout=30,
               what="the channel's notification, processed")
    return patient, order_no


def test_a_second_clinic_goes_live_through_the_api_alone(platform, sandbox, settings, rt):
    code = f"live{secrets.token_hex(3)}"
    operator = Staff(platform.url, "operator", settings.DEMO_PASSWORD)
    assert (operator.user["role"], operator.user["clinic_codes"]) == ("operator", [])

    # The clinic and its HIS.
    operator.call("POST", "/clinics", 201, json={"code": code, "name": "第二诊所 Second Clinic"})
    his = sandbox_merchant(sandbox.url, "his")
    operator.call("PUT", f"/clinics/{code}/his",
                  json={"base_url": f"{sandbox.url}/his/", "key_id": his["key_id"], "secret": his["secret"]})
    his_check = operator.call("POST", f"/clinics/{code}/his/check")
    assert his_check["ok"] is True, his_check

    # Its channel apps, from merchants the sandbox makes for it, each checked by a signed call.
    merchants = {"wechat": sandbox_merchant(sandbox.url, "wechat", code),
                 "alipay": sandbox_merchant(sandbox.url, "alipay", code)}
    bodies = {"wechat": wechat_app_body(sandbox.url, merchants["wechat"]),
              "alipay": alipay_app_body(sandbox.url, merchants["alipay"])}
    apps = {channel: operator.call("POST", f"/clinics/{code}/channel-apps", 201, json=body)
            for channel, body in bodies.items()}
    for channel, app in apps.items():
        checked = operator.call("POST", f"/channel-apps/{app['id']}/check")
        assert checked["ok"] is True, (channel, checked)

    # Its admin, who sets up the catalog and the schedule.
    admin_name, admin_password = f"admin-{code}", "second-clinic-admin"
    operator.call("POST", "/users", 201, json={"username": admin_name, "role": "admin", "clinic_codes": [code],
                                               "password": admin_password})
    admin = Staff(platform.url, admin_name, admin_password)
    assert admin.user["clinic_codes"] == [code]
    item = admin.call("POST", "/items", 201, json={"code": "SCALE01", "kind": "package", "name": "洁牙套餐",
                                                   "description": "含检查", "price_fen": 12800})
    admin.call("PUT", f"/items/{item['id']}/inventory",
               json=[{"channel": "wechat", "quantity": 20}, {"channel": "alipay", "quantity": 20}])
    day = (datetime.now(SHANGHAI) + timedelta(days=2)).date()
    schedule = {"from": day.isoformat(), "to": (day + timedelta(days=6)).isoformat(),
                "weekdays": list(range(1, 8)), "start": "09:00", "end": "12:00", "slot_minutes": 60, "capacity": 4}
    assert admin.call("POST", f"/items/{item['id']}/schedules", json=schedule)["created"] == 21
    assert admin.call("POST", f"/items/{item['id']}/schedules", json=schedule)["created"] == 0

    # Patients of the clinic, through its own apps, book and pay on both channels.
    paid = {channel: _book_and_pay(platform, sandbox, rt, code, item, day, channel) for channel in ("wechat", "alipay")}

    # The admin's console sees the paid bookings waiting for confirmation, and only its own clinic's.
    waiting = admin.call("GET", "/bookings", params={"status": "paid"})
    assert {b["order_no"] for b in waiting["items"]} == {order_no for _, order_no in paid.values()}

    # Deactivated: no new login, but money already taken still goes back.
    operator.call("PATCH", f"/clinics/{code}", json={"active": False})
    refused = requests.post(f"{platform.url}/api/mp/v1/auth/login", timeout=30, json={
        "clinic_code": code, "channel": "wechat",
        "code": requests.post(f"{sandbox.url}/sandbox/wechat/codes", json={"appid": merchants["wechat"]["appid"]},
                              timeout=10).json()["code"]})
    assert (refused.status_code, refused.json()["error"]) == (409, "clinic_inactive")
    patient, order_no = paid["alipay"]
    patient.call("POST", f"/orders/{order_no}/cancel", json={"reason": "诊所停业"})
    refunded = patient.wait_for(order_no, {"refunded"}, timeout=90)
    assert refunded["refunded_fen"] == 12800
