"""The daily files in the browser: finance downloads a day's HIS platform bill and one channel app's top-ups, and
the files hold the day's records (opened and read)."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone

import openpyxl
from sqlalchemy import select

from app.db.models import MerchantAccount, Order, PaymentAttempt
from tests.browser.helpers import choose, type_date
from tests.e2e.refund_helpers import card_with_topups

SHANGHAI = timezone(timedelta(hours=8))


def test_finance_downloads_the_his_bill_and_an_apps_top_ups_of_a_day(console, platform, sandbox, rt, make_user,
                                                                     tmp_path):
    card, _ = card_with_topups(platform, sandbox, wechat=[4100], alipay=[])
    order = card["orders"]["wechat"][0]
    with rt.db.session() as session:
        app_id = session.scalar(select(MerchantAccount.app_id)
                                .join(PaymentAttempt, PaymentAttempt.merchant_account_id == MerchantAccount.id)
                                .join(Order, Order.paid_attempt_id == PaymentAttempt.id)
                                .where(Order.order_no == order["order_no"]))
    today = datetime.now(SHANGHAI).date().isoformat()
    username, password = make_user("finance")

    page = console.sign_in(username, password, "finance/daily-files")
    type_date(page, "ledger-date", today)
    with page.expect_download() as downloading:
        page.get_by_test_id("ledger-csv").click()
    ledger = tmp_path / downloading.value.suggested_filename
    downloading.value.save_as(ledger)
    rows = list(csv.reader(io.StringIO(ledger.read_bytes().decode("utf-8-sig"))))
    assert ledger.name == f"his-ledger-demo-{today}.csv"
    assert ["充值入账", order["order_no"], card["card_no"], "41.00"] in [row[1:5] for row in rows[1:]]

    type_date(page, "topups-date", today)
    choose(page, "topups-app", app_id)
    with page.expect_download() as downloading:
        page.get_by_test_id("topups-xlsx").click()
    topups = tmp_path / downloading.value.suggested_filename
    downloading.value.save_as(topups)
    cells = [list(r) for r in openpyxl.load_workbook(topups, read_only=True).active.iter_rows(values_only=True)]
    assert cells[0][:4] == ["平台订单号", "商户订单号", "渠道交易号", "金额"]
    [line] = [c for c in cells[1:] if c[0] == order["order_no"]]
    assert (line[1], line[3], line[4]) == (order["payments"][0]["out_trade_no"], 41.0, card["card_no"])
