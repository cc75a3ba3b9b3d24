"""A channel app's message templates in the console (setup/channel-apps/<id>/message-templates, reached by URL):
an admin sets the demo clinic's WeChat bill template, saves, reloads and sees it; a keyword the API does not take
shows the API's own message; an operator opens it too; staff are shown the not-allowed page."""
from __future__ import annotations

import re
import secrets

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.db.models import Clinic, MerchantAccount
from tests.browser.helpers import LIVE_STREAM, AdminApi, answer_box, choose, screenshot, success_toast


def _demo_wechat_app(rt) -> int:
    with rt.db.session() as session:
        return session.scalar(select(MerchantAccount.id).join(Clinic, Clinic.id == MerchantAccount.clinic_id)
                              .where(Clinic.code == "demo", MerchantAccount.channel == "wechat",
                                     MerchantAccount.active.is_(True)).order_by(MerchantAccount.id))


def _screen(app_id: int) -> str:
    return f"setup/channel-apps/{app_id}/message-templates"


@pytest.fixture()
def demo_templates(platform, rt, make_user):
    """(app row id, an admin of demo's AdminApi, its credentials); the app's templates are put back afterwards, as
    the other tests (the pushes of bills) expect them."""
    app_id = _demo_wechat_app(rt)
    username, password = make_user("admin")
    api = AdminApi(platform.url, username, password)
    path = f"/channel-apps/{app_id}/message-templates"
    before = [{k: t[k] for k in ("template_id", "purpose", "fields", "page")} for t in api.get(path)]
    yield app_id, api, (username, password)
    resp = api.http.put(api.url + path, json=before, timeout=30)
    assert resp.status_code == 200, resp.text


def _pushed(page, purpose: str) -> bool:
    """Whether the purpose's switch is on (the el-switch's own checkbox)."""
    return page.get_by_test_id(f"purpose-{purpose}-enabled").locator("input").is_checked()


def _bill_template(api: AdminApi, app_id: int) -> dict | None:
    listed = api.get(f"/channel-apps/{app_id}/message-templates")
    return next((t for t in listed if t["purpose"] == "bill_created"), None)


def test_an_admin_sets_the_bill_template_saves_and_sees_it_after_a_reload(console, demo_templates):
    app_id, api, (username, password) = demo_templates
    template_id = f"TPL-UI-{secrets.token_hex(4)}"

    page = console.sign_in(username, password, _screen(app_id))
    bill = page.get_by_test_id("purpose-bill_created")
    bill.get_by_test_id("purpose-bill_created-template-id").wait_for()
    assert "诊所 demo" in page.get_by_test_id("message-templates-app").inner_text()
    assert "微信支付" in page.get_by_test_id("message-templates-app").inner_text()
    screenshot(page, "message-templates-admin")

    bill.get_by_test_id("purpose-bill_created-template-id").fill(template_id)
    bill.get_by_test_id("purpose-bill_created-add").click()
    added = bill.locator("tr.el-table__row").last
    added.get_by_test_id("keyword").fill("character_string9")
    choose(page, added.get_by_test_id("fact"), "就诊卡号（card_no）")
    page.get_by_test_id("message-templates-save").click()
    confirmation = answer_box(page, "保存")
    assert f"待缴费通知：模板 {template_id}" in confirmation and "character_string9=就诊卡号" in confirmation
    success_toast(page, "已保存")

    saved = _bill_template(api, app_id)
    assert saved["template_id"] == template_id and saved["fields"]["character_string9"] == "card_no"
    assert saved["updated_by"] == username

    page.reload()
    expect(page.get_by_test_id("purpose-bill_created-template-id")).to_have_value(template_id)
    # In the template's order (the number each keyword ends with), as the channel's console lists them.
    keywords = [field.input_value() for field in bill.get_by_test_id("keyword").all()]
    assert keywords == sorted(saved["fields"], key=lambda k: (int(re.search(r"[0-9]+$", k).group()), k))
    assert keywords[-1] == "character_string9"


def test_a_keyword_the_api_does_not_take_shows_its_message_and_changes_nothing(console, demo_templates):
    app_id, api, (username, password) = demo_templates
    before = _bill_template(api, app_id)
    console.errors.allow_http_status(422)

    page = console.sign_in(username, password, _screen(app_id))
    bill = page.get_by_test_id("purpose-bill_created")
    bill.get_by_test_id("purpose-bill_created-template-id").wait_for()
    if not _pushed(page, "bill_created"):
        page.get_by_test_id("purpose-bill_created-enabled").click()
        bill.get_by_test_id("purpose-bill_created-template-id").fill("TPL-UI-BAD")
    bill.get_by_test_id("purpose-bill_created-add").click()
    added = bill.locator("tr.el-table__row").last
    added.get_by_test_id("keyword").fill("Bad-Key")
    choose(page, added.get_by_test_id("fact"), "账单号（bill_id）")
    page.get_by_test_id("message-templates-save").click()
    answer_box(page, "保存")

    refusal = answer_box(page, "知道了")
    assert "'Bad-Key' is not a template keyword" in refusal and "bill_created" in refusal
    assert _bill_template(api, app_id) == before


def test_saving_no_template_asks_to_turn_pushing_off(console, demo_templates):
    app_id, api, (username, password) = demo_templates

    page = console.sign_in(username, password, _screen(app_id))
    page.get_by_test_id("purpose-bill_created-template-id").wait_for()
    for purpose in ("bill_created", "payment_succeeded", "refund_succeeded"):
        if _pushed(page, purpose):
            page.get_by_test_id(f"purpose-{purpose}-enabled").click()
    page.get_by_test_id("message-templates-save").click()
    assert "关闭此应用的消息推送" in answer_box(page, "关闭推送")
    success_toast(page, "已关闭此应用的消息推送")
    page.get_by_test_id("message-templates-none").wait_for()
    assert api.get(f"/channel-apps/{app_id}/message-templates") == []


def test_an_operator_opens_the_screen_and_staff_are_not_allowed(console, rt, make_user):
    app_id = _demo_wechat_app(rt)
    # The shell's live-event stream admits the clinic roles only: an operator's is refused (403), which the shell
    # takes as no stream. That refusal, and only that one, is expected here.
    console.errors.allow_http_status(403)
    page = console.page()
    refused: list[str] = []
    page.on("response", lambda response: refused.append(response.url) if response.status == 403 else None)
    username, password = make_user("operator", ())
    page.goto(console.url(_screen(app_id)))
    page.get_by_test_id("login-username").fill(username)
    page.get_by_test_id("login-password").fill(password)
    page.get_by_test_id("login-submit").click()
    page.get_by_test_id("purpose-bill_created").wait_for()
    assert "诊所 demo" in page.get_by_test_id("message-templates-app").inner_text()
    assert page.get_by_test_id("forbidden").count() == 0
    assert all(LIVE_STREAM in url for url in refused), refused
    screenshot(page, "message-templates-operator")

    staff = console.sign_in(*make_user("staff"), _screen(app_id))
    staff.get_by_test_id("forbidden").wait_for()
    assert "无权访问" in staff.inner_text("body")
    assert staff.get_by_test_id("message-templates").count() == 0
