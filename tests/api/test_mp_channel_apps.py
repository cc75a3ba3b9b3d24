"""Mini-program users and the apps they sign in through: each app's users log in through their own app (named by
`app_id` when the clinic runs several), pay through it, and see what it sells; the platform's apps sell the
platform-collected items of every clinic. A deactivated clinic or app takes no new logins or orders."""
from __future__ import annotations

import secrets
from datetime import datetime, timedelta

import pytest
import requests
from sqlalchemy import select

from app.db.models import MerchantAccount, MpUser, NotificationInbox, PaymentAttempt
from app.services.payments import notifications
from tests.api.admin_helpers import ADMIN, SHANGHAI, make_user, now, sign_in
from tests.api.mp_helpers import bearer
from tests.api.onboarding_helpers import (
    app_login,
    created,
    onboard_clinic,
    operator_headers,
    sandbox_merchant,
    wechat_app_body,
)
from tests.api.order_helpers import MP, add_patient, booking, place_order


@pytest.fixture(scope="module")
def onboarded(app, rt, sandbox, demo_clinic):
    """A clinic set up through the operator's API, with an admin, a stocked item and a day of slots."""
    client = app.test_client()
    headers, _ = operator_headers(client, rt)
    clinic = onboard_clinic(client, headers, sandbox.url)
    username, password = make_user(rt, "admin", clinics=(clinic["code"],))
    admin = sign_in(client, username, password)
    clinic.update(operator=headers, admin=admin, item=_stocked_item(client, admin, clinic["code"], "clinic"))
    return clinic


def _stocked_item(client, admin: dict, code: str, collected_by: str) -> dict:
    body = {"clinic_code": code, "code": f"I{secrets.token_hex(4)}", "name": "检查", "price_fen": 3000,
            "collected_by": collected_by}
    if collected_by == "platform":
        body["purchase_price_fen"] = {"wechat": 2500, "alipay": 2500}
    item = created(client.post(f"{ADMIN}/items", json=body, headers=admin))
    created(client.put(f"{ADMIN}/items/{item['id']}/inventory", headers=admin,
                       json=[{"channel": "wechat", "quantity": 50}, {"channel": "alipay", "quantity": 50}]))
    day = (now() + timedelta(days=3)).astimezone(SHANGHAI).date()
    created(client.post(f"{ADMIN}/items/{item['id']}/schedules", headers=admin, json={
        "from": day.isoformat(), "to": day.isoformat(), "weekdays": list(range(1, 8)), "start": "09:00",
        "end": "10:00", "slot_minutes": 30, "capacity": 10}))
    slots = client.get(f"{ADMIN}/items/{item['id']}/slots", headers=admin,
                       query_string={"from": day.isoformat(), "to": day.isoformat()}).get_json()
    return {**item, "slot_id": slots[0]["id"]}


def _signed_in(resp) -> dict:
    assert resp.status_code == 200, resp.get_json()
    return bearer(resp.get_json()["token"])


def _account_of_user(rt, user_id: int) -> int:
    with rt.db.session() as session:
        return session.scalar(select(MpUser.merchant_account_id).where(MpUser.id == user_id))


def test_a_clinic_with_several_apps_needs_the_app_id_and_each_app_has_its_own_users(client, rt, sandbox,
                                                                                    onboarded):
    code, first = onboarded["code"], onboarded["wechat"]
    second = sandbox_merchant(sandbox.url, "wechat", code)
    alone = app_login(client, sandbox.url, code, "wechat", None, "one-person", code_app_id=first["appid"])
    second_app = created(client.post(f"{ADMIN}/clinics/{code}/channel-apps", headers=onboarded["operator"],
                                     json=wechat_app_body(sandbox.url, second)))

    ambiguous = app_login(client, sandbox.url, code, "wechat", None, "one-person", code_app_id=first["appid"])
    through_first = app_login(client, sandbox.url, code, "wechat", first["appid"], "one-person")
    through_second = app_login(client, sandbox.url, code, "wechat", second["appid"], "one-person")
    unknown = app_login(client, sandbox.url, code, "wechat", "wx-no-such-app", "one-person",
                        code_app_id=first["appid"])
    demo_app = app_login(client, sandbox.url, code, "wechat", sandbox.merchants()["wechat"][0]["appid"], "x")
    wrong_code = app_login(client, sandbox.url, code, "wechat", second["appid"], "one-person",
                           code_app_id=first["appid"])

    assert alone.status_code == 200, alone.get_json()
    assert (ambiguous.status_code, ambiguous.get_json()["error"]) == (409, "app_id_required")
    ids = {through_first.get_json()["user"]["id"], through_second.get_json()["user"]["id"]}
    assert len(ids) == 2 and alone.get_json()["user"]["id"] in ids
    assert _account_of_user(rt, through_second.get_json()["user"]["id"]) == second_app["id"]
    assert (unknown.status_code, unknown.get_json()["error"]) == (404, "channel_app_not_found")
    assert (demo_app.status_code, demo_app.get_json()["error"]) == (404, "channel_app_not_found")
    assert (wrong_code.status_code, wrong_code.get_json()["error"]) == (401, "invalid_login_code")

    # A patient pays through the app they signed in with.
    headers = _signed_in(through_second)
    patient = add_patient(client, headers)
    order = created(place_order(client, headers, booking(onboarded["item"]["id"], onboarded["item"]["slot_id"],
                                                         patient["id"])))
    paying = client.post(f"{MP}/orders/{order['order_no']}/pay", headers=headers)
    assert paying.status_code == 200, paying.get_json()
    with rt.db.session() as session:
        attempt = session.scalar(select(PaymentAttempt).where(PaymentAttempt.out_trade_no ==
                                                              paying.get_json()["out_trade_no"]))
    assert attempt.merchant_account_id == second_app["id"]
    log = requests.get(f"{sandbox.url}/sandbox/log", params={"limit": 50}, timeout=5).json()
    assert any(entry.get("out_trade_no") == attempt.out_trade_no and entry.get("appid") == second["appid"]
               for entry in log)

    # The clinic stops that app: its users may no longer sign in through it or pay through it.
    created(client.patch(f"{ADMIN}/channel-apps/{second_app['id']}", json={"active": False},
                         headers=onboarded["operator"]))
    refused_login = app_login(client, sandbox.url, code, "wechat", second["appid"], "one-person")
    refused_order = place_order(client, headers, booking(onboarded["item"]["id"], onboarded["item"]["slot_id"],
                                                         patient["id"]))
    assert (refused_login.status_code, refused_login.get_json()["error"]) == (404, "channel_app_not_found")
    assert (refused_order.status_code, refused_order.get_json()["error"]) == (409, "channel_app_inactive")


def test_a_deactivated_clinic_takes_no_new_login_or_order(client, rt, sandbox, onboarded):
    code = onboarded["code"]
    alipay_app = onboarded["alipay"]["app_id"]
    headers = _signed_in(app_login(client, sandbox.url, code, "alipay", None, "inactive-case", code_app_id=alipay_app))
    patient = add_patient(client, headers)

    created(client.patch(f"{ADMIN}/clinics/{code}", json={"active": False}, headers=onboarded["operator"]))
    try:
        login = app_login(client, sandbox.url, code, "alipay", None, "inactive-case", code_app_id=alipay_app)
        order = place_order(client, headers, booking(onboarded["item"]["id"], onboarded["item"]["slot_id"],
                                                     patient["id"], "alipay"))
    finally:
        created(client.patch(f"{ADMIN}/clinics/{code}", json={"active": True}, headers=onboarded["operator"]))

    assert (login.status_code, login.get_json()["error"]) == (409, "clinic_inactive")
    assert (order.status_code, order.get_json()["error"]) == (409, "clinic_inactive")
    assert place_order(client, headers, booking(onboarded["item"]["id"], onboarded["item"]["slot_id"],
                                                patient["id"], "alipay")).status_code == 201


def test_the_platforms_app_sells_platform_collected_items_and_hears_their_payments(client, rt, sandbox, onboarded):
    code = onboarded["code"]
    merchant = sandbox_merchant(sandbox.url, "wechat", "platform")
    platform_app = created(client.post(f"{ADMIN}/platform/channel-apps", headers=onboarded["operator"],
                                       json=wechat_app_body(sandbox.url, merchant)))
    platform_item = _stocked_item(client, onboarded["admin"], code, "platform")
    through_platform = _signed_in(app_login(client, sandbox.url, code, "wechat", merchant["appid"], "ambassador"))
    through_clinic = _signed_in(app_login(client, sandbox.url, code, "wechat", onboarded["wechat"]["appid"],
                                          "ambassador"))

    offered_platform = [i["id"] for i in client.get(f"{MP}/items", headers=through_platform).get_json()]
    offered_clinic = [i["id"] for i in client.get(f"{MP}/items", headers=through_clinic).get_json()]
    patient = add_patient(client, through_platform)
    clinic_patient = add_patient(client, through_clinic)
    wrong_way = place_order(client, through_platform, booking(onboarded["item"]["id"], onboarded["item"]["slot_id"],
                                                              patient["id"]))
    other_way = place_order(client, through_clinic, booking(platform_item["id"], platform_item["slot_id"],
                                                            clinic_patient["id"]))
    topup = place_order(client, through_platform, {"type": "topup", "card_no": "D0001", "amount_fen": 1000,
                                                   "channel": "wechat"})

    assert offered_platform == [platform_item["id"]]
    assert platform_item["id"] not in offered_clinic and onboarded["item"]["id"] in offered_clinic
    assert (wrong_way.status_code, wrong_way.get_json()["error"]) == (409, "item_not_sold_through_this_app")
    assert (other_way.status_code, other_way.get_json()["error"]) == (409, "item_not_sold_through_this_app")
    assert (topup.status_code, topup.get_json()["error"]) == (409, "clinic_payment_through_platform_app")

    order = created(place_order(client, through_platform, booking(platform_item["id"], platform_item["slot_id"],
                                                                  patient["id"])))
    paying = client.post(f"{MP}/orders/{order['order_no']}/pay", headers=through_platform).get_json()
    with rt.db.session() as session:
        attempt = session.scalar(select(PaymentAttempt).where(PaymentAttempt.out_trade_no == paying["out_trade_no"]))
    assert attempt.merchant_account_id == platform_app["id"]

    # WeChat reports the payment under the platform's path, signed with the platform merchant's key.
    body = _wechat_payment(merchant, attempt.out_trade_no, attempt.amount_fen)
    to_clinic = client.post(f"/notify/wechat/{code}/pay", data=body, content_type="text/xml")
    to_platform = client.post("/notify/wechat/platform/pay", data=body, content_type="text/xml")
    assert b"FAIL" in to_clinic.data and b"SUCCESS" in to_platform.data
    with rt.db.session() as session:
        row = session.scalar(select(NotificationInbox).where(NotificationInbox.out_trade_no == attempt.out_trade_no))
    assert (row.clinic_code, row.merchant_account_id) == ("platform", platform_app["id"])
    assert notifications.process(rt, row.id) == "paid"
    assert client.get(f"{MP}/orders/{order['order_no']}", headers=through_platform).get_json()["status"] == "paid"
    with rt.db.session() as session:
        assert session.get(MerchantAccount, platform_app["id"]).clinic_id is None


def _wechat_payment(merchant: dict, out_trade_no: str, total_fee: int) -> bytes:
    from app.channels import wechat_sign

    fields = {"appid": merchant["appid"], "mch_id": merchant["mch_id"], "nonce_str": secrets.token_hex(8),
              "result_code": "SUCCESS", "return_code": "SUCCESS", "openid": "ambassador", "trade_type": "JSAPI",
              "bank_type": "CMC", "total_fee": str(total_fee), "cash_fee": str(total_fee), "fee_type": "CNY",
              "transaction_id": "4200" + secrets.token_hex(10), "out_trade_no": out_trade_no,
              "time_end": datetime.now(SHANGHAI).strftime("%Y%m%d%H%M%S")}
    fields["sign"] = wechat_sign.sign(fields, merchant["api_key"], merchant["sign_type"])
    return ("<xml>" + "".join(f"<{k}><![CDATA[{v}]]></{k}>" for k, v in fields.items()) + "</xml>").encode()
