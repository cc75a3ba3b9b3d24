"""The daily files, on both channels through the running platform and the sandbox: the HIS's platform bill as a
CSV (signed as the HIS API is, query string included) and as a finance download, and the card top-ups of one
channel app of a day with their refunds."""
from __future__ import annotations

import csv
import io
import time
from datetime import datetime, timedelta, timezone

import pytest
import requests
from sqlalchemy import select

from app.db.models import MerchantAccount, Order, PaymentAttempt
from tests.api.admin_helpers import make_user, sign_in
from tests.api.test_admin_role_matrix import Call, Case
from tests.e2e.refund_helpers import card_with_topups, wait_refund
from tests.his_auth import his_headers

ADMIN = "/api/admin/v1"
SHANGHAI = timezone(timedelta(hours=8))


def _today() -> str:
    return datetime.now(SHANGHAI).date().isoformat()


@pytest.fixture(scope="module")
def topped_up(platform, sandbox):
    """A card topped up ¥30 on WeChat and ¥20 on Alipay, ¥5 of it refunded to the patient on WeChat."""
    card, clients = card_with_topups(platform, sandbox, wechat=[3000], alipay=[2000])
    asked = clients["wechat"].call("POST", f"/cards/{card['card_no']}/refunds", json={"amount_fen": 500})
    wait_refund(clients["wechat"], asked["refund_request_no"], {"succeeded"})
    return card


def _table(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


def _his_get(platform, sandbox, path: str, signed_path: str | None = None) -> requests.Response:
    his = sandbox.merchants()["his"][0]
    return requests.get(f"{platform.url}{path}", timeout=30,
                        headers=his_headers(his["key_id"], his["secret"], "GET", signed_path or path, b"",
                                            timestamp=int(time.time())))


def test_the_his_reads_the_days_platform_bill_as_a_file(platform, sandbox, topped_up):
    path = f"/api/his/v1/reconciliation/{_today()}"
    listed = _his_get(platform, sandbox, path).json()["writes"]
    as_file = _his_get(platform, sandbox, f"{path}?format=csv")

    assert as_file.status_code == 200 and as_file.headers["Content-Type"].startswith("text/csv")
    assert f"his-ledger-demo-{_today()}.csv" in as_file.headers["Content-Disposition"]
    table = _table(as_file.content)
    assert table[0] == ["幂等键", "类型", "平台订单号", "就诊卡号", "金额", "状态", "写入时间"]
    assert [row[0] for row in table[1:]] == [write["idempotency_key"] for write in listed]
    mine = {(row[1], row[4]) for row in table[1:] if row[3] == topped_up["card_no"]}
    assert {("充值入账", "30.00"), ("充值入账", "20.00")} <= mine


def test_the_format_is_signed_with_the_path_and_an_unknown_one_is_refused(platform, sandbox):
    path = f"/api/his/v1/reconciliation/{_today()}"
    # Signed for the JSON answer, sent asking for the file: the query string is part of what is signed.
    changed = _his_get(platform, sandbox, f"{path}?format=csv", signed_path=path)
    assert changed.status_code == 401 and changed.json()["error"] == "invalid_signature"
    unsigned = requests.get(f"{platform.url}{path}?format=csv", timeout=30)
    assert unsigned.status_code == 401
    assert _his_get(platform, sandbox, f"{path}?format=xml").status_code == 422


def _app_of(rt, order_no: str) -> str:
    with rt.db.session() as session:
        return session.scalar(select(MerchantAccount.app_id)
                              .join(PaymentAttempt, PaymentAttempt.merchant_account_id == MerchantAccount.id)
                              .join(Order, Order.paid_attempt_id == PaymentAttempt.id)
                              .where(Order.order_no == order_no))


@pytest.mark.parametrize(("channel", "amount", "refunded", "refunds"), [("wechat", "30.00", "5.00", "1"),
                                                                       ("alipay", "20.00", "0.00", "0")])
def test_finance_downloads_the_top_ups_of_one_app_of_a_day(client, rt, topped_up, channel, amount, refunded,
                                                          refunds):
    headers = sign_in(client, *make_user(rt, "finance"))
    order = topped_up["orders"][channel][0]
    app_id = _app_of(rt, order["order_no"])

    resp = client.get(f"{ADMIN}/reports/topups", query_string={"date": _today(), "app_id": app_id, "format": "csv"},
                      headers=headers)

    assert resp.status_code == 200, resp.get_data(as_text=True)
    table = _table(resp.get_data())
    assert table[0] == ["平台订单号", "商户订单号", "渠道交易号", "金额", "就诊卡号", "支付时间", "已退款金额",
                        "退款笔数", "订单状态"]
    [line] = [row for row in table[1:] if row[0] == order["order_no"]]
    payment = order["payments"][0]
    assert (line[1], line[2], line[3], line[4], line[6], line[7]) == (
        payment["out_trade_no"], payment["channel_trade_no"], amount, topped_up["card_no"], refunded, refunds)
    assert all(_app_of(rt, row[0]) == app_id for row in table[1:])  # that app's top-ups only
    apps = client.get(f"{ADMIN}/reports/channel-apps", headers=headers).get_json()
    assert {"app_id": app_id, "channel": channel, "clinic_code": "demo"}.items() <= next(
        a for a in apps if a["app_id"] == app_id).items()

    xlsx = client.get(f"{ADMIN}/reports/topups", query_string={"date": _today(), "app_id": app_id, "format": "xlsx"},
                      headers=headers)
    assert xlsx.status_code == 200 and xlsx.get_data()[:2] == b"PK"


def test_finance_downloads_the_his_ledger_and_another_clinics_app_is_not_found(client, rt, topped_up):
    headers = sign_in(client, *make_user(rt, "finance"))
    resp = client.get(f"{ADMIN}/reports/his-ledger", query_string={"date": _today(), "format": "csv"},
                      headers=headers)
    assert resp.status_code == 200
    assert any(row[3] == topped_up["card_no"] for row in _table(resp.get_data())[1:])
    with rt.db.session() as session:
        session.add(MerchantAccount(clinic_id=None, owner="platform", channel="wechat", app_id="wx-not-yours-files",
                                    sign_type="MD5", api_base_url="http://127.0.0.1:1/"))
    missing = client.get(f"{ADMIN}/reports/topups", headers=headers,
                         query_string={"date": _today(), "app_id": "wx-not-yours-files", "format": "csv"})
    assert (missing.status_code, missing.get_json()["error"]) == (404, "channel_app_not_found")
    assert client.get(f"{ADMIN}/reports/topups", headers=headers,
                      query_string={"date": _today(), "app_id": "x", "format": "pdf"}).status_code == 422


def _demo_app(w) -> str:
    with w.rt.db.session() as session:
        return session.scalar(select(MerchantAccount.app_id).where(MerchantAccount.id == w.demo_app("wechat")))


ROLE_MATRIX_CASES = {
    "admin_daily_files.channel_apps": Case(lambda w: Call("GET", "/reports/channel-apps"), None),
    "admin_daily_files.his_ledger": Case(
        lambda w: Call("GET", "/reports/his-ledger", {"query_string": {"date": _today(), "format": "csv"}}),
        lambda w: Call("GET", "/reports/his-ledger", {"query_string": {"date": _today(), "format": "csv",
                                                                       "clinic_code": w.other.code}})),
    "admin_daily_files.topups": Case(
        lambda w: Call("GET", "/reports/topups", {"query_string": {"date": _today(), "format": "csv",
                                                                   "app_id": _demo_app(w)}}),
        lambda w: Call("GET", "/reports/topups", {"query_string": {"date": _today(), "format": "csv",
                                                                   "app_id": "wx-not-yours-files"}})),
}
