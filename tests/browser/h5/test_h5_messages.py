"""Bills pushed to the patient, through the H5 pages on both channels: the card page asks to subscribe (the tap on
订阅, then the channel's dialog, which the sandbox stands in for); a bill the doctor opens at the HIS is announced
to the platform, pushed to the patient's WeChat or Alipay as a subscribe / template message, listed on the card
page and in 消息, whose badge counts it."""
from __future__ import annotations

import re
import time

import pytest
import requests

from tests.browser.h5.helpers import MpUser, open_his_bill, screenshot

CHANNELS = ["wechat", "alipay"]


def delivered(sandbox, channel: str, user_id: str, bill_title: str, timeout: float = 20.0) -> dict:
    """The message the channel delivered to the user for that bill (the sandbox's record of deliveries)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listed = requests.get(f"{sandbox.url}/sandbox/messages", params={"channel": channel, "user": user_id},
                              timeout=10).json()
        found = [m for m in listed if bill_title in {value["value"] for value in m["data"].values()}]
        if found:
            return found[-1]
        time.sleep(0.3)
    raise AssertionError(f"no {channel} message about {bill_title} reached {user_id} within {timeout}s")


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_bill_opened_at_the_his_reaches_the_subscribed_patient_and_the_card_page(phone, sandbox, platform, channel):
    user = MpUser(platform.url, sandbox, channel)
    _patient, card = user.patient_with_card()
    page = phone.open(channel, user.user_id, f"cards/{card['card_no']}")
    page.get_by_test_id("no-bills").wait_for()
    assert "没有新消息" in page.get_by_test_id("go-messages").inner_text()

    page.get_by_test_id("reminder-off").get_by_test_id("subscribe-bills").click()
    dialog = page.locator(".subscribe-dialog")
    assert "待缴费提醒" in dialog.inner_text()
    dialog.get_by_role("button", name="允许").click()
    page.get_by_test_id("reminder-on").filter(has_text="还可接收 1 条").wait_for()
    [bill_template] = [s for s in user.call("GET", "/subscriptions") if s["purpose"] == "bill_created"]
    assert bill_template["allowance"] == 1

    title = f"胸部X线检查 {channel}"
    bill = open_his_bill(sandbox, card["card_no"], title, 12000, kind="exam")
    message = delivered(sandbox, channel, user.user_id, title)
    assert message["purpose"] == "bill_created" and message["page"] == f"pages/bills/index?card_no={card['card_no']}"
    amounts = {value["value"] for value in message["data"].values()}
    assert ("120.00" if channel == "wechat" else "120.00元") in amounts

    page.locator(f"[data-bill-id='{bill['bill_id']}']").wait_for(timeout=15_000)
    page.get_by_test_id("unread-count").filter(has_text="1").wait_for(timeout=10_000)
    page.get_by_test_id("reminder-off").wait_for()  # the one message it allowed is spent: ask again
    if channel == "wechat":
        screenshot(page, "14-card-bill-pushed")

    page.get_by_test_id("go-messages").click()
    item = page.locator(f"[data-testid='message'][data-bill-id='{bill['bill_id']}']")
    item.wait_for()
    text = item.inner_text()
    assert f"待缴费：{title}" in text and "¥120.00" in text and "已推送" in text and "新" in text
    if channel == "wechat":
        screenshot(page, "15-messages")
    item.click()
    page.wait_for_url(re.compile(rf"/h5/cards/{card['card_no']}$"))
    page.get_by_test_id("go-messages").filter(has_text="没有新消息").wait_for()


def test_without_a_subscription_the_bill_is_a_message_but_nothing_is_pushed(phone, sandbox, platform):
    user = MpUser(platform.url, sandbox, "wechat")
    _patient, card = user.patient_with_card()
    page = phone.open("wechat", user.user_id, f"cards/{card['card_no']}")
    page.get_by_test_id("reminder-off").get_by_test_id("subscribe-bills").click()
    page.locator(".subscribe-dialog").get_by_role("button", name="拒绝").click()
    page.get_by_test_id("reminder-off").wait_for()

    bill = open_his_bill(sandbox, card["card_no"], "尿常规", 1500)
    page.locator(f"[data-bill-id='{bill['bill_id']}']").wait_for(timeout=15_000)
    page.get_by_test_id("unread-count").filter(has_text="1").wait_for(timeout=10_000)
    [message] = user.call("GET", "/messages")["items"]
    assert message["bill_id"] == bill["bill_id"] and message["pushed"] is None
    # The channel recorded the refusal, and delivered nothing to this user.
    standing = requests.get(f"{sandbox.url}/sandbox/wechat/subscriptions", timeout=10, params={
        "appid": next(m for m in sandbox.merchants()["wechat"] if m["clinic_code"] == "demo")["appid"],
        "openid": user.user_id}).json()
    assert [s["last_result"] for s in standing["subscriptions"]] == ["reject"]
    assert requests.get(f"{sandbox.url}/sandbox/messages", params={"user": user.user_id}, timeout=10).json() == []
