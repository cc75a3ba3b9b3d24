"""WeChat subscribe messages and access tokens, driven with wechatpy's WeChatClient as the platform will."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from wechatpy.exceptions import WeChatClientException

from tests.sandbox.message_helpers import (
    BILL_DATA,
    SandboxWeChatClient,
    grant_wechat,
    log_entries,
    messages,
    template,
    tokens_issued,
)
from tests.sandbox.wechat_helpers import issue_code, new_merchant, shifted_clock


@pytest.fixture
def wx_app(sandbox):
    return new_merchant(sandbox)


@pytest.fixture
def openid(sandbox, wx_app):
    return issue_code(sandbox.url, wx_app["appid"])["openid"]


@pytest.fixture
def wx(sandbox, wx_app):
    return SandboxWeChatClient(sandbox.url, wx_app["appid"], wx_app["app_secret"])


def _errcode(call) -> int:
    with pytest.raises(WeChatClientException) as refused:
        call()
    return refused.value.errcode


def _raw_send(sandbox, token: str, body: dict) -> dict:
    return requests.post(f"{sandbox.url}/wxlogin/cgi-bin/message/subscribe/send", params={"access_token": token},
                         json=body, timeout=10).json()


def _raw_token(sandbox, wx_app) -> str:
    answer = requests.get(f"{sandbox.url}/wxlogin/cgi-bin/token", params={
        "grant_type": "client_credential", "appid": wx_app["appid"], "secret": wx_app["app_secret"]}, timeout=10).json()
    assert answer["expires_in"] == 7200
    return answer["access_token"]


def test_every_app_lists_its_templates_and_pages(sandbox, wx_app):
    listed = next(a for a in sandbox.merchants()["wechat"] if a["appid"] == wx_app["appid"])
    assert {t["purpose"] for t in listed["message_templates"]} == {"bill_created", "payment_succeeded",
                                                                  "refund_succeeded"}
    bill = template(listed, "bill_created")
    assert bill["title"] == "待缴费提醒" and bill["fields"] == ["thing1", "amount2", "time3", "thing4"]
    assert len(bill["template_id"]) == 43 and "pages/bills/index" in listed["pages"]
    # Another app has templates of its own: an id is never valid across apps.
    assert bill["template_id"] not in {t["template_id"] for t in new_merchant(sandbox)["message_templates"]}


def test_one_accept_allows_exactly_one_message(sandbox, wx_app, openid, wx):
    bill = template(wx_app, "bill_created")
    grant_wechat(sandbox.url, wx_app["appid"], openid, [bill["template_id"]])

    sent = wx.wxa.send_subscribe_message(openid, bill["template_id"], BILL_DATA,
                                             page="pages/bills/index?card_no=D0000001")
    assert sent["errcode"] == 0 and sent["errmsg"] == "ok" and isinstance(sent["msgid"], int)
    [message] = messages(sandbox.url, channel="wechat", app_id=wx_app["appid"], user=openid)
    assert message["template_id"] == bill["template_id"] and message["purpose"] == "bill_created"
    assert message["data"] == BILL_DATA and message["page"] == "pages/bills/index?card_no=D0000001"
    assert message["msgid"] == str(sent["msgid"]) and message["received_at"]

    assert _errcode(lambda: wx.wxa.send_subscribe_message(openid, bill["template_id"], BILL_DATA)) == 43101
    assert len(messages(sandbox.url, channel="wechat", user=openid)) == 1
    refused = [e for e in log_entries(sandbox.url, "wechat_subscribe_send") if e["touser"] == openid]
    assert [e["errcode"] for e in refused] == [0, 43101]
    # Both sends used the one token the client fetched and cached.
    assert tokens_issued(sandbox.url, wx_app["appid"]) == 1


def test_accepts_add_up_reject_keeps_them_and_ban_takes_them_away(sandbox, wx_app, openid, wx):
    tid = template(wx_app, "payment_succeeded")["template_id"]
    data = {"character_string1": {"value": "VB20240709000123"}, "amount2": {"value": "¥120.50"},
            "time3": {"value": "2024年7月9日 10:06"}, "thing4": {"value": "胸部X线检查"}}
    grant_wechat(sandbox.url, wx_app["appid"], openid, [tid])
    standing = grant_wechat(sandbox.url, wx_app["appid"], openid, [tid])
    assert standing["subscriptions"] == [{**standing["subscriptions"][0], "template_id": tid, "allowance": 2,
                                          "banned": False, "last_result": "accept", "purpose": "payment_succeeded"}]
    assert grant_wechat(sandbox.url, wx_app["appid"], openid, [tid], "reject")["subscriptions"][0]["allowance"] == 2
    assert wx.wxa.send_subscribe_message(openid, tid, data)["errcode"] == 0

    banned = grant_wechat(sandbox.url, wx_app["appid"], openid, [tid], "ban")["subscriptions"][0]
    assert banned["allowance"] == 0 and banned["banned"] is True
    assert _errcode(lambda: wx.wxa.send_subscribe_message(openid, tid, data)) == 43101
    grant_wechat(sandbox.url, wx_app["appid"], openid, [tid])
    assert wx.wxa.send_subscribe_message(openid, tid, data)["errcode"] == 0
    got = requests.get(f"{sandbox.url}/sandbox/wechat/subscriptions",
                       params={"appid": wx_app["appid"], "openid": openid}, timeout=10).json()
    assert got["subscriptions"][0]["allowance"] == 0 and got["subscriptions"][0]["banned"] is False
    assert len(messages(sandbox.url, channel="wechat", app_id=wx_app["appid"], user=openid)) == 2


def test_unknown_template_user_or_page_is_refused_without_spending_the_allowance(sandbox, wx_app, openid, wx):
    bill = template(wx_app, "bill_created")
    grant_wechat(sandbox.url, wx_app["appid"], openid, [bill["template_id"]])
    other_app_template = template(new_merchant(sandbox), "bill_created")["template_id"]

    assert _errcode(lambda: wx.wxa.send_subscribe_message(openid, other_app_template, BILL_DATA)) == 40037
    assert _errcode(lambda: wx.wxa.send_subscribe_message("o-nobody", bill["template_id"], BILL_DATA)) == 40003
    assert _errcode(lambda: wx.wxa.send_subscribe_message(openid, bill["template_id"], BILL_DATA,
                                                              page="pages/elsewhere/index")) == 41030
    assert messages(sandbox.url, channel="wechat", user=openid) == []
    assert wx.wxa.send_subscribe_message(openid, bill["template_id"], BILL_DATA)["errcode"] == 0


@pytest.mark.parametrize("key, value", [
    ("thing1", "这是一个超过二十个字符的非常非常长的缴费项目名称"),
    ("amount2", "abc"),
    ("amount2", "45.001"),
    ("amount2", 45),
    ("time3", "yesterday"),
    ("time3", ""),
    ("thing4", None),
])
def test_data_breaking_the_keyword_rules_is_47003(sandbox, wx_app, openid, wx, key, value):
    bill = template(wx_app, "bill_created")
    grant_wechat(sandbox.url, wx_app["appid"], openid, [bill["template_id"]])
    data = {**BILL_DATA, key: {"value": value}}
    assert _errcode(lambda: wx.wxa.send_subscribe_message(openid, bill["template_id"], data)) == 47003
    assert wx.wxa.send_subscribe_message(openid, bill["template_id"], BILL_DATA)["errcode"] == 0


@pytest.mark.parametrize("data", [
    {k: v for k, v in BILL_DATA.items() if k != "time3"},
    {**BILL_DATA, "thing9": {"value": "多余的字段"}},
    {},
])
def test_missing_or_unknown_keywords_are_47003(sandbox, wx_app, openid, wx, data):
    bill = template(wx_app, "bill_created")
    grant_wechat(sandbox.url, wx_app["appid"], openid, [bill["template_id"]])
    assert _errcode(lambda: wx.wxa.send_subscribe_message(openid, bill["template_id"], data)) == 47003


def test_keyword_rules_by_prefix(sandbox, wx_app, openid, wx):
    refund = template(wx_app, "refund_succeeded")
    assert refund["fields"] == ["character_string1", "amount2", "time3", "phrase4"]
    good = {"character_string1": {"value": "RF-20240709-01"}, "amount2": {"value": "45元"},
            "time3": {"value": "10:06~10:30"}, "phrase4": {"value": "退款成功"}}
    for bad in ({"phrase4": {"value": "退款已经成功了"}}, {"phrase4": {"value": "OK"}},
                {"character_string1": {"value": "退款单号123"}}, {"character_string1": {"value": "R" * 33}}):
        grant_wechat(sandbox.url, wx_app["appid"], openid, [refund["template_id"]])
        assert _errcode(lambda bad=bad: wx.wxa.send_subscribe_message(openid, refund["template_id"],
                                                                          {**good, **bad})) == 47003
    assert wx.wxa.send_subscribe_message(openid, refund["template_id"], good)["errcode"] == 0


def test_an_expired_token_is_refreshed_by_wechatpy_and_the_send_retried(sandbox, wx_app, openid, wx):
    tid = template(wx_app, "bill_created")["template_id"]
    grant_wechat(sandbox.url, wx_app["appid"], openid, [tid])
    grant_wechat(sandbox.url, wx_app["appid"], openid, [tid])
    assert wx.wxa.send_subscribe_message(openid, tid, BILL_DATA)["errcode"] == 0
    assert tokens_issued(sandbox.url, wx_app["appid"]) == 1

    expired = requests.post(f"{sandbox.url}/sandbox/wechat/tokens/expire", json={"appid": wx_app["appid"]}, timeout=10)
    assert expired.status_code == 200 and expired.json()["expired"] == 1
    assert wx.wxa.send_subscribe_message(openid, tid, BILL_DATA)["errcode"] == 0

    assert tokens_issued(sandbox.url, wx_app["appid"]) == 2
    answers = [e["errcode"] for e in log_entries(sandbox.url, "wechat_subscribe_send") if e["touser"] == openid]
    assert answers == [0, 40001, 0]
    assert len(messages(sandbox.url, channel="wechat", user=openid)) == 2


def test_a_superseded_token_lives_five_minutes_and_any_token_expires_after_7200_s(sandbox, wx_app):
    first = _raw_token(sandbox, wx_app)
    second = _raw_token(sandbox, wx_app)
    probe = {"touser": "o-nobody", "template_id": "x", "data": {}}
    # 40003 (unknown user) means the token itself was accepted.
    assert _raw_send(sandbox, first, probe)["errcode"] == 40003
    with shifted_clock(sandbox.url, 301):
        assert _raw_send(sandbox, first, probe)["errcode"] == 40001
        assert _raw_send(sandbox, second, probe)["errcode"] == 40003
    with shifted_clock(sandbox.url, 7201):
        assert _raw_send(sandbox, second, probe)["errcode"] == 42001
    assert _raw_send(sandbox, "not-a-token", probe)["errcode"] == 40001
    assert requests.post(f"{sandbox.url}/wxlogin/cgi-bin/message/subscribe/send", json=probe,
                         timeout=10).json()["errcode"] == 41001
    counts = requests.get(f"{sandbox.url}/sandbox/wechat/tokens", params={"appid": wx_app["appid"]}, timeout=10).json()
    assert counts == {"appid": wx_app["appid"], "issued": 2, "live": 2}


def test_a_token_is_refused_for_a_wrong_secret_unknown_app_or_grant_type(sandbox, wx_app):
    wrong_secret = SandboxWeChatClient(sandbox.url, wx_app["appid"], "0" * 32)
    assert _errcode(wrong_secret.fetch_access_token) == 40125
    unknown_app = SandboxWeChatClient(sandbox.url, "wx0000000000000000", wx_app["app_secret"])
    assert _errcode(unknown_app.fetch_access_token) == 40013
    bad_grant = requests.get(f"{sandbox.url}/wxlogin/cgi-bin/token", timeout=10, params={
        "grant_type": "authorization_code", "appid": wx_app["appid"], "secret": wx_app["app_secret"]}).json()
    assert bad_grant["errcode"] == 40002 and "access_token" not in bad_grant
    assert tokens_issued(sandbox.url, wx_app["appid"]) == 0
    # The secret never reaches the log.
    assert all(wx_app["app_secret"] not in str(e) for e in log_entries(sandbox.url, "wechat_token"))


def test_a_body_that_is_not_json_is_47001(sandbox, wx_app):
    token = _raw_token(sandbox, wx_app)
    answer = requests.post(f"{sandbox.url}/wxlogin/cgi-bin/message/subscribe/send", params={"access_token": token},
                           data=b"<xml/>", timeout=10).json()
    assert answer["errcode"] == 47001


def test_subscription_control_routes_refuse_bad_input(sandbox, wx_app, openid):
    tid = template(wx_app, "bill_created")["template_id"]
    url = f"{sandbox.url}/sandbox/wechat/subscriptions"
    base = {"appid": wx_app["appid"], "openid": openid, "template_ids": [tid], "result": "accept"}
    for change, status in [({"appid": "wx-nope"}, 404), ({"template_ids": []}, 422),
                           ({"template_ids": ["not-ours"]}, 422), ({"template_ids": [tid, tid]}, 422),
                           ({"template_ids": [t["template_id"] for t in wx_app["message_templates"]] + ["x"]}, 422),
                           ({"result": "maybe"}, 422), ({"openid": ""}, 422)]:
        assert requests.post(url, json={**base, **change}, timeout=10).status_code == status, change
    assert requests.post(f"{sandbox.url}/sandbox/wechat/tokens/expire", json={}, timeout=10).status_code == 422
    assert requests.get(f"{sandbox.url}/sandbox/messages", params={"channel": "sms"}, timeout=10).status_code == 422


def test_pages_are_configurable_per_app(sandbox, openid, wx_app, wx):
    tid = template(wx_app, "bill_created")["template_id"]
    changed = requests.post(f"{sandbox.url}/sandbox/wechat/pages",
                            json={"appid": wx_app["appid"], "pages": ["pages/pay/bills"]}, timeout=10)
    assert changed.status_code == 200 and changed.json()["pages"] == ["pages/pay/bills"]
    grant_wechat(sandbox.url, wx_app["appid"], openid, [tid])
    assert _errcode(lambda: wx.wxa.send_subscribe_message(openid, tid, BILL_DATA, page="pages/bills/index")) \
        == 41030
    assert wx.wxa.send_subscribe_message(openid, tid, BILL_DATA, page="pages/pay/bills")["errcode"] == 0
    made = requests.post(f"{sandbox.url}/sandbox/merchants", json={"channel": "wechat", "pages": ["a/b"]}, timeout=10)
    assert made.status_code == 201 and made.json()["pages"] == ["a/b"]
    assert requests.post(f"{sandbox.url}/sandbox/merchants", json={"channel": "wechat", "pages": ["a?b=1"]},
                         timeout=10).status_code == 422


def test_concurrent_sends_spend_one_allowance_once(sandbox, wx_app, openid):
    tid = template(wx_app, "bill_created")["template_id"]
    grant_wechat(sandbox.url, wx_app["appid"], openid, [tid])
    token = _raw_token(sandbox, wx_app)
    body = {"touser": openid, "template_id": tid, "data": BILL_DATA}
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: _raw_send(sandbox, token, body)["errcode"], range(8)))
    assert sorted(answers) == [0] + [43101] * 7
    assert len(messages(sandbox.url, channel="wechat", user=openid)) == 1
