"""Reconciliation handed on, in the browser: a run downloaded as CSV and Excel (every line with its outcome, the
files opened and read), a discrepancy decided `trust_platform` becoming a claim, and the claim settled."""
from __future__ import annotations

import csv
import io
import secrets
import time
from datetime import UTC, datetime, timedelta, timezone

import openpyxl

from tests.browser.helpers import AdminApi, answer_box, open_menu, row, screenshot, success_toast
from tests.integration.reconciliation_support import adapter, own_clinic, paid, sandbox_post

SHANGHAI = timezone(timedelta(hours=8))


def _stranger_trade(rt, clinic, amount_fen: int) -> str:
    number = "X" + secrets.token_hex(10)
    prepay = adapter(rt, clinic, "wechat").create_payment(number, amount_fen, "窗口外收款", "oStranger",
                                                          "http://127.0.0.1:1/notify",
                                                          datetime.now(UTC) + timedelta(minutes=15), "127.0.0.1")
    sandbox_post(clinic.sandbox_url, "/sandbox/wechat/pay", {"prepay_id": prepay.prepay_id, "outcome": "success"})
    return number


def _finished_run(api: AdminApi, clinic_code: str) -> dict:
    today = datetime.now(SHANGHAI).date().isoformat()
    run = api.post("/reconciliation/runs", {"date": today, "source": "wechat", "clinic_code": clinic_code})
    deadline = time.monotonic() + 60
    while run["status"] == "running":
        assert time.monotonic() < deadline, "the platform's worker did not finish the run"
        time.sleep(0.5)
        run = api.get(f"/reconciliation/runs/{run['id']}")
    assert run["status"] == "done", run
    return run


def test_finance_downloads_a_run_and_turns_a_discrepancy_into_a_claim_it_later_settles(
        console, platform, sandbox, rt, make_user, tmp_path):
    clinic = own_clinic(rt, sandbox.url)
    matched = paid(rt, clinic, "wechat", 1500)
    stranger = _stranger_trade(rt, clinic, 2600)
    username, password = make_user("finance", (clinic.code,))
    api = AdminApi(platform.url, username, password)
    run = _finished_run(api, clinic.code)

    page = console.sign_in(username, password, "finance/reconciliation")
    row(page, "runs-table", clinic.code).get_by_text("已完成").wait_for()
    with page.expect_download() as downloading:
        page.get_by_test_id(f"run-export-csv-{run['id']}").click()
    csv_file = tmp_path / downloading.value.suggested_filename
    downloading.value.save_as(csv_file)
    table = list(csv.reader(io.StringIO(csv_file.read_bytes().decode("utf-8-sig"))))
    header, lines = table[0], {line[5]: line for line in table[1:]}
    assert csv_file.name == f"reconciliation-{clinic.code}-wechat-{clinic.merchants['wechat']['appid']}-" \
                            f"{run['date']}-run{run['id']}.csv"
    assert lines[stranger][header.index("结果代码")] == "missing_on_platform"
    assert lines[matched.out_trade_no][header.index("结果")] == "一致"
    with page.expect_download() as downloading:
        page.get_by_test_id(f"run-export-xlsx-{run['id']}").click()
    xlsx_file = tmp_path / downloading.value.suggested_filename
    downloading.value.save_as(xlsx_file)
    cells = [list(r) for r in openpyxl.load_workbook(xlsx_file, read_only=True).active.iter_rows(values_only=True)]
    assert cells[0] == header and {c[5] for c in cells[1:]} == set(lines)

    page.get_by_test_id(f"run-open-{run['id']}").click()
    open_row = row(page, "discrepancies-table", stranger)
    open_row.get_by_test_id("resolve-open").click()
    page.get_by_test_id("resolution").get_by_text("以平台为准").click()
    page.get_by_test_id("resolve-note").fill("非平台订单，向渠道核实")
    page.get_by_test_id("resolve-submit").click()
    assert "将记一笔对渠道的索赔" in answer_box(page, "确认处理")
    success_toast(page, "已记索赔")

    open_menu(page, "渠道索赔")
    claim_row = row(page, "claims-table", stranger)
    assert "¥26.00" in claim_row.inner_text() and "待追回" in claim_row.inner_text()
    [claim] = api.get("/reconciliation/claims", status="open")["items"]
    screenshot(page, "finance-claims")
    page.get_by_test_id(f"claim-settle-{claim['id']}").click()
    box = page.locator(".el-message-box").last
    box.locator("input").fill("渠道已退回该笔")
    box.get_by_role("button", name="下一步").click()
    assert "渠道已退回该笔" in answer_box(page, "确认了结")
    success_toast(page, f"索赔 #{claim['id']} 已了结")
    assert api.get("/reconciliation/claims", status="settled")["items"][0]["id"] == claim["id"]
