"""The sandbox Alipay driven by python-alipay-sdk exactly as the platform's adapter drives production."""
from __future__ import annotations

import csv
import io
import time
import zipfile
from datetime import timedelta
from decimal import Decimal

import pytest
import requests
from alipay.exceptions import AliPayException, AliPayValidationError
from Cryptodome.PublicKey import RSA

from tests.processes import SandboxProcess
from tests.sandbox.alipay_support import (
    NotifyReceiver,
    TamperingProxy,
    alipay_client,
    issue_code,
    ledger_view,
    new_alipay_merchant,
    out_trade_no,
    pay,
    sandbox_now,
    shifted_clock,
    verify_notification,
)

BUYER = "2088000000000001"
DAY_S = 24 * 3600


@pytest.fixture(scope="module")
def merchant(sandbox):
    return new_alipay_merchant(sandbox)


@pytest.fixture()
def receiver():
    with NotifyReceiver() as server:
        yield server


@pytest.fixture()
def ali(sandbox, merchant, receiver):
    return alipay_client(sandbox.url, merchant, notify_url=receiver.url)


def create(ali, amount: str = "10.00", **biz) -> dict:
    number = biz.pop("out_trade_no", None) or out_trade_no()
    biz.setdefault("buyer_id", BUYER)
    return ali.api_alipay_trade_create("门诊缴费", number, amount, product_code="JSAPI_PAY", **biz)


def paid_trade(ali, sandbox, receiver, amount: str = "10.00") -> dict:
    trade = create(ali, amount)
    assert pay(sandbox, trade["trade_no"]).status_code == 200
    receiver.wait_for(1)
    return trade


def test_create_is_idempotent_and_query_and_close_follow_the_trade(ali):
    trade = create(ali, "12.34")
    assert trade["code"] == "10000" and len(trade["trade_no"]) == 28
    again = create(ali, "12.34", out_trade_no=trade["out_trade_no"])
    assert again["trade_no"] == trade["trade_no"]
    changed = create(ali, "12.35", out_trade_no=trade["out_trade_no"])
    assert (changed["code"], changed["sub_code"]) == ("40004", "ACQ.CONTEXT_INCONSISTENT")

    query = ali.api_alipay_trade_query(out_trade_no=trade["out_trade_no"])
    assert query["trade_status"] == "WAIT_BUYER_PAY"
    assert (query["total_amount"], query["receipt_amount"], query["buyer_user_id"]) == ("12.34", "0.00", BUYER)
    assert "send_pay_date" not in query

    closed = ali.api_alipay_trade_close(trade_no=trade["trade_no"])
    assert (closed["code"], closed["out_trade_no"]) == ("10000", trade["out_trade_no"])
    assert ali.api_alipay_trade_query(trade_no=trade["trade_no"])["trade_status"] == "TRADE_CLOSED"
    assert create(ali, "12.34", out_trade_no=trade["out_trade_no"])["sub_code"] == "ACQ.TRADE_HAS_CLOSE"

    missing = ali.api_alipay_trade_query(out_trade_no="NO_SUCH_TRADE")
    assert (missing["code"], missing["msg"], missing["sub_code"]) == ("40004", "Business Failed", "ACQ.TRADE_NOT_EXIST")


@pytest.mark.parametrize("amount", ["0.001", "0", "-1.00", "abc", "1e2.5"])
def test_create_refuses_amounts_that_are_not_positive_fen(ali, amount):
    answer = create(ali, amount)
    assert (answer["code"], answer["sub_code"]) == ("40004", "ACQ.INVALID_PARAMETER")


def test_create_needs_a_buyer_and_a_plain_out_trade_no(ali):
    no_buyer = ali.api_alipay_trade_create("x", out_trade_no(), "1.00", product_code="JSAPI_PAY")
    assert no_buyer["sub_code"] == "ACQ.INVALID_PARAMETER"
    assert create(ali, out_trade_no="ORDER-1")["sub_code"] == "ACQ.INVALID_PARAMETER"
    by_open_id = create(ali, buyer_id=None, buyer_open_id="0abcOpenId")
    assert by_open_id["code"] == "10000"


def test_payment_notification_is_signed_over_the_protocol_fields(ali, sandbox, merchant, receiver):
    trade = create(ali, "88.80")
    assert pay(sandbox, trade["trade_no"]).json()["trade_status"] == "TRADE_SUCCESS"
    note = receiver.wait_for(1)[0]
    fields = note["fields"]
    assert note["content_type"].startswith("application/x-www-form-urlencoded")
    assert verify_notification(ali, fields)
    assert fields["notify_type"] == "trade_status_sync" and fields["sign_type"] == "RSA2"
    assert (fields["trade_status"], fields["total_amount"], fields["receipt_amount"]) == (
        "TRADE_SUCCESS", "88.80", "88.80")
    assert (fields["trade_no"], fields["out_trade_no"], fields["app_id"]) == (
        trade["trade_no"], trade["out_trade_no"], merchant["app_id"])
    assert fields["gmt_payment"] == ledger_view(sandbox, merchant["app_id"], trade["out_trade_no"])["gmt_payment"]
    assert "refund_fee" not in fields and "gmt_close" not in fields
    assert not verify_notification(ali, {**fields, "total_amount": "0.01"})

    query = ali.api_alipay_trade_query(out_trade_no=trade["out_trade_no"])
    assert (query["trade_status"], query["receipt_amount"], query["send_pay_date"]) == (
        "TRADE_SUCCESS", "88.80", fields["gmt_payment"])
    assert ali.api_alipay_trade_close(out_trade_no=trade["out_trade_no"])["sub_code"] == "ACQ.TRADE_STATUS_ERROR"


def test_notification_is_retried_until_the_merchant_replies_success(sandbox, merchant):
    with NotifyReceiver(replies=["fail", "FAIL"]) as stubborn:
        ali = alipay_client(sandbox.url, merchant, notify_url=stubborn.url)
        trade = create(ali)
        pay(sandbox, trade["trade_no"]).raise_for_status()
        deliveries = stubborn.wait_for(3, timeout=10)
        time.sleep(1.0)  # the next retry would come 0.6 s after the third attempt if it had not been acknowledged
        assert len(stubborn.received) == 3
    assert len({d["body"] for d in deliveries}) == 1
    assert all(verify_notification(ali, d["fields"]) for d in deliveries)


def test_failed_payment_leaves_the_trade_waiting_without_notification(ali, sandbox, receiver):
    trade = create(ali)
    assert pay(sandbox, trade["trade_no"], "fail").json()["trade_status"] == "WAIT_BUYER_PAY"
    time.sleep(0.3)
    assert receiver.received == []
    assert ali.api_alipay_trade_query(trade_no=trade["trade_no"])["trade_status"] == "WAIT_BUYER_PAY"


def test_paying_a_closed_trade_conflicts_unless_the_payment_raced_the_close(ali, sandbox, receiver):
    trade = create(ali)
    ali.api_alipay_trade_close(trade_no=trade["trade_no"])
    assert pay(sandbox, trade["trade_no"]).status_code == 409
    assert pay(sandbox, trade["trade_no"], ignore_close=True).status_code == 200
    assert receiver.wait_for(1)[0]["fields"]["trade_status"] == "TRADE_SUCCESS"
    assert ali.api_alipay_trade_query(trade_no=trade["trade_no"])["trade_status"] == "TRADE_SUCCESS"
    assert pay(sandbox, trade["trade_no"]).status_code == 409


def test_unpaid_trade_closes_at_its_time_expire(ali, sandbox, receiver):
    expire = (sandbox_now(sandbox) + timedelta(minutes=15)).strftime("%Y-%m-%d %H:%M:%S")
    assert create(ali, time_expire="tomorrow")["sub_code"] == "ACQ.INVALID_PARAMETER"
    trade = create(ali, time_expire=expire)
    assert ali.api_alipay_trade_query(trade_no=trade["trade_no"])["trade_status"] == "WAIT_BUYER_PAY"
    with shifted_clock(sandbox, 16 * 60):
        assert ali.api_alipay_trade_query(trade_no=trade["trade_no"])["trade_status"] == "TRADE_CLOSED"
        assert pay(sandbox, trade["trade_no"]).status_code == 409
        assert create(ali, out_trade_no=trade["out_trade_no"], time_expire=expire)["sub_code"] == "ACQ.TRADE_HAS_CLOSE"
    assert ledger_view(sandbox, ali.appid, trade["out_trade_no"])["gmt_close"] == expire
    assert receiver.received == []


def test_control_endpoints_answer_bad_input_with_4xx(sandbox, merchant):
    base = f"{sandbox.url}/sandbox/alipay"
    assert requests.post(f"{base}/pay", data="nope", timeout=5).status_code == 422
    assert pay(sandbox, "", "success").status_code == 422
    assert pay(sandbox, "2026000000", "maybe").status_code == 422
    assert pay(sandbox, "2026000000", ignore_close="yes").status_code == 422
    assert pay(sandbox, "2026000000").status_code == 404
    assert requests.post(f"{base}/codes", json={}, timeout=5).status_code == 422
    assert requests.post(f"{base}/codes", json={"app_id": "2021000"}, timeout=5).status_code == 404
    bad_user = {"app_id": merchant["app_id"], "user_id": "12345"}
    assert requests.post(f"{base}/codes", json=bad_user, timeout=5).status_code == 422
    assert requests.get(f"{base}/trades/X", timeout=5).status_code == 422
    assert requests.get(f"{base}/trades/X", params={"app_id": merchant["app_id"]}, timeout=5).status_code == 404
    assert requests.post(f"{base}/settings", json={"refund_window_days": -1}, timeout=5).status_code == 422
    assert requests.post(f"{base}/settings", json={"other": 1}, timeout=5).status_code == 422
    garbage = requests.get(f"{sandbox.url}/alipay/gateway.do", params={"app_id": merchant["app_id"]}, timeout=5)
    assert garbage.status_code == 200 and '"code":"40001"' in garbage.text


def test_response_tampered_in_transit_is_rejected_by_the_sdk(sandbox, merchant):
    ali = alipay_client(sandbox.url, merchant)
    trade = create(ali, "3.00")
    with TamperingProxy(sandbox.url, lambda body: body) as honest:
        assert alipay_client(honest.url, merchant).api_alipay_trade_query(trade_no=trade["trade_no"])["code"] == "10000"
    inflate = lambda body: body.replace(b'"total_amount":"3.00"', b'"total_amount":"300.00"')  # noqa: E731
    with TamperingProxy(sandbox.url, inflate) as proxy:
        with pytest.raises(AliPayValidationError):
            alipay_client(proxy.url, merchant).api_alipay_trade_query(trade_no=trade["trade_no"])


def test_request_signed_with_the_wrong_key_gets_a_signed_refusal(sandbox, merchant):
    stranger_key = RSA.generate(2048).export_key().decode()
    impostor = alipay_client(sandbox.url, merchant, app_private_key=stranger_key)
    number = out_trade_no()
    refused = impostor.api_alipay_trade_create("x", number, "1.00", buyer_id=BUYER)
    assert (refused["code"], refused["msg"], refused["sub_code"]) == ("40002", "Invalid Arguments",
                                                                      "isv.invalid-signature")
    assert alipay_client(sandbox.url, merchant).api_alipay_trade_query(out_trade_no=number)["sub_code"] == \
        "ACQ.TRADE_NOT_EXIST"


def test_unknown_app_and_unknown_method_surface_as_sdk_exceptions(sandbox, merchant):
    stranger = alipay_client(sandbox.url, {**merchant, "app_id": "2021999999999999"})
    with pytest.raises(AliPayException, match="isv.invalid-app-id"):
        stranger.api_alipay_trade_query(out_trade_no="X")
    with pytest.raises(AliPayException, match="isv.invalid-method"):
        alipay_client(sandbox.url, merchant).server_api("alipay.trade.teleport", {"out_trade_no": "X"})


def test_posted_form_and_rsa_sha1_signatures_are_accepted(sandbox, merchant):
    trade = create(alipay_client(sandbox.url, merchant))
    legacy = alipay_client(sandbox.url, merchant, sign_type="RSA")
    assert legacy.api_alipay_trade_query(trade_no=trade["trade_no"])["trade_status"] == "WAIT_BUYER_PAY"
    ali = alipay_client(sandbox.url, merchant)
    form = ali.sign_data(ali.build_body("alipay.trade.query", {"trade_no": trade["trade_no"]}))
    raw = requests.post(ali._gateway, data=form, timeout=5,
                        headers={"Content-Type": "application/x-www-form-urlencoded;charset=utf-8"}).text
    assert ali._verify_and_return_sync_response(raw, "alipay_trade_query_response")["out_trade_no"] == \
        trade["out_trade_no"]


def test_refunds_are_idempotent_bounded_and_notified(ali, sandbox, receiver):
    unpaid = create(ali)
    assert ali.api_alipay_trade_refund("1.00", trade_no=unpaid["trade_no"], out_request_no="R0")["sub_code"] == \
        "ACQ.TRADE_STATUS_ERROR"
    trade = paid_trade(ali, sandbox, receiver, "10.00")
    number = trade["out_trade_no"]
    first = ali.api_alipay_trade_refund("3.00", out_trade_no=number, out_request_no="R1", refund_reason="退号")
    assert (first["code"], first["fund_change"], first["refund_fee"]) == ("10000", "Y", "3.00")
    repeat = ali.api_alipay_trade_refund("3.00", out_trade_no=number, out_request_no="R1")
    assert (repeat["fund_change"], repeat["refund_fee"]) == ("N", "3.00")
    assert ali.api_alipay_trade_refund("4.00", out_trade_no=number, out_request_no="R1")["sub_code"] == \
        "ACQ.DISCORDANT_REPEAT_REQUEST"
    assert ali.api_alipay_trade_refund("7.01", out_trade_no=number, out_request_no="R2")["sub_code"] == \
        "ACQ.REASON_TRADE_REFUND_FEE_ERR"
    rest = ali.api_alipay_trade_refund("7.00", trade_no=trade["trade_no"], out_request_no="R2")
    assert (rest["fund_change"], rest["refund_fee"]) == ("Y", "10.00")
    assert ali.api_alipay_trade_query(out_trade_no=number)["trade_status"] == "TRADE_CLOSED"

    found = ali.api_alipay_trade_fastpay_refund_query("R1", out_trade_no=number)
    assert (found["refund_status"], found["refund_amount"], found["total_amount"]) == (
        "REFUND_SUCCESS", "3.00", "10.00")
    unknown = ali.api_alipay_trade_fastpay_refund_query("R9", out_trade_no=number)
    assert unknown["code"] == "10000" and "refund_status" not in unknown and "refund_amount" not in unknown

    payment, partial, full = receiver.wait_for(3)
    time.sleep(0.3)
    assert len(receiver.received) == 3  # the idempotent repeat moved no money and sent nothing
    assert all(verify_notification(ali, n["fields"]) for n in (payment, partial, full))
    partial, full = partial["fields"], full["fields"]
    assert (partial["trade_status"], partial["refund_fee"], partial["out_biz_no"]) == ("TRADE_SUCCESS", "3.00", "R1")
    assert partial["gmt_refund"] and "gmt_close" not in partial
    assert (full["trade_status"], full["refund_fee"], full["out_biz_no"]) == ("TRADE_CLOSED", "10.00", "R2")
    assert full["gmt_close"] and full["total_amount"] == "10.00"


def test_refund_window_ends_in_trade_finished(ali, sandbox, receiver):
    settings = f"{sandbox.url}/sandbox/alipay/settings"
    trade = paid_trade(ali, sandbox, receiver)
    requests.post(settings, json={"refund_window_days": 30}, timeout=5).raise_for_status()
    try:
        with shifted_clock(sandbox, 29 * DAY_S):
            inside = ali.api_alipay_trade_refund("1.00", trade_no=trade["trade_no"], out_request_no="W1")
            assert inside["fund_change"] == "Y"
        with shifted_clock(sandbox, 31 * DAY_S):
            late = ali.api_alipay_trade_refund("1.00", trade_no=trade["trade_no"], out_request_no="W2")
            assert (late["code"], late["sub_code"]) == ("40004", "ACQ.TRADE_HAS_FINISHED")
            assert ali.api_alipay_trade_query(trade_no=trade["trade_no"])["trade_status"] == "TRADE_FINISHED"
            again = ali.api_alipay_trade_refund("1.00", trade_no=trade["trade_no"], out_request_no="W1")
            assert again["fund_change"] == "N"
    finally:
        requests.post(settings, json={"refund_window_days": 365}, timeout=5).raise_for_status()
    assert ali.api_alipay_trade_query(trade_no=trade["trade_no"])["trade_status"] == "TRADE_SUCCESS"


def test_oauth_token_exchanges_a_code_once(ali, sandbox, merchant):
    issued = issue_code(sandbox, merchant["app_id"])
    token = ali.server_api("alipay.system.oauth.token", grant_type="authorization_code", code=issued["code"])
    assert token["user_id"] == issued["user_id"] and token["open_id"] == issued["open_id"]
    assert token["access_token"] and token["expires_in"] > 0 and token["re_expires_in"] > 0
    assert "code" not in token
    with pytest.raises(AliPayException, match="isv.code-invalid"):
        ali.server_api("alipay.system.oauth.token", grant_type="authorization_code", code=issued["code"])
    with pytest.raises(AliPayException, match="isv.code-invalid"):
        ali.server_api("alipay.system.oauth.token", grant_type="authorization_code", code="not-a-code")

    same_user = issue_code(sandbox, merchant["app_id"], user_id=issued["user_id"])
    again = ali.server_api("alipay.system.oauth.token", grant_type="authorization_code", code=same_user["code"])
    assert (again["user_id"], again["open_id"]) == (issued["user_id"], issued["open_id"])

    stale = issue_code(sandbox, merchant["app_id"])
    with shifted_clock(sandbox, 301):
        with pytest.raises(AliPayException, match="isv.code-invalid"):
            ali.server_api("alipay.system.oauth.token", grant_type="authorization_code", code=stale["code"])


def _read_bill(content: bytes) -> tuple[list[str], dict[str, str]]:
    with zipfile.ZipFile(io.BytesIO(content)) as raw:
        assert all(not info.flag_bits & 0x800 for info in raw.infolist())  # GBK names, no UTF-8 flag
    with zipfile.ZipFile(io.BytesIO(content), metadata_encoding="gbk") as archive:
        return archive.namelist(), {name: archive.read(name).decode("gbk") for name in archive.namelist()}


def _yuan(text: str) -> Decimal:
    return Decimal(text.strip())


def test_bill_download_matches_the_ledger(sandbox):
    merchant = new_alipay_merchant(sandbox)
    with NotifyReceiver() as receiver:
        ali = alipay_client(sandbox.url, merchant, notify_url=receiver.url)
        first = paid_trade(ali, sandbox, receiver, "100.00")
        second = paid_trade(ali, sandbox, receiver, "0.50")
        ali.api_alipay_trade_refund("25.00", trade_no=first["trade_no"], out_request_no="RB1")
    create(ali, "9.99")  # unpaid trades are not on the bill
    day = sandbox_now(sandbox).date().isoformat()
    answer = ali.server_api("alipay.data.dataservice.bill.downloadurl.query", {"bill_type": "trade", "bill_date": day})
    download = requests.get(answer["bill_download_url"], timeout=10)
    assert download.status_code == 200
    stem = f"{merchant['pid']}_{day.replace('-', '')}"
    assert f'filename="{stem}.csv.zip"' in download.headers["Content-Disposition"]
    names, files = _read_bill(download.content)
    assert sorted(names) == sorted([f"{stem}_业务明细.csv", f"{stem}_业务明细(汇总).csv"])

    lines = files[f"{stem}_业务明细.csv"].splitlines()
    assert lines[0] == "#支付宝业务明细查询" and lines[1] == f"#账号：[{merchant['pid']}]"
    assert lines[2].startswith(f"#起始日期：[{day[:4]}年{day[5:7]}月{day[8:]}日 00:00:00]   终止日期：[")
    start = next(i for i, line in enumerate(lines) if "业务明细列表" in line and "结束" not in line)
    end = next(i for i, line in enumerate(lines) if "业务明细列表结束" in line)
    rows = list(csv.DictReader(lines[start + 1:end]))
    assert all(row["支付宝交易号"].endswith("\t") and row["商户订单号"].endswith("\t") for row in rows)
    by_type = {(row["商户订单号"].strip(), row["业务类型"].strip()): row for row in rows}
    assert set(by_type) == {(first["out_trade_no"], "交易"), (second["out_trade_no"], "交易"),
                            (first["out_trade_no"], "退款")}

    ledger_first = ledger_view(sandbox, merchant["app_id"], first["out_trade_no"])
    pay_row, refund_row = by_type[(first["out_trade_no"], "交易")], by_type[(first["out_trade_no"], "退款")]
    assert pay_row["支付宝交易号"].strip() == ledger_first["trade_no"]
    assert (_yuan(pay_row["订单金额（元）"]), _yuan(pay_row["服务费（元）"])) == (Decimal("100.00"), Decimal("-0.60"))
    assert pay_row["完成时间"] == ledger_first["gmt_payment"]
    assert (_yuan(refund_row["商家实收（元）"]), _yuan(refund_row["服务费（元）"])) == (Decimal("-25.00"),
                                                                              Decimal("0.15"))
    assert refund_row["退款批次号/请求号"].strip() == "RB1"
    assert refund_row["完成时间"] == ledger_first["refunds"][0]["gmt_refund"][:19]
    assert _yuan(by_type[(second["out_trade_no"], "交易")]["服务费（元）"]) == Decimal("0.00")  # 0.003 rounds down

    trailer = lines[end + 1:]
    assert trailer[0] == "#交易合计：2笔，商家实收共100.50元，商家优惠共0.00元"
    assert trailer[1] == "#退款合计：1笔，商家实收共-25.00元，商家优惠共0.00元"
    assert trailer[2].startswith("#导出时间：[")
    summary = files[f"{stem}_业务明细(汇总).csv"].splitlines()
    header = next(i for i, line in enumerate(summary) if line.startswith("日期,"))
    totals = next(csv.DictReader(summary[header:header + 2]))
    assert (totals["交易订单总笔数"], totals["退款订单总笔数"], totals["商家实收（元）"], totals["实收净额（元）"]) == (
        "2", "1", "75.50", "75.05")


def test_bill_links_expire_and_future_days_have_no_bill(ali, sandbox):
    today = sandbox_now(sandbox).date()
    future = ali.server_api("alipay.data.dataservice.bill.downloadurl.query",
                            {"bill_type": "trade", "bill_date": today.replace(year=today.year + 1).isoformat()})
    assert (future["code"], future["sub_code"]) == ("40004", "isp.bill_not_exist")
    bad = ali.server_api("alipay.data.dataservice.bill.downloadurl.query",
                         {"bill_type": "trade", "bill_date": "2024-13-01"})
    assert bad["code"] == "40004"
    url = ali.server_api("alipay.data.dataservice.bill.downloadurl.query",
                         {"bill_type": "trade", "bill_date": today.isoformat()})["bill_download_url"]
    with shifted_clock(sandbox, 31):
        expired = requests.get(url, timeout=5)
    assert expired.status_code == 404 and expired.headers["Content-Type"].startswith("text/plain")
    assert requests.get(url, timeout=5).status_code == 200


def test_ledger_survives_a_sandbox_restart(tmp_path):
    first = SandboxProcess(data_dir=tmp_path).start()
    try:
        merchant = first.merchants()["alipay"][0]
        ali = alipay_client(first.url, merchant)
        trade = create(ali, "20.00")
        pay(first, trade["trade_no"]).raise_for_status()
        refund = ali.api_alipay_trade_refund("5.00", trade_no=trade["trade_no"], out_request_no="S1")
        assert refund["fund_change"] == "Y"
    finally:
        first.stop()
    second = SandboxProcess(data_dir=tmp_path).start()
    try:
        assert second.merchants()["alipay"][0]["app_id"] == merchant["app_id"]
        ali = alipay_client(second.url, merchant)
        assert ali.api_alipay_trade_query(trade_no=trade["trade_no"])["trade_status"] == "TRADE_SUCCESS"
        repeat = ali.api_alipay_trade_refund("5.00", trade_no=trade["trade_no"], out_request_no="S1")
        assert (repeat["fund_change"], repeat["refund_fee"]) == ("N", "5.00")
        refunds = ledger_view(second, merchant["app_id"], trade["out_trade_no"])["refunds"]
        assert [r["out_request_no"] for r in refunds] == ["S1"]
    finally:
        second.stop()
