"""Paying through the H5 pages on both channels: the sandbox's payment sheet stands in for wx.requestPayment and
my.tradePay, the sandbox channel notifies the platform, and the HIS ends up with the money where it belongs."""
from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest

from tests.browser.h5.helpers import (
    SHANGHAI,
    MpUser,
    his_balance,
    his_bill,
    his_records_of,
    open_his_bill,
    order_no_in,
    pay_on_sheet,
    screenshot,
    yuan,
)

CHANNELS = ["wechat", "alipay"]


@pytest.mark.parametrize("channel", CHANNELS)
def test_top_up_a_card(phone, sandbox, platform, channel):
    user = MpUser(platform.url, sandbox, channel)
    _patient, card = user.patient_with_card(balance_fen=1000)
    page = phone.open(channel, user.user_id, f"cards/{card['card_no']}")
    page.get_by_test_id("card-balance").filter(has_text="10.00").wait_for()

    page.get_by_test_id("go-topup").click()
    page.get_by_test_id("topup-preset-20000").click()
    if channel == "wechat":
        screenshot(page, "05-top-up")
    page.get_by_test_id("topup-pay").click()
    pay_on_sheet(page, "¥200.00", shot=f"06-pay-sheet-{channel}")

    page.wait_for_url(re.compile(rf"/h5/cards/{card['card_no']}$"))
    page.get_by_test_id("card-balance").filter(has_text="210.00").wait_for()
    assert his_balance(sandbox, card["card_no"]) == 21000
    orders = user.call("GET", "/orders")
    assert [(o["type"], o["status"], o["amount_fen"], o["channel"]) for o in orders] == \
        [("topup", "completed", 20000, channel)]
    assert [r["kind"] for r in his_records_of(sandbox, orders[0]["order_no"])] == ["recharge"]


@pytest.mark.parametrize("channel", CHANNELS)
def test_pay_a_visit_bill_that_arrives_while_the_card_page_is_open(phone, sandbox, platform, channel):
    user = MpUser(platform.url, sandbox, channel)
    _patient, card = user.patient_with_card(balance_fen=500)
    page = phone.open(channel, user.user_id, f"cards/{card['card_no']}")
    page.get_by_test_id("no-bills").wait_for()

    # The doctor opens a bill at the HIS; the card page shows it without a reload.
    bill = open_his_bill(sandbox, card["card_no"], "血常规", 3580)
    row = page.locator(f"[data-bill-id='{bill['bill_id']}']")
    row.wait_for(timeout=15_000)
    assert "35.80" in row.inner_text()
    if channel == "wechat":
        screenshot(page, "04-card-with-live-bill", keep_toast=True)
    page.get_by_test_id("pay-bills").click()
    pay_on_sheet(page, "¥35.80")

    row.wait_for(state="detached", timeout=30_000)
    page.get_by_test_id("no-bills").wait_for()
    assert his_bill(sandbox, bill["bill_id"])["status"] == "paid"
    assert his_balance(sandbox, card["card_no"]) == 500  # paid by the channel, not from the card
    orders = user.call("GET", "/orders")
    assert [(o["type"], o["status"], o["bill_ids"]) for o in orders] == [("visit_bill", "completed", [bill["bill_id"]])]
    assert [r["kind"] for r in his_records_of(sandbox, orders[0]["order_no"])] == ["bill_settlement"]


def _tomorrow() -> str:
    return (datetime.now(SHANGHAI) + timedelta(days=1)).date().isoformat()


def test_book_an_item_and_a_slot_pay_and_cancel_with_a_refund(phone, sandbox, platform):
    channel = "alipay"
    user = MpUser(platform.url, sandbox, channel)
    patient = user.call("POST", "/patients", {"name": "周预约", "phone": "13712345678", "relation": "self"})
    item = next(i for i in user.call("GET", "/items") if i["code"] == "CHECK01")
    page = phone.open(channel, user.user_id, "book")
    page.locator("[data-item-code='CHECK01']").click()

    page.get_by_test_id("dates").get_by_role("tab", name=re.compile("明天")).click()
    slot = page.get_by_test_id("slot").filter(has_text="余").first
    slot.wait_for()
    slot_id = int(slot.get_attribute("data-slot-id"))
    remaining_before = next(s for s in user.call("GET", f"/items/{item['id']}/slots?date={_tomorrow()}")
                            if s["id"] == slot_id)["remaining"]
    slot.click()
    page.get_by_test_id("book-patient").filter(has_text=patient["name"]).click()
    screenshot(page, "07-book-slot")
    page.get_by_test_id("book-pay").click()
    pay_on_sheet(page, f"¥{yuan(item['price_fen'])}")

    page.wait_for_url(re.compile(r"/h5/orders/"))
    order_no = order_no_in(page.url)
    page.get_by_test_id("order-status").filter(has_text="已支付").wait_for()
    screenshot(page, "08-order-paid")
    order = user.order(order_no)
    assert (order["status"], order["slot"]["id"], order["patient"]["id"], order["amount_fen"]) == \
        ("paid", slot_id, patient["id"], item["price_fen"])
    assert [(p["channel"], p["status"]) for p in order["payments"]] == [("alipay", "paid")]
    remaining_after = next(s for s in user.call("GET", f"/items/{item['id']}/slots?date={_tomorrow()}")
                           if s["id"] == slot_id)["remaining"]
    assert remaining_after == remaining_before - 1

    # Cancelling a paid booking refunds it in full along its channel.
    page.get_by_test_id("order-cancel").click()
    page.locator(".van-dialog").get_by_role("button", name="确认").click()
    page.get_by_test_id("order-status").filter(has_text=re.compile("已取消|退款中|已退款")).wait_for()
    for _ in range(60):
        order = user.order(order_no)
        if order["status"] == "refunded":
            break
        page.wait_for_timeout(500)
    assert (order["status"], order["refunded_fen"]) == ("refunded", item["price_fen"])
    page.get_by_test_id("order-refresh").click()
    page.get_by_test_id("order-refund").filter(has_text=yuan(item["price_fen"])).wait_for()
    screenshot(page, "09-order-cancelled-refunded")

    page.goto(phone.url("orders", channel))
    listed = page.locator(f"[data-order-no='{order_no}']")
    listed.wait_for()
    assert "已退款" in listed.inner_text()
    screenshot(page, "10-orders")


def test_refund_a_card_balance_after_topping_up(phone, sandbox, platform):
    channel = "wechat"
    user = MpUser(platform.url, sandbox, channel)
    _patient, card = user.patient_with_card(balance_fen=0)
    page = phone.open(channel, user.user_id, f"cards/{card['card_no']}/topup")
    page.get_by_test_id("topup-custom").locator("input").fill("88.50")
    page.get_by_test_id("topup-pay").click()
    pay_on_sheet(page, "¥88.50")
    page.wait_for_url(re.compile(rf"/h5/cards/{card['card_no']}$"))
    page.get_by_test_id("card-balance").filter(has_text="88.50").wait_for()
    topup_no = user.call("GET", "/orders")[0]["order_no"]

    page.get_by_test_id("go-refund").click()
    page.get_by_test_id("refund-balance").filter(has_text="88.50").wait_for()
    page.get_by_test_id("refund-amount").locator("input").fill("30")
    page.get_by_test_id("refund-submit").click()
    page.locator(".van-dialog").get_by_role("button", name="确认").click()

    request = page.get_by_test_id("refund-request")
    request.wait_for()
    part = page.get_by_test_id("refund-part")
    part.first.wait_for()
    assert part.count() == 1
    assert "30.00" in part.first.inner_text() and topup_no in part.first.inner_text()
    refund_no = page.get_by_test_id("refund-request-no").locator(".van-cell__label").inner_text().strip()
    page.get_by_test_id("refund-status").filter(has_text="已退回").wait_for(timeout=30_000)
    screenshot(page, "11-card-refund")

    described = user.call("GET", f"/refunds/{refund_no}")
    assert (described["amount_fen"], described["status"]) == (3000, "succeeded")
    parts = [(p["order_no"], p["amount_fen"], p["status"]) for p in described["parts"]]
    assert parts == [(topup_no, 3000, "succeeded")]
    assert his_balance(sandbox, card["card_no"]) == 8850 - 3000
