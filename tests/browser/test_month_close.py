"""Closing a month in the browser: a statement whose check finds a price difference (shown, not checked), the
operator recording the clinic's invoice and the payout that the clinic's finance then sees as paid, and a coupon
used once whose second use shows the API's refusal."""
from __future__ import annotations

from sqlalchemy import update

from app.db.models import StatementLine
from tests.browser.helpers import AdminApi, answer_box, row, screenshot, success_toast
from tests.integration.statement_helpers import StatementClinic, shanghai

BANK = {"name": "某某口腔诊所有限公司", "bank": "招商银行上海分行", "account_no": "6225880012345678"}


def _statement(api: AdminApi, month: str = "2025-03", channel: str = "wechat") -> dict:
    return api.post("/statements", {"month": month, "channel": channel})


def test_a_statement_whose_price_differs_from_the_report_is_not_checked_and_the_difference_is_shown(
        console, platform, rt, make_user):
    console.errors.allow_http_status(409)
    clinic = StatementClinic(rt, "ui-diff")
    differing = clinic.order("wechat", 29900, shanghai(2025, 3, 3, 10, 0), purchase_price_fen=18000)
    clinic.order("wechat", 29900, shanghai(2025, 3, 4, 10, 0), purchase_price_fen=18000)
    username, password = make_user("finance", (clinic.code,))
    api = AdminApi(platform.url, username, password)
    statement = _statement(api)
    with rt.db.session() as session:  # the statement says ¥190.00 where the order kept ¥180.00
        session.execute(update(StatementLine).where(StatementLine.statement_id == statement["id"],
                                                    StatementLine.order_no == differing["order_no"])
                        .values(purchase_price_fen=19000))

    page = console.sign_in(username, password, "finance/statements")
    page.get_by_test_id(f"statement-check-{statement['id']}").click()
    assert "逐笔核对" in answer_box(page, "与报表核对")

    dialog = page.get_by_test_id("differences-dialog")
    dialog.wait_for()
    assert "1" in page.get_by_test_id("differences-summary").inner_text()
    line = row(page, "differences-table", differing["channel_trade_no"])
    text = line.inner_text()
    assert "采购价不一致" in text and "¥190.00" in text and "¥180.00" in text and differing["order_no"] in text
    screenshot(page, "finance-statement-differences")
    page.get_by_test_id("differences-close").click()
    assert api.get(f"/statements/{statement['id']}")["status"] == "generated"
    row(page, "statements-table", f"{statement['id']}").get_by_text("已生成").wait_for()

    # The channel-orders report is the clinic's side: the price the order kept.
    page.goto(console.url("finance/channel-orders"))
    page.get_by_test_id("report-month").locator("input").first.fill("2025-03")
    page.get_by_test_id("report-month").locator("input").first.press("Enter")
    page.get_by_test_id("filter-search").click()
    row(page, "report-table", differing["channel_trade_no"]).get_by_text("¥180.00").wait_for()
    assert "¥360.00" in page.get_by_test_id("report-summary").inner_text()


def test_the_operator_records_the_invoice_and_the_payout_and_the_clinics_finance_sees_it_paid(
        console, platform, rt, make_user):
    clinic = StatementClinic(rt, "ui-payout")
    clinic.order("wechat", 29900, shanghai(2025, 3, 3, 10, 0), purchase_price_fen=10600)
    finance_user, finance_password = make_user("finance", (clinic.code,))
    finance = AdminApi(platform.url, finance_user, finance_password)
    statement = _statement(finance)
    finance.post(f"/statements/{statement['id']}/check")
    settlement = finance.post("/settlements", {"statement_ids": [statement["id"]], "method": "cash",
                                               "bank_account": BANK, "invoice_type": "normal"})
    sid = settlement["id"]
    operator_user, operator_password = make_user("operator", ())

    page = console.sign_in(operator_user, operator_password, "platform/payouts")
    settlement_row = row(page, "settlements-table", clinic.code)
    settlement_row.get_by_text("待收票").wait_for()
    page.get_by_test_id(f"invoice-open-{sid}").click()
    page.get_by_test_id("invoice-no").fill("04412345")
    page.get_by_test_id("invoice-submit").click()
    assert "发票号 04412345" in answer_box(page, "确认收票")
    success_toast(page, "已登记收票")
    settlement_row.get_by_text("已收票").wait_for()

    page.get_by_test_id(f"payout-open-{sid}").click()
    page.get_by_test_id("payout-serial").fill("CMB20250415000123")
    page.get_by_test_id("payout-submit").click()
    asked = answer_box(page, "确认已打款")
    assert "¥106.00" in asked and "CMB20250415000123" in asked
    success_toast(page, f"结算单 #{sid} 已打款")
    page.get_by_test_id(f"payout-{sid}").get_by_text("CMB20250415000123").wait_for()
    screenshot(page, "operator-payout")

    seen = console.sign_in(finance_user, finance_password, "finance/settlements")
    paid_row = row(seen, "settlements-table", f"#{statement['id']}")
    paid_row.get_by_text("已打款").first.wait_for()
    assert "CMB20250415000123" in seen.get_by_test_id(f"payout-{sid}").inner_text()
    assert "发票号 04412345" in seen.get_by_test_id(f"invoice-details-{sid}").inner_text()
    assert finance.get(f"/settlements/{sid}")["status"] == "paid"


def test_a_coupon_is_used_once_and_the_second_use_shows_the_refusal(console, platform, rt, make_user):
    console.errors.allow_http_status(409)
    clinic = StatementClinic(rt, "ui-coupon")
    clinic.order("wechat", 29900, shanghai(2025, 3, 3, 10, 0), purchase_price_fen=12000)
    username, password = make_user("finance", (clinic.code,))
    api = AdminApi(platform.url, username, password)
    statement = _statement(api)
    api.post(f"/statements/{statement['id']}/check")
    code = api.post("/settlements", {"statement_ids": [statement["id"]], "method": "coupon"})["coupon"]["code"]

    page = console.sign_in(username, password, "finance/coupons")
    coupon_row = row(page, "coupons-table", code)
    coupon_row.get_by_text("未使用").wait_for()
    page.get_by_test_id(f"coupon-use-{code}").click()
    assert "¥120.00" in answer_box(page, "确认使用")
    success_toast(page, f"代金券 {code} 已使用")
    coupon_row.get_by_text("已使用").wait_for()

    page.get_by_test_id(f"coupon-use-{code}").click()
    answer_box(page, "确认使用")
    refusal = answer_box(page, "知道了")
    assert f"coupon {code} was used already" in refusal
    assert api.get("/coupons", status="used")["items"][0]["code"] == code
