"""Finance in the browser: the dashboard, a reconciliation run (started, watched until the platform's worker has
done it) and a discrepancy resolved; a month's statement generated, exported (the files opened and read), checked
and settled in cash with the ordinary invoice's amount / 1.06 shown before confirming."""
from __future__ import annotations

import csv
import io
import secrets
from datetime import UTC, datetime, timedelta, timezone

import openpyxl

from tests.api.test_admin_dashboard import Ledger
from tests.browser.helpers import AdminApi, answer_box, choose, open_menu, row, screenshot, success_toast, type_date
from tests.integration.reconciliation_support import adapter, own_clinic, sandbox_post
from tests.integration.statement_helpers import StatementClinic, shanghai

SHANGHAI = timezone(timedelta(hours=8))
BANK = {"name": "某某口腔诊所有限公司", "bank": "招商银行上海分行", "account_no": "6225880012345678"}


def _stranger_trade(rt, clinic, sandbox_url: str) -> str:
    """A payment the clinic's WeChat merchant took that the platform never made: open once reconciled."""
    number = "X" + secrets.token_hex(10)
    prepay = adapter(rt, clinic, "wechat").create_payment(number, 4321, "窗口外收款", "oStranger",
                                                          "http://127.0.0.1:1/notify",
                                                          datetime.now(UTC) + timedelta(minutes=15),
                                                          "127.0.0.1")
    sandbox_post(sandbox_url, "/sandbox/wechat/pay", {"prepay_id": prepay.prepay_id, "outcome": "success"})
    return number


def _money_of_a_month(rt) -> StatementClinic:
    """A clinic with income over the last two weeks, and today: WeChat ¥128 (booking), Alipay ¥35 (top-up), and
    a ¥10 refund."""
    clinic = StatementClinic(rt, "ui-dash")
    ledger = Ledger(rt, clinic)
    now = datetime.now(SHANGHAI)
    for days in range(1, 14):
        day = now - timedelta(days=days)
        ledger.payment("wechat", 3000 + 700 * (days % 5), day, order_type="booking")
        ledger.payment("alipay", 1500 + 400 * (days % 3), day, order_type="topup")
    earlier_today = max(now - timedelta(minutes=5), now.replace(hour=0, minute=0, second=1, microsecond=0))
    paid = ledger.payment("wechat", 12800, earlier_today, order_type="booking")
    ledger.payment("alipay", 3500, earlier_today, order_type="topup")
    ledger.refund(paid, 1000, earlier_today)
    return clinic


def test_finance_reads_the_dashboard_runs_a_reconciliation_and_resolves_a_discrepancy(console, platform, sandbox, rt,
                                                                                       make_user):
    money = _money_of_a_month(rt)
    clinic = own_clinic(rt, sandbox.url)
    stranger = _stranger_trade(rt, clinic, sandbox.url)
    username, password = make_user("finance", (money.code, clinic.code))
    today = datetime.now(SHANGHAI).date().isoformat()

    page = console.sign_in(username, password)

    page.wait_for_url("**/admin/finance/dashboard")
    choose(page, "clinic-picker", money.code)
    page.get_by_test_id("income-today").get_by_text("¥163.00").wait_for()
    assert "2 笔" in page.get_by_test_id("income-today").inner_text()
    assert "微信支付 ¥128.00" in page.get_by_test_id("income-today").inner_text()
    assert "¥10.00" in page.get_by_test_id("refunds-today").inner_text()
    page.locator(".chart canvas").first.wait_for()
    screenshot(page, "finance-landing")

    choose(page, "clinic-picker", clinic.code)
    open_menu(page, "对账")
    type_date(page, "run-date", today)
    choose(page, "run-source", "微信支付")
    page.get_by_test_id("run-start").click()
    assert f"对 {today} 的微信支付账单对账" in answer_box(page, "开始对账")
    success_toast(page, "已开始对账")

    run_row = row(page, "runs-table", clinic.code)
    run_row.get_by_text("已完成").wait_for(timeout=60_000)  # the list polls while the run is running
    run_row.get_by_text("查看差异").click()
    choose(page, "discrepancy-status-filter", "待处理")
    page.get_by_test_id("filter-search").click()
    open_row = row(page, "discrepancies-table", stranger)
    assert "¥43.21" in open_row.inner_text()
    screenshot(page, "finance-discrepancies")
    open_row.get_by_test_id("resolve-open").click()
    page.get_by_test_id("resolution").get_by_text("以渠道为准").click()
    page.get_by_test_id("resolve-note").fill("窗口外收款，已核实")
    page.get_by_test_id("resolve-submit").click()
    assert stranger in answer_box(page, "确认处理")
    success_toast(page, "差异已处理")
    page.get_by_test_id("discrepancies-table").get_by_text("没有差异").wait_for()  # no longer open

    api = AdminApi(platform.url, username, password)
    [run] = api.get("/reconciliation/runs", clinic_code=clinic.code, date=today, source="wechat")["items"]
    [resolved] = api.get(f"/reconciliation/runs/{run['id']}/discrepancies")["items"]
    assert (resolved["ref"], resolved["status"], resolved["resolution"], resolved["note"], resolved["resolved_by"]) == (
        stranger, "resolved", "trust_channel", "窗口外收款，已核实", username)


def test_finance_generates_exports_checks_and_settles_a_statement(console, platform, rt, make_user, tmp_path):
    clinic = StatementClinic(rt, "ui")
    first = clinic.order("wechat", 19900, shanghai(2025, 3, 10, 10, 0))
    second = clinic.order("wechat", 5000, shanghai(2025, 3, 20, 15, 0), patient="李小四", phone="13912345678")
    clinic.order("alipay", 7000, shanghai(2025, 3, 21, 9, 0))  # another channel's statement
    username, password = make_user("finance", (clinic.code,))
    api = AdminApi(platform.url, username, password)

    page = console.sign_in(username, password, "finance/statements")
    type_date(page, "statement-month", "2025-03")
    page.get_by_test_id("statement-generate").click()
    assert "生成 2025-03 微信支付的对账单" in answer_box(page, "生成")
    success_toast(page, "2 笔，¥249.00")
    [statement] = api.get("/statements", month="2025-03", channel="wechat")["items"]
    sid = statement["id"]
    page.get_by_test_id(f"statement-open-{sid}").click()
    for order in (first, second):
        row(page, "lines-table", order["order_no"]).wait_for()
    assert "李*四" in row(page, "lines-table", second["order_no"]).inner_text()  # names masked
    assert "¥249.00" in page.get_by_test_id("statement-summary").inner_text()
    page.go_back()

    # CSV without the patient's phone: the file the browser downloads, parsed.
    page.get_by_test_id(f"statement-export-{sid}").click()
    page.get_by_test_id("export-format").get_by_text("CSV").click()
    page.get_by_test_id("export-fields").get_by_text("患者手机号").click()
    with page.expect_download() as downloading:
        page.get_by_test_id("export-submit").click()
    csv_file = tmp_path / downloading.value.suggested_filename
    downloading.value.save_as(csv_file)
    raw = csv_file.read_bytes()
    table = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert raw.startswith(b"\xef\xbb\xbf") and csv_file.name == f"statement-{clinic.code}-wechat-2025-03.csv"
    assert table[0] == ["渠道订单号", "平台订单号", "商户订单号", "患者", "项目", "预约时间", "核销时间", "支付方式",
                        "渠道采购价", "金额"]
    assert [(r[1], r[-1]) for r in table[1:3]] == [(first["order_no"], "199.00"), (second["order_no"], "50.00")]
    assert table[3][0] == "合计" and table[3][-1] == "249.00" and len(table) == 4

    # XLSX with every column, opened with openpyxl.
    page.get_by_test_id(f"statement-export-{sid}").click()
    with page.expect_download() as downloading:
        page.get_by_test_id("export-submit").click()
    xlsx_file = tmp_path / downloading.value.suggested_filename
    downloading.value.save_as(xlsx_file)
    sheet = openpyxl.load_workbook(xlsx_file, read_only=True).active
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert rows[0][:5] == ["渠道订单号", "平台订单号", "商户订单号", "患者", "患者手机号"] and len(rows[0]) == 11
    assert [r[1] for r in rows[1:3]] == [first["order_no"], second["order_no"]]
    assert rows[2][4] == "139****5678" and rows[3][-1] == 249.0

    page.get_by_test_id(f"statement-check-{sid}").click()
    assert "2 笔，¥249.00" in answer_box(page, "与报表核对")
    success_toast(page, "已核对")
    statement_row = row(page, "statements-table", "¥249.00")
    statement_row.get_by_text("已核对").wait_for()

    statement_row.locator(".el-checkbox").click()
    page.get_by_test_id("settle-open").click()
    page.get_by_test_id("bank-name").fill(BANK["name"])
    page.get_by_test_id("bank-bank").fill(BANK["bank"])
    page.get_by_test_id("bank-account").fill(BANK["account_no"])
    assert page.get_by_test_id("invoice-amount").inner_text() == "¥234.91"  # 249.00 / 1.06 = 234.905…
    screenshot(page, "finance-settle-dialog")
    page.get_by_test_id("settle-submit").click()
    asked = answer_box(page, "确认结算")
    done = answer_box(page, "好")
    statement_row.get_by_text("已结算").wait_for()

    assert "现金结算 ¥249.00" in asked and "开普通发票，开票金额 ¥234.91" in asked
    [settlement] = api.get("/settlements")["items"]
    assert f"结算单 #{settlement['id']}" in done
    assert (settlement["method"], settlement["amount_fen"], settlement["invoice_type"],
            settlement["invoice_amount_fen"], settlement["statement_ids"]) == ("cash", 24900, "normal", 23491, [sid])
    assert api.get(f"/statements/{sid}")["status"] == "settled"
    open_menu(page, "结算记录")
    row(page, "settlements-table", f"#{sid}").get_by_text("¥234.91").wait_for()
