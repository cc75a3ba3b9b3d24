"""A patient adds a family member and binds the HIS card with the SMS step, all through the H5 pages."""
from __future__ import annotations

import re

from tests.api.card_helpers import his_card, texts
from tests.browser.h5.helpers import MpUser, new_user_id, screenshot


def test_add_a_family_member_and_bind_the_card_with_the_texted_code(phone, sandbox, platform):
    card = his_card(sandbox, name="林小雨", balance_fen=2345)
    user_id = new_user_id("wechat")
    page = phone.open("wechat", user_id)
    page.get_by_test_id("no-patients").wait_for()
    screenshot(page, "01-home-new-user")

    page.get_by_test_id("add-patient").first.click()
    page.get_by_test_id("patient-name").locator("input").fill(card["name"])
    page.get_by_test_id("patient-phone").locator("input").fill(card["phone"])
    screenshot(page, "02-add-family-member")
    page.get_by_test_id("patient-save").click()
    page.get_by_test_id("bind-card").click()

    page.get_by_test_id("bind-card-no").locator("input").fill(card["card_no"])
    texts_before = len(texts(sandbox, card["phone"]))
    page.get_by_test_id("bind-ask").click()
    masked = f"{card['phone'][:3]}****{card['phone'][-4:]}"
    sent_to = page.get_by_test_id("bind-sent-to")
    sent_to.wait_for()
    assert masked in sent_to.inner_text() and card["phone"] not in sent_to.inner_text()

    # The sandbox inbox stands in for the patient's phone: the text arrives there, and the patient types its code.
    inbox_text = page.get_by_test_id("sandbox-text").first
    inbox_text.wait_for()
    delivered = texts(sandbox, card["phone"])[texts_before:]
    assert len(delivered) == 1
    shown_code = re.search(r"(?<!\d)\d{6}(?!\d)", inbox_text.inner_text()).group()
    assert shown_code in delivered[0]["text"]
    page.get_by_test_id("bind-code").locator("input").fill(shown_code)
    screenshot(page, "03-bind-card-sms-code")
    page.get_by_test_id("bind-confirm").click()

    page.wait_for_url(re.compile(rf"/h5/cards/{card['card_no']}"))
    page.get_by_test_id("card-balance").filter(has_text="23.45").wait_for()
    page.get_by_test_id("no-bills").wait_for()

    page.goto(phone.url("", "wechat"))
    page.get_by_test_id(f"card-{card['card_no']}").wait_for()
    screenshot(page, "00-home-family")

    mine = MpUser(platform.url, sandbox, "wechat", user_id).call("GET", "/patients")
    assert [(p["name"], [(c["card_no"], c["verified"]) for c in p["cards"]]) for p in mine] == \
        [(card["name"], [(card["card_no"], True)])]


def test_a_wrong_code_is_refused_with_the_tries_left(phone, sandbox, platform):
    user = MpUser(platform.url, sandbox, "alipay")
    card = his_card(sandbox)
    patient = user.call("POST", "/patients", {"name": card["name"], "phone": card["phone"]})
    page = phone.open("alipay", user.user_id, f"patients/{patient['id']}/bind?card={card['card_no']}")
    phone.errors.allow_http_status(422)
    page.get_by_test_id("bind-ask").click()
    page.get_by_test_id("bind-sent-to").wait_for()
    page.get_by_test_id("sandbox-text").first.wait_for()
    real = re.search(r"(?<!\d)\d{6}(?!\d)", page.get_by_test_id("sandbox-text").first.inner_text()).group()
    wrong = f"{(int(real) + 1) % 1_000_000:06d}"
    page.get_by_test_id("bind-code").locator("input").fill(wrong)
    page.get_by_test_id("bind-confirm").click()
    page.locator(".van-toast", has_text="验证码不正确（还可尝试 4 次）").wait_for()
    assert "/bind" in page.url
    cards = user.call("GET", "/patients")[0]["cards"]
    assert cards == [] or all(not c["verified"] for c in cards)
