"""Who sees what, and the session: a staff user has no finance or set-up screens and a direct URL to one shows
"not allowed" (without calling the API); an admin lands on the clinic's items; an expired or revoked session
goes back to the sign-in page and returns to the page the user was on; signing out ends the session; a user changes
their own password and carries on in the same tab."""
from __future__ import annotations

import re

import requests
from sqlalchemy import select

from app.db.models import Clinic, Item
from tests.browser.helpers import AdminApi, answer_box, open_menu, row, screenshot, success_toast

# What the signed-in shell asks on every page, whatever the screen: its live-event stream and the desk's waiting count.
SHELL_CALLS = ("/api/admin/v1/events/stream", "/api/admin/v1/bookings?status=paid&limit=1&")


def test_staff_see_no_finance_screens_and_a_direct_url_to_one_is_not_allowed(console, make_user):
    username, password = make_user("staff")
    page = console.sign_in(username, password)
    menu = page.get_by_test_id("menu").inner_text()
    assert "待确认预约" in menu and not any(title in menu for title in ("收入概览", "对账", "结算", "审计日志"))

    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url) if "/api/admin/" in request.url
            and not any(call in request.url for call in SHELL_CALLS) else None)
    for path in ("finance/dashboard", "finance/reconciliation/1", "finance/statements", "setup/audit"):
        asked.clear()
        page.goto(console.url(path))
        page.get_by_test_id("forbidden").wait_for()
        assert "无权访问" in page.inner_text("body") and "not allowed" in page.inner_text("body")
        assert page.url.endswith(path)
        assert asked == [], f"{path} called the API: {asked}"
    page.get_by_text("回到首页").click()
    page.wait_for_url("**/admin/bookings/pending")


def test_an_admin_lands_on_the_clinics_items_and_sets_an_items_inventory(console, platform, rt, make_user):
    with rt.db.session() as session:
        item = session.scalar(select(Item).join(Clinic, Clinic.id == Item.clinic_id).where(Clinic.code == "demo")
                              .order_by(Item.id))
        item_id, item_code = item.id, item.code
    username, password = make_user("admin")
    api = AdminApi(platform.url, username, password)
    before = {level["channel"]: level for level in api.get(f"/items/{item_id}/inventory")}

    page = console.sign_in(username, password)

    page.wait_for_url("**/admin/setup/items")
    row(page, "items-table", item_code).wait_for()
    menu = page.get_by_test_id("menu").inner_text()
    assert all(title in menu for title in ("待确认预约", "收入概览", "项目与套餐", "用户管理", "结算类型", "渠道库存",
                                           "审计日志"))
    assert "平台收款应用" not in menu
    screenshot(page, "admin-landing")
    open_menu(page, "结算类型")
    row(page, "settlement-types-table", "微信支付").wait_for()
    page.get_by_test_id("settlement-types-save").click()  # unchanged: the demo clinic keeps its settings
    assert "微信支付：计入现金流、计入营收" in answer_box(page, "保存")
    success_toast(page, "已保存")

    open_menu(page, "渠道库存")
    page.get_by_test_id("inventory-item").locator("input").fill(str(item_id))
    page.get_by_test_id("inventory-load").click()
    wechat = row(page, "inventory-table", "微信支付")
    wechat.locator("input").fill(str(before["wechat"]["quantity"] + 5))
    page.get_by_test_id("inventory-save").click()
    assert f"项目 {item_id}：微信支付 {before['wechat']['quantity'] + 5}" in answer_box(page, "保存")
    success_toast(page, "已保存")
    after = {level["channel"]: level["quantity"] for level in api.get(f"/items/{item_id}/inventory")}
    assert after == {"wechat": before["wechat"]["quantity"] + 5, "alipay": before["alipay"]["quantity"]}

    open_menu(page, "审计日志")
    page.get_by_test_id("audit-table").locator("tr.el-table__row").first.wait_for()
    row(page, "audit-table", "inventory").wait_for()
    assert username in row(page, "audit-table", "inventory").inner_text()


def test_an_ended_session_returns_to_sign_in_and_then_to_the_page_and_sign_out_ends_it(console, make_user):
    username, password = make_user("staff")
    page = console.sign_in(username, password, "bookings/search")
    page.wait_for_url("**/admin/bookings/search")

    # The token is no longer good (expired, or revoked elsewhere): the API answers 401.
    console.errors.allow_http_status(401)
    page.evaluate("""() => {
        const key = 'hpay.console.session'
        const stored = JSON.parse(sessionStorage.getItem(key))
        sessionStorage.setItem(key, JSON.stringify({ ...stored, token: 'no-longer-valid' }))
    }""")
    page.reload()
    page.wait_for_url(re.compile(r"/admin/login\?redirect=/bookings/search"))
    assert "登录已过期" in page.inner_text("body")
    page.get_by_test_id("login-username").fill(username)
    page.get_by_test_id("login-password").fill(password)
    page.get_by_test_id("login-submit").click()
    page.wait_for_url("**/admin/bookings/search")
    page.get_by_test_id("bookings-table").wait_for()

    page.get_by_test_id("logout").click()
    page.wait_for_url("**/admin/login")
    assert page.evaluate("() => sessionStorage.getItem('hpay.console.session')") is None
    page.goto(console.url("bookings/pending"))
    page.wait_for_url(re.compile(r"/admin/login\?redirect=/bookings/pending"))


def test_a_wrong_password_is_shown_on_the_sign_in_form(console, make_user):
    username, _password = make_user("staff")
    console.errors.allow_http_status(401)
    page = console.page()
    page.goto(console.url())
    page.get_by_test_id("login-username").fill(username)
    page.get_by_test_id("login-password").fill("not-the-password")
    page.get_by_test_id("login-submit").click()
    page.get_by_test_id("login-error").wait_for()
    assert page.url.endswith("/admin/login")


def test_a_user_changes_their_password_in_the_console_and_carries_on(console, platform, make_user):
    username, password = make_user("finance")
    page = console.sign_in(username, password)
    page.get_by_test_id("change-password").click()
    console.errors.allow_http_status(403)
    page.get_by_test_id("password-current").fill("not-my-password")
    page.get_by_test_id("password-new").fill("a-new-password-1")
    page.get_by_test_id("password-again").fill("a-new-password-1")
    page.get_by_test_id("password-submit").click()
    assert "current password" in answer_box(page, "知道了").lower()

    page.get_by_test_id("password-current").fill(password)
    page.get_by_test_id("password-submit").click()
    success_toast(page, "密码已修改")
    page.get_by_test_id("password-dialog").wait_for(state="hidden")
    open_menu(page, "对账")  # the tab goes on with the fresh session
    page.wait_for_url("**/admin/finance/reconciliation")
    assert "/login" not in page.url
    AdminApi(platform.url, username, "a-new-password-1")
    refused = requests.post(f"{platform.url}/api/admin/v1/auth/login", json={"username": username,
                                                                               "password": password}, timeout=30)
    assert refused.status_code == 401
