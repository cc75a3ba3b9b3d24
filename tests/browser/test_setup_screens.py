"""The clinic set-up screens in the browser, against the running platform and sandbox: an operator onboards a clinic
(its HIS, checked with a wrong secret and then the right one; a WeChat app from a new sandbox merchant, checked; its
admin); that admin creates an item, stocks it, generates its schedule and sees it as a week grid, closes a slot and
changes another's capacity (refused below the places a patient's order holds, with the API's message), and creates a
staff user, who sees none of it."""
from __future__ import annotations

import re
import secrets
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import requests

from mini_program_mock.patient import MiniProgramClient
from tests.api.mp_helpers import channel_user_id
from tests.api.onboarding_helpers import sandbox_merchant
from tests.browser.helpers import AdminApi, answer_box, choose, open_menu, row, screenshot, success_toast, type_date

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _next_monday() -> str:
    today = datetime.now(SHANGHAI).date()
    return (today + timedelta(days=7 - today.weekday())).isoformat()


def _cell(page, day: str, starts: str):
    return page.locator(f'[data-testid="slot-cell"][data-day="{day}"][data-time="{starts}"]')


def _operator_onboards(console, platform, sandbox, make_user):
    """The operator's part: (its page, the clinic code, its admin's username and password, the WeChat merchant)."""
    username, password = make_user("operator", ())
    page = console.sign_in(username, password)
    page.wait_for_url("**/admin/platform/clinics")
    row(page, "clinics-table", "demo").wait_for()
    assert "平台运营" in page.get_by_test_id("menu").inner_text()
    screenshot(page, "operator-landing")

    code = f"ui-{secrets.token_hex(3)}"
    page.get_by_test_id("clinic-new").click()
    page.get_by_test_id("clinic-code").fill(code)
    page.get_by_test_id("clinic-name").fill("浏览器诊所")
    page.get_by_test_id("clinic-create").click()
    success_toast(page, f"已创建诊所 {code}")
    page.wait_for_url(f"**/admin/platform/clinics/{code}")

    # The HIS: a wrong secret first (the check names the reason), then the right one.
    his = sandbox_merchant(sandbox.url, "his", code)
    page.get_by_test_id("his-base-url").fill(f"{sandbox.url}/his/")
    page.get_by_test_id("his-key-id").fill(his["key_id"])
    page.get_by_test_id("his-secret").fill("another-secret-of-enough-length")
    page.get_by_test_id("his-save").click()
    assert his["key_id"] in answer_box(page, "保存")
    success_toast(page, "已保存 HIS 连接")
    page.get_by_test_id("secret-configured").first.wait_for()
    page.get_by_test_id("his-check").click()
    failed = page.get_by_test_id("his-check-result").filter(has_text="检测失败")
    failed.wait_for()
    assert "the HIS refused our key" in failed.inner_text()
    page.get_by_test_id("his-secret").fill(his["secret"])
    page.get_by_test_id("his-save").click()
    answer_box(page, "保存")
    success_toast(page, "已保存 HIS 连接")
    page.get_by_test_id("his-check").click()
    page.get_by_test_id("his-check-result").filter(has_text="检测通过").wait_for()
    assert his["secret"] not in page.content()

    # A WeChat app from a new sandbox merchant, checked.
    merchant = sandbox_merchant(sandbox.url, "wechat", code)
    page.get_by_test_id("app-new").click()
    dialog = page.get_by_test_id("app-dialog")
    dialog.wait_for()
    page.get_by_test_id("app-name").fill("浏览器小程序")
    page.get_by_test_id("app-app-id").fill(merchant["appid"])
    page.get_by_test_id("app-mch-id").fill(merchant["mch_id"])
    page.get_by_test_id("app-api-key").fill(merchant["api_key"])
    page.get_by_test_id("app-app-secret").fill(merchant["app_secret"])
    page.get_by_test_id("app-sign-type").get_by_text(merchant["sign_type"], exact=True).click()
    page.get_by_test_id("app-api-base-url").fill(f"{sandbox.url}/wxpay/")
    page.get_by_test_id("app-login-base-url").fill(f"{sandbox.url}/wxlogin/")
    page.get_by_test_id("app-submit").click()
    success_toast(page, f"已创建 微信支付 应用 {merchant['appid']}")
    app_row = row(page, "apps-table", merchant["appid"])
    app_row.wait_for()
    assert "已配置 configured" in app_row.inner_text()
    app_row.get_by_test_id("app-check").click()
    app_row.get_by_test_id("app-check-result").filter(has_text="通过").wait_for()
    assert merchant["api_key"] not in page.content() and merchant["app_secret"] not in page.content()
    screenshot(page, "operator-clinic")

    # The clinic's admin.
    open_menu(page, "用户管理")
    admin_name, admin_password = f"ui-admin-{secrets.token_hex(3)}", "pw-" + secrets.token_hex(8)
    page.get_by_test_id("user-new").click()
    page.get_by_test_id("user-username").fill(admin_name)
    choose(page, "user-clinics", code)
    page.get_by_test_id("user-password").fill(admin_password)
    page.get_by_test_id("user-submit").click()
    assert admin_password in answer_box(page, "已记下")
    assert "管理员" in _user_row(page, admin_name).inner_text()
    return page, code, admin_name, admin_password, merchant


def _only_row(page, table: str, query_testid: str, text: str):
    """Search the list for `text` (lists run to many pages in a long run) and wait for its one row."""
    page.get_by_test_id(query_testid).fill(text)
    page.get_by_test_id("filter-search").click()
    page.get_by_test_id(table).locator("tr.el-table__row").nth(1).wait_for(state="detached")
    found = row(page, table, text)
    found.wait_for()
    return found


def _user_row(page, username: str):
    return _only_row(page, "users-table", "user-filter-q", username)


def _patient_orders(platform, sandbox, code: str, item_id: int, slot_id: int) -> dict:
    """A patient of the new clinic books the slot in its mini-program (unpaid: the order holds the place)."""
    mp = MiniProgramClient(platform.url, sandbox.url, "wechat", clinic_code=code, say=lambda _line: None)
    mp.login(channel_user_id("wechat", f"ui-{secrets.token_hex(4)}"))
    patient = mp.call("POST", "/patients", json={"name": "李娜", "phone": f"139{secrets.randbelow(10**8):08d}",
                                                 "relation": "self"})
    return mp.call("POST", "/orders", json={"type": "booking", "item_id": item_id, "slot_id": slot_id,
                                            "patient_id": patient["id"], "channel": "wechat"})


def test_an_operator_onboards_a_clinic_whose_admin_schedules_an_item(console, platform, sandbox, make_user):
    operator, code, admin_name, admin_password, merchant = _operator_onboards(console, platform, sandbox, make_user)

    page = console.sign_in(admin_name, admin_password)
    page.wait_for_url("**/admin/setup/items")
    page.get_by_test_id("items-table").get_by_text("还没有项目").wait_for()
    item_code = f"SCAN-{secrets.token_hex(2)}"
    page.get_by_test_id("item-new").click()
    page.get_by_test_id("item-code").fill(item_code)
    page.get_by_test_id("item-name").fill("全景片")
    page.get_by_test_id("item-price").fill("128.5")
    page.get_by_test_id("item-submit").click()
    success_toast(page, f"已创建项目 {item_code}")
    page.wait_for_url(re.compile(r"/admin/setup/items/\d+/schedule$"))
    item_id = int(re.search(r"/items/(\d+)/schedule", page.url).group(1))
    page.get_by_test_id("week-empty").wait_for()

    # Stock for WeChat, from the item's own link.
    page.get_by_role("button", name="渠道库存").click()
    wechat = row(page, "inventory-table", "微信支付")
    wechat.wait_for()
    wechat.locator("input").fill("20")
    page.get_by_test_id("inventory-save").click()
    answer_box(page, "保存")
    success_toast(page, "已保存")
    page.go_back()

    # Next week, Monday to Friday, 09:00-12:00 in 30 minutes, 5 places each (the form's defaults but the dates).
    monday = _next_monday()
    page.get_by_test_id("schedule-new").click()
    type_date(page, "schedule-from", monday)
    type_date(page, "schedule-to", (datetime.fromisoformat(monday) + timedelta(days=6)).date().isoformat())
    summary = page.get_by_test_id("schedule-summary").inner_text()
    assert "09:00–12:00，每 30 分钟一段、每段 5 个名额；生成后立即开放预约" in summary
    page.get_by_test_id("schedule-submit").click()
    assert "全景片" in answer_box(page, "生成")
    assert "新建 30 个时段，已存在 0 个" in answer_box(page, "好")
    page.get_by_test_id("week-range").filter(has_text=monday).wait_for()
    page.get_by_test_id("week-grid").wait_for()
    assert page.get_by_test_id("slot-cell").count() == 30
    assert _cell(page, monday, "11:30").inner_text().startswith("0/5")
    admin = AdminApi(platform.url, admin_name, admin_password)
    friday = (datetime.fromisoformat(monday) + timedelta(days=4)).date().isoformat()
    assert len(admin.get(f"/items/{item_id}/slots", **{"from": monday, "to": friday})) == 30

    # The same schedule again makes none twice.
    page.get_by_test_id("schedule-new").click()
    page.get_by_test_id("schedule-submit").click()
    answer_box(page, "生成")
    assert "新建 0 个时段，已存在 30 个" in answer_box(page, "好")

    # Close Monday 09:00.
    _cell(page, monday, "09:00").click()
    page.get_by_test_id("slot-closed").click()
    page.get_by_test_id("slot-save").click()
    assert "关闭这个时段" in answer_box(page, "保存")
    success_toast(page, "已保存")
    closed = _cell(page, monday, "09:00")
    closed.filter(has_text="已关闭").wait_for()
    assert "closed" in closed.get_attribute("class")

    # A patient holds a place at Monday 10:00: its capacity may not go below 1 (the API's message), but to 8.
    taken_id = int(_cell(page, monday, "10:00").get_attribute("data-slot-id"))
    _patient_orders(platform, sandbox, code, item_id, taken_id)
    page.get_by_test_id("week-next").click()
    page.get_by_test_id("week-prev").click()
    taken = _cell(page, monday, "10:00")
    taken.filter(has_text="1/5").wait_for()
    taken.click()
    console.errors.allow_http_status(409)
    capacity = page.get_by_test_id("slot-capacity").locator("input")
    capacity.fill("0")
    page.get_by_test_id("slot-save").click()
    assert "名额 5 → 0" in answer_box(page, "保存")
    refusal = answer_box(page, "知道了")
    assert "1 places of this slot are taken; the capacity cannot be 0" in refusal, refusal
    capacity.fill("8")
    page.get_by_test_id("slot-save").click()
    answer_box(page, "保存")
    success_toast(page, "已保存")
    taken.filter(has_text="1/8").wait_for()
    slots = {s["id"]: s for s in admin.get(f"/items/{item_id}/slots", **{"from": monday, "to": monday})}
    assert (slots[taken_id]["capacity"], slots[taken_id]["reserved"]) == (8, 1)
    assert [s["closed"] for s in slots.values()].count(True) == 1
    screenshot(page, "admin-schedule")

    # A staff user of the clinic, who sees none of the set-up.
    open_menu(page, "用户管理")
    staff_name = f"ui-staff-{secrets.token_hex(3)}"
    page.get_by_test_id("user-new").click()
    page.get_by_test_id("user-username").fill(staff_name)
    choose(page, "user-role", "前台")
    page.get_by_test_id("user-generate-password").click()
    staff_password = page.get_by_test_id("user-password").input_value()
    assert len(staff_password) >= 8
    page.get_by_test_id("user-submit").click()
    assert staff_password in answer_box(page, "已记下")
    staff_row = row(page, "users-table", staff_name)
    staff_row.wait_for()
    assert "前台" in staff_row.inner_text() and code in staff_row.inner_text()
    assert "本人" in row(page, "users-table", admin_name).inner_text()  # nobody edits their own role or account

    staff = console.sign_in(staff_name, staff_password)
    staff.wait_for_url("**/admin/bookings/pending")
    menu = staff.get_by_test_id("menu").inner_text()
    assert not any(title in menu for title in ("项目与套餐", "用户管理", "诊所", "平台收款应用"))
    for path in ("setup/items", f"setup/items/{item_id}/schedule", "setup/users", "platform/clinics"):
        staff.goto(console.url(path))
        staff.get_by_test_id("forbidden").wait_for()

    # The operator rotates the app's API key: the new one signs at once (the sandbox merchant still has the old one,
    # so the check names the wrong key) and the old one is shown with the end of its grace period.
    operator.goto(console.url(f"platform/clinics/{code}"))
    app_row = row(operator, "apps-table", merchant["appid"])
    app_row.get_by_test_id("app-edit").click()
    new_key = secrets.token_hex(16)
    operator.get_by_test_id("app-api-key").fill(new_key)
    operator.get_by_test_id("app-submit").click()
    assert "API 密钥。新密钥立即生效，旧密钥只在宽限期内验证通知" in answer_box(operator, "保存")
    success_toast(operator, "已保存")
    app_row.filter(has_text="旧 API 密钥 有效至").wait_for()
    app_row.get_by_test_id("app-check").click()
    app_row.get_by_test_id("app-check-result").filter(has_text="the API key is wrong").wait_for()
    assert new_key not in operator.content()


def test_an_operator_renames_and_deactivates_a_clinic_and_adds_an_alipay_app_from_pem_keys(console, platform, sandbox,
                                                                                           make_user):
    username, password = make_user("operator", ())
    api = AdminApi(platform.url, username, password)
    code = f"ui-{secrets.token_hex(3)}"
    api.post("/clinics", {"code": code, "name": "旧名诊所"})
    page = console.sign_in(username, password)
    clinic = _only_row(page, "clinics-table", "clinic-filter-q", code)

    clinic.get_by_test_id("clinic-rename").click()
    prompt = page.locator(".el-message-box").last
    prompt.locator("input").fill("新名诊所")
    prompt.get_by_role("button", name="下一步").click()
    assert "从「旧名诊所」改名为「新名诊所」" in answer_box(page, "改名")
    success_toast(page, "已改名")
    clinic.filter(has_text="新名诊所").wait_for()

    clinic.get_by_test_id("clinic-open").click()
    page.wait_for_url(f"**/admin/platform/clinics/{code}")
    merchant = sandbox_merchant(sandbox.url, "alipay", code)
    page.get_by_test_id("app-new").click()
    page.get_by_test_id("app-channel").get_by_text("支付宝").click()
    page.get_by_test_id("app-app-id").fill(merchant["app_id"])
    page.get_by_test_id("app-private-key").fill(merchant["app_private_key"])
    page.get_by_test_id("app-alipay-public-key").fill(merchant["alipay_public_key"])
    page.get_by_test_id("app-api-base-url").fill(f"{sandbox.url}/alipay/gateway.do")
    page.get_by_test_id("app-submit").click()
    success_toast(page, f"已创建 支付宝 应用 {merchant['app_id']}")
    app_row = row(page, "apps-table", merchant["app_id"])
    app_row.get_by_test_id("app-check").click()
    app_row.get_by_test_id("app-check-result").filter(has_text="通过").wait_for()
    assert merchant["app_private_key"].splitlines()[1] not in page.content()

    page.get_by_role("button", name="返回诊所列表").click()
    _only_row(page, "clinics-table", "clinic-filter-q", code).get_by_test_id("clinic-deactivate").click()
    assert "停用后不能再登录、下单或排班" in answer_box(page, "停用")
    success_toast(page, "已停用")
    row(page, "clinics-table", code).filter(has_text="已停用").wait_for()
    assert api.get(f"/clinics/{code}")["active"] is False


def test_an_admin_edits_an_item_to_platform_collected_and_resets_unlocks_and_deactivates_users(console, platform,
                                                                                              make_user):
    username, password = make_user("admin")
    api = AdminApi(platform.url, username, password)
    item = api.post("/items", {"code": f"EDIT-{secrets.token_hex(2)}", "name": "待修改项目", "price_fen": 5000})
    locked_name, _ = make_user("staff")
    reset_name, _ = make_user("finance")
    for _attempt in range(5):  # someone guesses the staff user's password from here: locked out
        requests.post(f"{api.url}/auth/login", json={"username": locked_name, "password": "guess-" + "x" * 8},
                      timeout=30)

    page = console.sign_in(username, password)
    _only_row(page, "items-table", "item-filter-q", item["code"]).get_by_test_id("item-edit").click()
    page.get_by_test_id("item-price").fill("66.6")
    page.get_by_test_id("item-collected-by").get_by_text("平台代收").click()
    page.get_by_test_id("item-submit").click()  # no purchase prices yet: the form says what is missing
    page.get_by_test_id("item-dialog").get_by_text("平台代收须填写微信渠道的采购价（元）").wait_for()
    page.get_by_test_id("item-purchase-wechat").fill("50")
    page.get_by_test_id("item-purchase-alipay").fill("49.9")
    page.get_by_test_id("item-submit").click()
    assert "待修改项目：¥66.60，上架" in answer_box(page, "保存")
    success_toast(page, "已保存")
    row(page, "items-table", item["code"]).filter(has_text="平台代收").wait_for()
    [saved] = [i for i in api.get("/items") if i["id"] == item["id"]]
    assert (saved["price_fen"], saved["collected_by"], saved["purchase_price_fen"]) == (
        6660, "platform", {"wechat": 5000, "alipay": 4990})

    # Its slots three weeks ahead, each shown to patients 7 days before its day at 08:00: marked unreleased.
    row(page, "items-table", item["code"]).get_by_test_id("item-schedule").click()
    monday = (datetime.fromisoformat(_next_monday()) + timedelta(days=14)).date()
    page.get_by_test_id("schedule-new").click()
    type_date(page, "schedule-from", monday.isoformat())
    type_date(page, "schedule-to", (monday + timedelta(days=6)).isoformat())
    page.get_by_test_id("schedule-release").get_by_text("提前若干天").click()
    assert "每个时段在其日期前 7 天的 08:00 开放预约" in page.get_by_test_id("schedule-summary").inner_text()
    page.get_by_test_id("schedule-submit").click()
    answer_box(page, "生成")
    assert "新建 30 个时段" in answer_box(page, "好")
    unreleased = _cell(page, monday.isoformat(), "09:00")
    unreleased.filter(has_text=f"{(monday - timedelta(days=7)).isoformat()} 08:00 开放").wait_for()
    assert "unreleased" in unreleased.get_attribute("class")
    released = {datetime.fromisoformat(s["release_at"]) for s in api.get(
        f"/items/{item['id']}/slots", **{"from": monday.isoformat(), "to": monday.isoformat()})}
    assert released == {datetime.combine(monday - timedelta(days=7), time(8, 0), SHANGHAI)}, released
    unreleased.click()  # this one is offered at once
    page.get_by_test_id("slot-release").get_by_text("立即开放").click()
    page.get_by_test_id("slot-save").click()
    assert "立即开放预约" in answer_box(page, "保存")
    success_toast(page, "已保存")
    opened = _cell(page, monday.isoformat(), "09:00")
    opened.filter(has_text="0/5").wait_for()
    assert "开放" not in opened.inner_text() and "open" in opened.get_attribute("class").split()
    day = {"from": monday.isoformat(), "to": monday.isoformat()}
    [first] = [s for s in api.get(f"/items/{item['id']}/slots", **day)
               if s["id"] == int(opened.get_attribute("data-slot-id"))]
    assert first["release_at"] is None, first

    open_menu(page, "用户管理")
    console.errors.allow_http_status(401, 429)  # the guesses above; the reset user's old session
    locked = _user_row(page, locked_name)
    locked.filter(has_text="锁定").wait_for()
    locked.get_by_test_id("user-unlock").click()
    assert locked_name in answer_box(page, "解锁")
    success_toast(page, "已解锁")
    row(page, "users-table", locked_name).filter(has_text="锁定").wait_for(state="detached")

    _user_row(page, reset_name).get_by_test_id("user-reset-password").click()
    prompt = page.locator(".el-message-box").last
    new_password = prompt.locator("input").input_value()
    assert len(new_password) >= 8
    prompt.get_by_role("button", name="下一步").click()
    assert "其所有登录会话立即失效" in answer_box(page, "重置")
    success_toast(page, f"已重置 {reset_name} 的密码")
    AdminApi(platform.url, reset_name, new_password)  # signs in with the new password

    row(page, "users-table", reset_name).get_by_test_id("user-deactivate").click()
    answer_box(page, "停用")
    success_toast(page, "已停用")
    assert [u["active"] for u in api.get("/users") if u["username"] == reset_name] == [False]
    assert not _user_row(page, username).get_by_test_id("user-deactivate").count()
