"""A month closed end to end on both channels, through the real SDKs and the sandbox: a platform-collected
booking paid through a platform app, confirmed and redeemed by the clinic's staff over HTTP, lands on the
month's statement and the clinic's own report at the purchase price it kept when it was made (the item's price
changed since), and the check agrees."""
from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import pytest
import requests
from sqlalchemy import select

from app.db.models import Clinic, Order, PaymentAttempt, Slot
from app.domain.settlement import SHANGHAI, add_months, format_month, shanghai_month_of
from app.services.common.principals import StaffPrincipal
from app.services.payments import attempts
from app.services.settlement import channel_orders, statements
from tests.api.admin_helpers import ADMIN, make_user, now, sign_in
from tests.api.mp_helpers import bearer
from tests.api.onboarding_helpers import (
    alipay_app_body,
    app_login,
    created,
    onboard_clinic,
    operator_headers,
    sandbox_merchant,
    wechat_app_body,
)
from tests.api.order_helpers import MP, add_patient, booking, place_order


def _platform_item(client, admin: dict, code: str) -> dict:
    """A platform-collected item with a slot starting in a minute (redeemed today), stocked on both channels."""
    item = created(client.post(f"{ADMIN}/items", headers=admin, json={
        "clinic_code": code, "code": f"P{secrets.token_hex(4)}", "name": "渠道体检", "price_fen": 29900,
        "collected_by": "platform", "purchase_price_fen": {"wechat": 18000, "alipay": 17500}}))
    created(client.put(f"{ADMIN}/items/{item['id']}/inventory", headers=admin,
                       json=[{"channel": "wechat", "quantity": 5}, {"channel": "alipay", "quantity": 5}]))
    return item


@pytest.mark.parametrize("channel", ["wechat", "alipay"])
def test_a_platform_booking_is_on_the_statement_at_the_price_it_kept_and_the_check_agrees(client, rt, sandbox,
                                                                                           channel):
    operator, _ = operator_headers(client, rt)
    clinic = onboard_clinic(client, operator, sandbox.url)
    code = clinic["code"]
    merchant = sandbox_merchant(sandbox.url, channel, "platform")
    body = wechat_app_body(sandbox.url, merchant) if channel == "wechat" else alipay_app_body(sandbox.url, merchant)
    created(client.post(f"{ADMIN}/platform/channel-apps", headers=operator, json=body))
    admin = sign_in(client, *make_user(rt, "admin", clinics=(code,)))
    staff_user, staff_password = make_user(rt, "staff", clinics=(code,))
    staff = sign_in(client, staff_user, staff_password)
    item = _platform_item(client, admin, code)
    slot = _slot_soon(rt, item["id"])

    app_id = merchant["appid"] if channel == "wechat" else merchant["app_id"]
    login = app_login(client, sandbox.url, code, channel, app_id, f"month-{secrets.token_hex(3)}")
    assert login.status_code == 200, login.get_json()
    patient_headers = bearer(login.get_json()["token"])
    patient = add_patient(client, patient_headers)
    order = created(place_order(client, patient_headers, booking(item["id"], slot, patient["id"], channel)))
    # The item's purchase price changes after the order was made: the order keeps the old one.
    created(client.patch(f"{ADMIN}/items/{item['id']}", headers=admin,
                         json={"purchase_price_fen": {"wechat": 21000, "alipay": 20500}}))
    paying = client.post(f"{MP}/orders/{order['order_no']}/pay", headers=patient_headers).get_json()
    if channel == "wechat":
        sandbox_body = {"prepay_id": paying["pay_params"]["package"].removeprefix("prepay_id="), "outcome": "success"}
    else:
        sandbox_body = {"trade_no": paying["trade_no"], "outcome": "success"}
    assert requests.post(f"{sandbox.url}/sandbox/{channel}/pay", json=sandbox_body, timeout=10).status_code == 200
    with rt.db.session() as session:
        attempt = session.scalar(select(PaymentAttempt).join(Order, Order.id == PaymentAttempt.order_id)
                                 .where(Order.order_no == order["order_no"]))
    assert attempts.query_attempt(rt, attempt.id) == "paid"
    created(client.post(f"{ADMIN}/bookings/{order['order_no']}/confirm", headers=staff,
                        json={"patient_id": patient["id"], "appointment_at": now().isoformat()}))
    redeemed = client.post(f"{ADMIN}/orders/{order['order_no']}/redeem", headers=staff, json={"extra_charges": []})
    assert redeemed.status_code == 200, redeemed.get_json()

    # The month the order was redeemed in, seen from the next month (a statement covers a month that is over).
    month_start = shanghai_month_of(datetime.now(UTC))
    later = datetime.combine(add_months(month_start, 1), datetime.min.time(), SHANGHAI) + timedelta(days=2)
    finance = StaffPrincipal(user_id=0, username="finance-month", role="finance",
                             clinic_ids=(_clinic_id(rt, code),))
    month = format_month(month_start)
    statement = statements.generate_statement(rt, finance, month, channel, now=later)
    report = channel_orders.channel_orders_report(rt, finance, month, channel, now=later)
    [line] = statements.list_lines(rt, finance, statement["id"])["items"]

    kept = 18000 if channel == "wechat" else 17500
    assert (statement["line_count"], statement["total_fen"]) == (1, kept)
    assert (line["order_no"], line["purchase_price_fen"], line["amount_fen"]) == (order["order_no"], kept, 29900)
    with rt.db.session() as session:
        channel_trade_no = session.get(PaymentAttempt, attempt.id).channel_trade_no
    assert line["channel_trade_no"] == channel_trade_no and channel_trade_no
    assert [(r["channel_trade_no"], r["purchase_price_fen"]) for r in report["items"]] == [(channel_trade_no, kept)]
    finance_headers = sign_in(client, *make_user(rt, "finance", clinics=(code,)))
    checked = client.post(f"{ADMIN}/statements/{statement['id']}/check", headers=finance_headers)
    assert checked.status_code == 200 and checked.get_json()["status"] == "checked"


def _clinic_id(rt, code: str) -> int:
    with rt.db.session() as session:
        return session.scalar(select(Clinic.id).where(Clinic.code == code))


def _slot_soon(rt, item_id: int) -> int:
    """A slot starting in two minutes (still bookable; redeemed once confirmed for now)."""
    starts = now() + timedelta(minutes=2)
    with rt.db.session() as session:
        slot = Slot(item_id=item_id, starts_at=starts, ends_at=starts + timedelta(minutes=30), capacity=3, reserved=0)
        session.add(slot)
        session.flush()
        return slot.id
