"""Alipay mini-program template messages through python-alipay-sdk's signed generic call, as the platform will."""
from __future__ import annotations

import json
import secrets

import pytest
import requests
from alipay.exceptions import AliPayValidationError

from tests.sandbox.alipay_support import alipay_client, new_alipay_merchant
from tests.sandbox.message_helpers import ALIPAY_BILL_DATA, grant_alipay, log_entries, messages, template

METHOD = "alipay.open.app.mini.templatemessage.send"


@pytest.fixture(scope="module")
def ali_app(sandbox):
    return new_alipay_merchant(sandbox)


@pytest.fixture(scope="module")
def ali(sandbox, ali_app):
    return alipay_client(sandbox.url, ali_app)


@pytest.fixture
def user_id():
    return f"2088{secrets.randbelow(10**12):012d}"


def _send(ali, **biz) -> dict:
    return ali.server_api(METHOD, biz)


def _bill(ali_app, user_id, **override) -> dict:
    biz = {"to_user_id": user_id, "user_template_id": template(ali_app, "bill_created")["template_id"],
           "page": "pages/bills/index?card_no=D0000001", "data": json.dumps(ALIPAY_BILL_DATA, ensure_ascii=False)}
    return {**biz, **override}


def test_every_alipay_app_lists_its_templates(sandbox, ali_app):
    listed = next(a for a in sandbox.merchants()["alipay"] if a["app_id"] == ali_app["app_id"])
    bill = template(listed, "bill_created")
    assert bill["fields"] == ["keyword1", "keyword2", "keyword3", "keyword4"] and bill["title"] == "待缴费提醒"
    assert {t["purpose"] for t in listed["message_templates"]} == {"bill_created", "payment_succeeded",
                                                                  "refund_succeeded"}


def test_a_subscribed_user_gets_one_template_message(sandbox, ali_app, ali, user_id):
    tid = template(ali_app, "bill_created")["template_id"]
    granted = grant_alipay(sandbox.url, ali_app["app_id"], user_id, [tid])
    assert granted["subscriptions"][0]["allowance"] == 1 and granted["open_id"]

    answer = _send(ali, **_bill(ali_app, user_id, form_id="2017010100000000580012345678"))
    assert answer == {"code": "10000", "msg": "Success"}
    [message] = messages(sandbox.url, channel="alipay", app_id=ali_app["app_id"], user=user_id)
    assert message["template_id"] == tid and message["data"] == ALIPAY_BILL_DATA
    assert message["page"] == "pages/bills/index?card_no=D0000001" and message["open_id"] == granted["open_id"]
    assert message["form_id"] == "2017010100000000580012345678"

    # The answer is signed with the Alipay key: the SDK verified it; a second send has no allowance left.
    refused = _send(ali, **_bill(ali_app, user_id))
    assert refused["code"] == "40004" and refused["sub_code"] == "REQUEST_IS_OUT_OF_SUBSCRIBE_LIMIT"
    assert len(messages(sandbox.url, channel="alipay", user=user_id)) == 1
    logged = [e for e in log_entries(sandbox.url, "alipay_gateway") if e["method"] == METHOD
              and user_id in (e["biz_content"] or "")]
    assert [e["sub_code"] for e in logged] == [None, "REQUEST_IS_OUT_OF_SUBSCRIBE_LIMIT"]


def test_a_user_without_a_subscription_is_refused(sandbox, ali_app, ali, user_id):
    refused = _send(ali, **_bill(ali_app, user_id))
    assert refused["code"] == "40004" and refused["sub_code"] == "REQUEST_IS_OUT_OF_SUBSCRIBE_LIMIT"
    assert messages(sandbox.url, channel="alipay", user=user_id) == []


def test_a_message_can_be_addressed_by_open_id(sandbox, ali_app, ali, user_id):
    tid = template(ali_app, "bill_created")["template_id"]
    open_id = grant_alipay(sandbox.url, ali_app["app_id"], user_id, [tid])["open_id"]
    assert _send(ali, **_bill(ali_app, None, to_open_id=open_id))["code"] == "10000"
    assert messages(sandbox.url, channel="alipay", user=open_id)[0]["user"] == user_id
    unknown = _send(ali, **_bill(ali_app, None, to_open_id="0" + "x" * 46))
    assert unknown["sub_code"] == "INVALID_PARAMETER"


@pytest.mark.parametrize("override, sub_code", [
    ({"user_template_id": "bm90LW91cnM="}, "USER_TEMPLATE_ILLEGAL"),
    ({"page": "pages/elsewhere/index"}, "PAGE_ILLEGAL"),
    ({"page": ""}, "PAGE_ILLEGAL"),
    ({"data": "not json"}, "DATA_ILLEGAL"),
    ({"data": ALIPAY_BILL_DATA}, "DATA_ILLEGAL"),  # an object, not the JSON string Alipay requires
    ({"data": json.dumps({k: v for k, v in ALIPAY_BILL_DATA.items() if k != "keyword4"})}, "DATA_ILLEGAL"),
    ({"data": json.dumps({**ALIPAY_BILL_DATA, "keyword5": {"value": "多余"}})}, "DATA_ILLEGAL"),
    ({"data": json.dumps({**ALIPAY_BILL_DATA, "keyword1": {"value": "长" * 51}})}, "DATA_ILLEGAL"),
    ({"to_user_id": "12345"}, "INVALID_PARAMETER"),
    ({"to_user_id": None}, "INVALID_PARAMETER"),
])
def test_bad_requests_are_signed_business_failures_that_spend_nothing(sandbox, ali_app, ali, user_id, override,
                                                                      sub_code):
    tid = template(ali_app, "bill_created")["template_id"]
    grant_alipay(sandbox.url, ali_app["app_id"], user_id, [tid])
    refused = _send(ali, **_bill(ali_app, user_id, **override))
    assert refused["code"] == "40004" and refused["sub_code"] == sub_code, refused
    assert _send(ali, **_bill(ali_app, user_id))["code"] == "10000"


def test_another_apps_key_cannot_send(sandbox, ali_app, user_id):
    tid = template(ali_app, "bill_created")["template_id"]
    grant_alipay(sandbox.url, ali_app["app_id"], user_id, [tid])
    other = new_alipay_merchant(sandbox)
    forged = alipay_client(sandbox.url, ali_app, app_private_key=other["app_private_key"])
    refused = _send(forged, **_bill(ali_app, user_id))
    assert (refused["code"], refused["sub_code"]) == ("40002", "isv.invalid-signature")
    assert messages(sandbox.url, channel="alipay", user=user_id) == []


def test_the_answer_is_signed_by_the_apps_alipay_key(sandbox, ali_app, user_id):
    """The SDK holding another Alipay public key refuses the answer: the sandbox signs what it says."""
    other = new_alipay_merchant(sandbox)
    doubting = alipay_client(sandbox.url, {**ali_app, "alipay_public_key": other["alipay_public_key"]})
    with pytest.raises(AliPayValidationError):
        _send(doubting, **_bill(ali_app, user_id))


def test_alipay_subscription_control_route_refuses_bad_input(sandbox, ali_app, user_id):
    tid = template(ali_app, "bill_created")["template_id"]
    url = f"{sandbox.url}/sandbox/alipay/subscriptions"
    base = {"app_id": ali_app["app_id"], "user_id": user_id, "template_ids": [tid], "result": "accept"}
    for change, status in [({"app_id": "2021000000000000"}, 404), ({"user_id": "o123"}, 422),
                           ({"template_ids": ["x"]}, 422), ({"result": None}, 422)]:
        assert requests.post(url, json={**base, **change}, timeout=10).status_code == status, change
    got = requests.get(url, params={"app_id": ali_app["app_id"], "user_id": user_id}, timeout=10).json()
    assert got["subscriptions"] == []
