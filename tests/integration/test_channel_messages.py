"""The message senders through the real SDKs against the sandbox: WeChat subscribe messages with wechatpy (its
access token shared in Redis by every process, refreshed once when WeChat refuses it) and Alipay template
messages with python-alipay-sdk's signed generic call."""
from __future__ import annotations

import dataclasses
import secrets
import threading

import pytest
import requests

from app.channels.base import MerchantConfig
from app.channels.messaging import MessageRefused, MessengerUnavailable
from app.runtime import Runtime
from tests.sandbox.message_helpers import (
    ALIPAY_BILL_DATA,
    BILL_DATA,
    grant_alipay,
    grant_wechat,
    messages,
    template,
    tokens_issued,
)
from tests.sandbox.wechat_helpers import issue_code

PAGE = "pages/bills/index?card_no=D0000001"


def _wechat_config(sandbox_url: str, app: dict, **changes) -> MerchantConfig:
    config = MerchantConfig(channel="wechat", clinic_code="msg", app_id=app["appid"], mch_id=app["mch_id"],
                            api_key=app["api_key"], app_secret=app["app_secret"], sign_type=app["sign_type"],
                            app_private_key=None, alipay_public_key=None, api_base_url=f"{sandbox_url}/wxpay/",
                            login_base_url=f"{sandbox_url}/wxlogin/")
    return dataclasses.replace(config, **changes)


def _alipay_config(sandbox_url: str, app: dict) -> MerchantConfig:
    return MerchantConfig(channel="alipay", clinic_code="msg", app_id=app["app_id"], mch_id=app.get("pid"),
                          api_key=None, app_secret=None, sign_type="RSA2", app_private_key=app["app_private_key"],
                          alipay_public_key=app["alipay_public_key"], login_base_url=None,
                          api_base_url=f"{sandbox_url}/alipay/gateway.do")


def _new_app(sandbox, channel: str) -> dict:
    resp = requests.post(f"{sandbox.url}/sandbox/merchants", json={"channel": channel}, timeout=30)
    assert resp.status_code == 201, resp.text
    return resp.json()


@pytest.fixture()
def wx_app(sandbox):
    return _new_app(sandbox, "wechat")


@pytest.fixture()
def openid(sandbox, wx_app):
    return issue_code(sandbox.url, wx_app["appid"])["openid"]


@pytest.fixture()
def processes(settings):
    """Two platform processes as far as the token is concerned: Runtimes with Redis clients of their own."""
    made = [Runtime(settings), Runtime(settings)]
    yield made
    for rt in made:
        rt.close()


def test_a_subscribed_user_gets_the_message_with_one_token_for_every_process(sandbox, wx_app, openid, processes):
    tid = template(wx_app, "bill_created")["template_id"]
    for _ in range(3):
        grant_wechat(sandbox.url, wx_app["appid"], openid, [tid])
    config = _wechat_config(sandbox.url, wx_app)
    first, second = (rt.messenger(config) for rt in processes)

    sent = first.send(openid, tid, PAGE, BILL_DATA)
    assert sent.msg_id and second.send(openid, tid, PAGE, BILL_DATA).msg_id
    assert processes[1].messenger(config).send(openid, tid, PAGE, BILL_DATA).msg_id
    delivered = messages(sandbox.url, channel="wechat", user=openid)
    assert [m["page"] for m in delivered] == [PAGE] * 3 and delivered[0]["data"] == BILL_DATA
    assert delivered[0]["msgid"] == sent.msg_id
    assert tokens_issued(sandbox.url, wx_app["appid"]) == 1


def test_an_expired_token_is_refreshed_once_however_many_processes_meet_it(sandbox, wx_app, openid, settings):
    tid = template(wx_app, "bill_created")["template_id"]
    config = _wechat_config(sandbox.url, wx_app)
    runtimes = [Runtime(settings) for _ in range(6)]
    try:
        for _ in range(len(runtimes) + 1):
            grant_wechat(sandbox.url, wx_app["appid"], openid, [tid])
        runtimes[0].messenger(config).send(openid, tid, PAGE, BILL_DATA)
        assert tokens_issued(sandbox.url, wx_app["appid"]) == 1
        expired = requests.post(f"{sandbox.url}/sandbox/wechat/tokens/expire", json={"appid": wx_app["appid"]},
                                timeout=10)
        assert expired.json()["expired"] == 1

        start, errors = threading.Barrier(len(runtimes)), []

        def push(rt):
            start.wait()
            try:
                rt.messenger(config).send(openid, tid, PAGE, BILL_DATA)
            except Exception as exc:  # noqa: BLE001  (collected and asserted on below)
                errors.append(exc)

        threads = [threading.Thread(target=push, args=(rt,)) for rt in runtimes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert errors == []
        assert len(messages(sandbox.url, channel="wechat", user=openid)) == len(runtimes) + 1
        assert tokens_issued(sandbox.url, wx_app["appid"]) == 2
    finally:
        for rt in runtimes:
            rt.close()


def test_no_subscription_left_is_a_refusal_that_says_so(sandbox, wx_app, openid, rt):
    tid = template(wx_app, "bill_created")["template_id"]
    with pytest.raises(MessageRefused) as refused:
        rt.messenger(_wechat_config(sandbox.url, wx_app)).send(openid, tid, PAGE, BILL_DATA)
    assert refused.value.code == "43101" and refused.value.no_subscription


@pytest.mark.parametrize(("change", "code"), [
    ({"template_id": "not-a-template"}, "40037"),
    ({"page": "pages/elsewhere/index"}, "41030"),
    ({"data": {**BILL_DATA, "amount2": {"value": "forty-five"}}}, "47003"),
    ({"to": "o-nobody"}, "40003"),
])
def test_what_wechat_refuses_for_good_is_refused_without_spending_the_subscription(sandbox, wx_app, openid, rt, change,
                                                                                    code):
    tid = template(wx_app, "bill_created")["template_id"]
    grant_wechat(sandbox.url, wx_app["appid"], openid, [tid])
    request = {"to": openid, "template_id": tid, "page": PAGE, "data": BILL_DATA, **change}
    messenger = rt.messenger(_wechat_config(sandbox.url, wx_app))
    with pytest.raises(MessageRefused) as refused:
        messenger.send(**request)
    assert refused.value.code == code and not refused.value.no_subscription
    assert messenger.send(openid, tid, PAGE, BILL_DATA).msg_id


def test_an_unreachable_channel_or_a_wrong_secret_is_retried_later(sandbox, wx_app, openid, rt):
    tid = template(wx_app, "bill_created")["template_id"]
    unreachable = _wechat_config(sandbox.url, wx_app, login_base_url="http://127.0.0.1:1/wxlogin/",
                                 app_id=f"wx{secrets.token_hex(8)}")
    with pytest.raises(MessengerUnavailable):
        rt.messenger(unreachable).send(openid, tid, PAGE, BILL_DATA)
    wrong_secret = _wechat_config(sandbox.url, wx_app, app_secret="0" * 32)
    with pytest.raises(MessengerUnavailable) as refused:
        rt.messenger(wrong_secret).send(openid, tid, PAGE, BILL_DATA)
    assert "40125" in str(refused.value)
    assert tokens_issued(sandbox.url, wx_app["appid"]) == 0


def test_alipay_template_messages_reach_a_subscribed_user(sandbox, rt):
    app = _new_app(sandbox, "alipay")
    user_id = f"2088{secrets.randbelow(10**12):012d}"
    tid = template(app, "bill_created")["template_id"]
    granted = grant_alipay(sandbox.url, app["app_id"], user_id, [tid])
    messenger = rt.messenger(_alipay_config(sandbox.url, app))

    assert messenger.send(user_id, tid, PAGE, ALIPAY_BILL_DATA).msg_id is None
    with pytest.raises(MessageRefused) as refused:
        messenger.send(user_id, tid, PAGE, ALIPAY_BILL_DATA)
    assert refused.value.code == "REQUEST_IS_OUT_OF_SUBSCRIBE_LIMIT" and refused.value.no_subscription
    grant_alipay(sandbox.url, app["app_id"], user_id, [tid])
    # The per-app open_id names the same user.
    assert messenger.send(granted["open_id"], tid, PAGE, ALIPAY_BILL_DATA).msg_id is None
    delivered = messages(sandbox.url, channel="alipay", user=user_id)
    assert len(delivered) == 2 and delivered[0]["data"] == ALIPAY_BILL_DATA and delivered[0]["page"] == PAGE
    with pytest.raises(MessageRefused) as refused:
        messenger.send(user_id, "not-a-template", PAGE, ALIPAY_BILL_DATA)
    assert refused.value.code == "USER_TEMPLATE_ILLEGAL" and not refused.value.no_subscription
