"""The orders screens: a payment sheet closed without paying, "我已付款但未显示" when the money went through
outside the page, the receipt when the platform offers one, and the account screen (channel switch, new user)."""
from __future__ import annotations

import re

import requests

from tests.browser.h5.helpers import MpUser, pay_on_sheet, screenshot

INQUIRY = "/api/mp/v1/orders/{order_no}/inquiry"
RECEIPT = "/api/mp/v1/orders/{order_no}/receipt"


def _published(platform_url: str) -> set[str]:
    return set(requests.get(f"{platform_url}/openapi.json", timeout=30).json()["paths"])


def test_i_paid_but_it_does_not_show(phone, sandbox, platform):
    user = MpUser(platform.url, sandbox, "wechat")
    _patient, card = user.patient_with_card(balance_fen=0)
    order = user.call("POST", "/orders", {"type": "topup", "card_no": card["card_no"], "amount_fen": 1234,
                                          "channel": "wechat"})
    order_no = order["order_no"]
    page = phone.open("wechat", user.user_id, f"orders/{order_no}")
    status = page.get_by_test_id("order-status")
    status.filter(has_text="待支付").wait_for()

    # The patient opens the payment sheet and closes it: nothing is paid.
    page.get_by_test_id("order-pay").click()
    page.get_by_test_id("pay-sheet").wait_for()
    assert page.get_by_test_id("pay-amount").inner_text() == "¥12.34"
    page.get_by_test_id("pay-cancel").click()
    page.get_by_test_id("pay-sheet").wait_for(state="hidden")
    assert user.order(order_no)["status"] == "created"
    screenshot(page, "12-order-unpaid")

    # The money goes through in the WeChat app while the page does not notice; the patient asks.
    prepay_id = user.call("POST", f"/orders/{order_no}/pay")["pay_params"]["package"].removeprefix("prepay_id=")
    paid = requests.post(f"{sandbox.url}/sandbox/wechat/pay", json={"prepay_id": prepay_id, "outcome": "success"},
                         timeout=30)
    assert paid.status_code == 200, paid.text
    asked: list[str] = []
    page.on("request", lambda r: asked.append(f"{r.method} {r.url}") if "/api/mp/v1/orders/" in r.url else None)
    for _ in range(30):
        page.get_by_test_id("order-inquiry").click()
        page.wait_for_load_state("networkidle")
        if status.inner_text() != "待支付":
            break
        page.wait_for_timeout(700)
    status.filter(has_text=re.compile("已支付|已完成")).wait_for()

    # The page asks the channel through the platform when the platform offers that, else reads the order again.
    published = _published(platform.url)
    inquiry_path = INQUIRY.format(order_no=order_no)
    if "/api/mp/v1/orders/{order_no}/inquiry" in published:
        assert f"POST {platform.url}{inquiry_path}" in asked
    else:
        assert asked and all(call == f"GET {platform.url}/api/mp/v1/orders/{order_no}" for call in asked), asked

    for _ in range(40):
        if user.order(order_no)["status"] == "completed":
            break
        page.wait_for_timeout(500)
    page.get_by_test_id("order-refresh").click()
    status.filter(has_text="已完成").wait_for()
    receipt = page.get_by_test_id("order-receipt")
    if "/api/mp/v1/orders/{order_no}/receipt" in published:
        receipt.click()
        link = page.get_by_test_id("order-receipt-link")
        with page.expect_download() as download:
            link.click()
        assert open(download.value.path(), "rb").read(5) == b"%PDF-"
    else:
        assert receipt.count() == 0


def test_the_account_screen_switches_channel_and_user(phone, sandbox, platform):
    page = phone.open("wechat", None, "me")
    openid = page.get_by_test_id("me-openid")
    openid.locator(".van-cell__label").wait_for()
    first = openid.locator(".van-cell__label").inner_text()
    assert re.fullmatch(r"o[A-Za-z0-9_-]{27}", first)
    assert "沙箱模拟支付" in page.get_by_test_id("me-bridge").inner_text()
    screenshot(page, "13-me")

    page.get_by_test_id("channel-alipay").click()
    page.get_by_test_id("channel-badge").filter(has_text="支付宝小程序").wait_for()
    page.get_by_test_id("me-openid").locator(".van-cell__label").filter(has_text=re.compile(r"^2088\d{12}$")).wait_for()

    # Back on WeChat the same browser is the same user; "switch user" makes a new one.
    page.get_by_test_id("channel-wechat").click()
    page.get_by_test_id("me-openid").locator(".van-cell__label").filter(has_text=first).wait_for()
    page.reload()
    page.get_by_test_id("me-openid").locator(".van-cell__label").filter(has_text=first).wait_for()
    page.get_by_test_id("switch-user").click()
    page.locator(".van-dialog").get_by_role("button", name="确认").click()
    page.get_by_test_id("me-openid").locator(".van-cell__label").filter(has_text=re.compile(r"^o")).wait_for()
    page.wait_for_function(f"() => !document.body.innerText.includes({first!r})")
    second = page.get_by_test_id("me-openid").locator(".van-cell__label").inner_text()
    assert second != first and re.fullmatch(r"o[A-Za-z0-9_-]{27}", second)
    assert MpUser(platform.url, sandbox, "wechat", second).id != MpUser(platform.url, sandbox, "wechat", first).id


def test_a_payment_the_channel_refuses_leaves_the_order_unpaid(phone, sandbox, platform):
    user = MpUser(platform.url, sandbox, "alipay")
    _patient, card = user.patient_with_card(balance_fen=0)
    page = phone.open("alipay", user.user_id, f"cards/{card['card_no']}/topup")
    page.get_by_test_id("topup-preset-5000").click()
    page.get_by_test_id("topup-pay").click()
    page.get_by_test_id("pay-sheet").wait_for()
    page.get_by_test_id("pay-fail").click()
    page.locator(".van-toast", has_text="支付未成功").wait_for()
    orders = user.call("GET", "/orders")
    assert [(o["type"], o["status"]) for o in orders] == [("topup", "created")]
    # And paying it again from the order works.
    page.goto(phone.url(f"orders/{orders[0]['order_no']}", "alipay"))
    page.get_by_test_id("order-pay").click()
    pay_on_sheet(page, "¥50.00")
    page.get_by_test_id("order-status").filter(has_text="已完成").wait_for(timeout=30_000)
    assert user.order(orders[0]["order_no"])["status"] == "completed"
