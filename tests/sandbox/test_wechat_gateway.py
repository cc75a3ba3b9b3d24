"""The sandbox WeChat world, driven over loopback with wechatpy exactly as the platform drives WeChat."""
from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
import requests
import xmltodict
from wechatpy.exceptions import WeChatClientException, WeChatPayException
from wechatpy.pay.utils import calculate_signature, calculate_signature_hmac

from mini_program_mock.wechat import wire
from tests.processes import SandboxProcess
from tests.sandbox.wechat_helpers import (
    FAIL_REPLY,
    NotifyReceiver,
    control_pay,
    create_order,
    issue_code,
    login_client,
    new_merchant,
    pay_client,
    shanghai_compact,
    shifted_clock,
    trade_view,
    wait_until,
)


def _no() -> str:
    return uuid.uuid4().hex[:24]


@pytest.fixture
def md5_merchant(sandbox):
    return new_merchant(sandbox, "MD5")


@pytest.fixture
def receiver():
    with NotifyReceiver() as rec:
        yield rec


def _paid_order(sandbox, merchant, total_fee, notify_url="http://127.0.0.1:9/unused", **extra):
    pay = pay_client(sandbox.url, merchant)
    out_trade_no = _no()
    order = create_order(pay, out_trade_no, total_fee, notify_url, **extra)
    assert control_pay(sandbox.url, order["prepay_id"]).status_code == 200
    return pay, out_trade_no


def _pay_error(call) -> WeChatPayException:
    with pytest.raises(WeChatPayException) as info:
        call()
    return info.value


def test_signature_matches_the_official_vector_and_wechatpy():
    fields = {"appid": "wxd930ea5d5a258f4f", "mch_id": "10000100", "device_info": "1000", "body": "test",
              "nonce_str": "ibuaiVcKdpRxkhJA"}
    key = "192006250b4c09247ec02edce69f6a2d"
    assert wire.sign(fields, key) == "9A0A8659F005D6984697E2CA0A9CF3B7"
    assert wire.sign(fields, key, "HMAC-SHA256") == calculate_signature_hmac(fields, key)


# --- login -----------------------------------------------------------------
def test_login_code_works_once_and_keeps_the_openid(sandbox):
    app = sandbox.merchants()["wechat"][0]
    client = login_client(sandbox.url, app["appid"], app["app_secret"])
    first = issue_code(sandbox.url, app["appid"], openid="o_patient_zhang")
    session = client.wxa.code_to_session(first["code"])
    assert session["openid"] == "o_patient_zhang" and session["session_key"] and session["unionid"]
    again = client.wxa.code_to_session(issue_code(sandbox.url, app["appid"], openid="o_patient_zhang")["code"])
    assert (again["openid"], again["unionid"]) == (session["openid"], session["unionid"])
    with pytest.raises(WeChatClientException) as reused:
        client.wxa.code_to_session(first["code"])
    assert reused.value.errcode == 40029
    with pytest.raises(WeChatClientException) as bad:
        client.wxa.code_to_session("not-a-code")
    assert bad.value.errcode == 40029


def test_login_without_openid_makes_a_new_user_per_code(sandbox):
    app = sandbox.merchants()["wechat"][0]
    client = login_client(sandbox.url, app["appid"], app["app_secret"])
    one, two = issue_code(sandbox.url, app["appid"]), issue_code(sandbox.url, app["appid"])
    assert one["openid"] != two["openid"]
    assert client.wxa.code_to_session(two["code"])["openid"] == two["openid"]


def test_login_refuses_wrong_secret_unknown_app_other_app_and_expired_code(sandbox):
    app = sandbox.merchants()["wechat"][0]
    other = new_merchant(sandbox)
    code = issue_code(sandbox.url, app["appid"])["code"]
    cases = [(login_client(sandbox.url, app["appid"], "wrong-secret"), 40125),
             (login_client(sandbox.url, "wx_unknown_app", app["app_secret"]), 40013),
             (login_client(sandbox.url, other["appid"], other["app_secret"]), 40029)]
    for client, errcode in cases:
        with pytest.raises(WeChatClientException) as info:
            client.wxa.code_to_session(code)
        assert info.value.errcode == errcode
    client = login_client(sandbox.url, app["appid"], app["app_secret"])
    with shifted_clock(sandbox.url, 301), pytest.raises(WeChatClientException) as expired:
        client.wxa.code_to_session(code)
    assert expired.value.errcode == 40029
    assert client.wxa.code_to_session(code)["openid"]  # none of the refusals above used the code up


def test_code_control_route_rejects_bad_input(sandbox):
    url = f"{sandbox.url}/sandbox/wechat/codes"
    assert requests.post(url, data="nope", timeout=5).status_code == 422
    assert requests.post(url, json={"appid": "wx_unknown"}, timeout=5).status_code == 404
    assert requests.post(url, json={"appid": sandbox.merchants()["wechat"][0]["appid"], "openid": 7},
                         timeout=5).status_code == 422


# --- payment and its notification --------------------------------------------
@pytest.mark.parametrize("sign_type", ["MD5", "HMAC-SHA256"])
def test_payment_notification_arrives_signed_with_the_merchants_sign_type(sandbox, receiver, sign_type):
    merchant = new_merchant(sandbox, sign_type)
    pay = pay_client(sandbox.url, merchant)
    out_trade_no = _no()
    order = create_order(pay, out_trade_no, 2500, f"{receiver.url}/notify", attach="booking:42",
                         sign_type=sign_type, user_id="o_payer")
    reply_signer = calculate_signature_hmac if sign_type == "HMAC-SHA256" else calculate_signature
    assert order["sign"] == reply_signer({k: v for k, v in order.items() if k != "sign"}, merchant["api_key"])
    assert control_pay(sandbox.url, order["prepay_id"]).status_code == 200

    note = xmltodict.parse(receiver.wait_for(1)[0])["xml"]
    assert note["sign"] == reply_signer({k: v for k, v in note.items() if k != "sign"}, merchant["api_key"])
    if sign_type == "MD5":
        assert pay.parse_payment_result(receiver.received()[0])["total_fee"] == 2500
    else:
        assert note["sign_type"] == "HMAC-SHA256"
    assert (note["return_code"], note["result_code"]) == ("SUCCESS", "SUCCESS")
    assert (note["appid"], note["mch_id"]) == (merchant["appid"], merchant["mch_id"])
    assert note["out_trade_no"] == out_trade_no
    assert (note["total_fee"], note["cash_fee"], note["openid"], note["attach"]) == ("2500", "2500", "o_payer",
                                                                                      "booking:42")
    assert note["transaction_id"].startswith("4200") and len(note["transaction_id"]) == 28
    assert note["time_end"] == trade_view(sandbox.url, merchant["appid"], out_trade_no)["time_end"]
    assert len(note["time_end"]) == 14 and note["trade_type"] == "JSAPI" and note["bank_type"]


def test_notification_is_retried_until_the_receiver_says_success(sandbox):
    merchant = new_merchant(sandbox)
    with NotifyReceiver(replies=[FAIL_REPLY, FAIL_REPLY]) as rec:
        _paid_order(sandbox, merchant, 100, f"{rec.url}/notify")
        bodies = rec.wait_for(3)
        time.sleep(0.3)  # 15 s, 15 s and 30 s scaled are milliseconds: a fourth would have come by now
        assert len(rec.received()) == 3
    assert len({xmltodict.parse(b)["xml"]["transaction_id"] for b in bodies}) == 1


def test_unifiedorder_repeat_returns_the_same_prepay_id_and_refuses_changes(sandbox, md5_merchant):
    pay = pay_client(sandbox.url, md5_merchant)
    out_trade_no = _no()
    first = create_order(pay, out_trade_no, 990, "http://127.0.0.1:9/n")
    assert create_order(pay, out_trade_no, 990, "http://127.0.0.1:9/n")["prepay_id"] == first["prepay_id"]
    assert _pay_error(lambda: create_order(pay, out_trade_no, 991, "http://127.0.0.1:9/n")).errcode == \
        "OUT_TRADE_NO_USED"
    control_pay(sandbox.url, first["prepay_id"])
    assert _pay_error(lambda: create_order(pay, out_trade_no, 990, "http://127.0.0.1:9/n")).errcode == "ORDERPAID"


def _order_fields(merchant: dict, **override) -> dict:
    fields = {"appid": merchant["appid"], "body": "b", "out_trade_no": _no(), "total_fee": "100",
              "spbill_create_ip": "127.0.0.1", "notify_url": "http://127.0.0.1:9/n", "trade_type": "JSAPI",
              "openid": "o_x", "fee_type": "CNY", "attach": "a"}
    return {**fields, **override}


def test_unifiedorder_accepts_the_base_fields(sandbox, md5_merchant):
    pay = pay_client(sandbox.url, md5_merchant)
    assert pay.post("pay/unifiedorder", data=_order_fields(md5_merchant))["prepay_id"].startswith("wx")


@pytest.mark.parametrize("override", [
    {"total_fee": "0"}, {"total_fee": "1.5"}, {"total_fee": "-3"}, {"total_fee": None}, {"openid": None},
    {"body": None}, {"notify_url": "ftp://x/n"}, {"notify_url": "http://x/n?a=1"}, {"spbill_create_ip": "nowhere"},
    {"time_expire": "2024-01-01"}, {"time_start": "20240101120000", "time_expire": "20240101110000"},
    {"fee_type": "USD"}, {"out_trade_no": "has space"}, {"trade_type": "NATIVE"}, {"attach": "x" * 128},
])
def test_unifiedorder_validates_fields(sandbox, md5_merchant, override):
    pay = pay_client(sandbox.url, md5_merchant)
    error = _pay_error(lambda: pay.post("pay/unifiedorder", data=_order_fields(md5_merchant, **override)))
    assert (error.return_code, error.result_code, error.errcode) == ("SUCCESS", "FAIL", "PARAM_ERROR")


def test_protocol_faults_answer_return_code_fail(sandbox, md5_merchant):
    wrong_key = pay_client(sandbox.url, md5_merchant, api_key="0" * 32)
    error = _pay_error(lambda: create_order(wrong_key, _no(), 100, "http://127.0.0.1:9/n"))
    assert (error.return_code, error.return_msg) == ("FAIL", "签名错误")
    other_app = pay_client(sandbox.url, {**md5_merchant, "appid": sandbox.merchants()["wechat"][0]["appid"]})
    assert _pay_error(lambda: other_app.order.query(out_trade_no="x")).errcode == "APPID_MCHID_NOT_MATCH"
    unknown_mch = pay_client(sandbox.url, {**md5_merchant, "mch_id": "1"})
    assert _pay_error(lambda: unknown_mch.order.query(out_trade_no="x")).return_code == "FAIL"
    garbage = requests.post(f"{sandbox.url}/wxpay/pay/unifiedorder", data=b"not xml", timeout=5)
    assert garbage.status_code == 200 and xmltodict.parse(garbage.text)["xml"]["return_code"] == "FAIL"
    dtd = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "y">]><xml><a>&e;</a></xml>'
    assert "FAIL" in requests.post(f"{sandbox.url}/wxpay/pay/orderquery", data=dtd, timeout=5).text
    assert requests.get(f"{sandbox.url}/wxpay/pay/orderquery", timeout=5).status_code == 405


def test_a_hmac_signed_request_is_accepted_from_an_md5_merchant(sandbox, md5_merchant):
    pay = pay_client(sandbox.url, md5_merchant)
    assert create_order(pay, _no(), 100, "http://127.0.0.1:9/n", sign_type="HMAC-SHA256")["prepay_id"]


# --- order states, close, expiry -----------------------------------------------
def test_orderquery_follows_the_trade_through_its_states(sandbox, md5_merchant):
    pay = pay_client(sandbox.url, md5_merchant)
    out_trade_no = _no()
    order = create_order(pay, out_trade_no, 500, "http://127.0.0.1:9/n")
    assert pay.order.query(out_trade_no=out_trade_no)["trade_state"] == "NOTPAY"
    assert control_pay(sandbox.url, order["prepay_id"], "fail").status_code == 200
    assert pay.order.query(out_trade_no=out_trade_no)["trade_state"] == "PAYERROR"
    assert control_pay(sandbox.url, order["prepay_id"]).status_code == 200
    paid = pay.order.query(out_trade_no=out_trade_no)
    assert (paid["trade_state"], paid["total_fee"], paid["cash_fee"]) == ("SUCCESS", "500", "500")
    assert pay.order.query(transaction_id=paid["transaction_id"])["out_trade_no"] == out_trade_no
    assert control_pay(sandbox.url, order["prepay_id"]).status_code == 409
    pay.refund.apply(500, 100, _no(), out_trade_no=out_trade_no)
    assert pay.order.query(out_trade_no=out_trade_no)["trade_state"] == "REFUND"
    assert _pay_error(lambda: pay.order.query(out_trade_no="nope")).errcode == "ORDERNOTEXIST"


def test_closeorder_closes_unpaid_refuses_paid_and_a_late_payment_can_ignore_it(sandbox, md5_merchant, receiver):
    pay = pay_client(sandbox.url, md5_merchant)
    out_trade_no = _no()
    order = create_order(pay, out_trade_no, 300, f"{receiver.url}/n")
    assert pay.order.close(out_trade_no)["result_code"] == "SUCCESS"
    assert pay.order.query(out_trade_no=out_trade_no)["trade_state"] == "CLOSED"
    assert _pay_error(lambda: pay.order.close(out_trade_no)).errcode == "ORDERCLOSED"
    refused = control_pay(sandbox.url, order["prepay_id"])
    assert refused.status_code == 409 and "closed" in refused.json()["message"]
    assert control_pay(sandbox.url, order["prepay_id"], ignore_close=True).json()["trade_state"] == "SUCCESS"
    assert xmltodict.parse(receiver.wait_for(1)[0])["xml"]["out_trade_no"] == out_trade_no
    assert _pay_error(lambda: pay.order.close(out_trade_no)).errcode == "ORDERPAID"


def test_an_expired_trade_cannot_be_paid_unless_the_payment_raced_the_close(sandbox, md5_merchant):
    pay = pay_client(sandbox.url, md5_merchant)
    now = datetime.now(timezone(timedelta(hours=8)))  # wechatpy formats these datetimes as they are
    out_trade_no = _no()
    order = create_order(pay, out_trade_no, 300, "http://127.0.0.1:9/n", time_start=now - timedelta(minutes=10),
                         time_expire=now - timedelta(minutes=5))
    assert trade_view(sandbox.url, md5_merchant["appid"], out_trade_no)["expired"] is True
    refused = control_pay(sandbox.url, order["prepay_id"])
    assert refused.status_code == 409 and "expired" in refused.json()["message"]
    assert pay.order.query(out_trade_no=out_trade_no)["trade_state"] == "NOTPAY"
    assert control_pay(sandbox.url, order["prepay_id"], ignore_close=True).status_code == 200
    assert pay.order.query(out_trade_no=out_trade_no)["trade_state"] == "SUCCESS"


def test_control_routes_reject_bad_input(sandbox, md5_merchant):
    assert control_pay(sandbox.url, "wx_no_such_prepay").status_code == 404
    assert control_pay(sandbox.url, "x", outcome="maybe").status_code == 422
    assert control_pay(sandbox.url, "x", ignore_close="yes").status_code == 422
    assert requests.post(f"{sandbox.url}/sandbox/wechat/pay", data="[]", timeout=5).status_code == 422
    assert requests.get(f"{sandbox.url}/sandbox/wechat/trades/x", timeout=5).status_code == 422
    assert requests.get(f"{sandbox.url}/sandbox/wechat/trades/x", params={"appid": md5_merchant["appid"]},
                        timeout=5).status_code == 404


# --- refunds ---------------------------------------------------------------------
def test_refunds_are_idempotent_bounded_and_notified_encrypted(sandbox, md5_merchant, receiver):
    pay, out_trade_no = _paid_order(sandbox, md5_merchant, 1000)
    notify = f"{receiver.url}/refund"
    first = pay.refund.apply(1000, 300, "R1" + out_trade_no, out_trade_no=out_trade_no, notify_url=notify)
    again = pay.refund.apply(1000, 300, "R1" + out_trade_no, out_trade_no=out_trade_no, notify_url=notify)
    assert again["refund_id"] == first["refund_id"]
    assert _pay_error(lambda: pay.refund.apply(1000, 400, "R1" + out_trade_no, out_trade_no=out_trade_no)).errcode \
        == "INVALID_REQUEST"
    over = _pay_error(lambda: pay.refund.apply(1000, 800, "R2" + out_trade_no, out_trade_no=out_trade_no))
    assert over.errcode == "ERROR" and "大于" in over.errmsg
    assert _pay_error(lambda: pay.refund.apply(999, 100, "R2" + out_trade_no, out_trade_no=out_trade_no)).errcode \
        == "PARAM_ERROR"
    second = pay.refund.apply(1000, 700, "R2" + out_trade_no, transaction_id=first["transaction_id"],
                              notify_url=notify)
    assert _pay_error(lambda: pay.refund.apply(1000, 1, "R3" + out_trade_no, out_trade_no=out_trade_no)).errcode \
        == "ERROR"

    notes = {n["out_refund_no"]: n for n in (pay.parse_refund_notify_result(b) for b in receiver.wait_for(2))}
    assert len(receiver.received()) == 2 and "<sign>" not in receiver.received()[0]
    assert set(notes) == {"R1" + out_trade_no, "R2" + out_trade_no}
    note = notes["R1" + out_trade_no]
    assert (note["refund_id"], note["refund_fee"], note["total_fee"], note["refund_status"]) == \
        (first["refund_id"], 300, 1000, "SUCCESS")
    assert (note["out_trade_no"], note["transaction_id"]) == (out_trade_no, first["transaction_id"])
    assert datetime.strptime(note["success_time"], "%Y-%m-%d %H:%M:%S") and note["refund_recv_accout"]
    assert notes["R2" + out_trade_no]["refund_id"] == second["refund_id"]
    view = trade_view(sandbox.url, md5_merchant["appid"], out_trade_no)
    assert view["refunded_fee"] == 1000 and [r["refund_status"] for r in view["refunds"]] == ["SUCCESS"] * 2


def test_refund_refused_on_unpaid_trade_and_after_fifty_refunds(sandbox, md5_merchant):
    pay = pay_client(sandbox.url, md5_merchant)
    unpaid = _no()
    create_order(pay, unpaid, 100, "http://127.0.0.1:9/n")
    assert _pay_error(lambda: pay.refund.apply(100, 1, _no(), out_trade_no=unpaid)).errcode == "TRADE_STATE_ERROR"
    assert _pay_error(lambda: pay.refund.apply(100, 1, _no(), out_trade_no="nope")).errcode == "ORDERNOTEXIST"
    pay, out_trade_no = _paid_order(sandbox, md5_merchant, 100)
    for n in range(50):
        pay.refund.apply(100, 1, f"{out_trade_no}-{n}", out_trade_no=out_trade_no)
    assert "50" in _pay_error(lambda: pay.refund.apply(100, 1, _no(), out_trade_no=out_trade_no)).errmsg


def test_refund_refused_a_year_after_payment(sandbox, md5_merchant):
    pay, out_trade_no = _paid_order(sandbox, md5_merchant, 100)
    with shifted_clock(sandbox.url, 366 * 86400):
        assert "期限" in _pay_error(lambda: pay.refund.apply(100, 1, _no(), out_trade_no=out_trade_no)).errmsg
    assert pay.refund.apply(100, 1, _no(), out_trade_no=out_trade_no)["refund_fee"] == "1"


def test_refundquery_by_each_key_lists_indexed_refunds(sandbox, md5_merchant):
    pay, out_trade_no = _paid_order(sandbox, md5_merchant, 1000)
    made = [pay.refund.apply(1000, fee, f"{out_trade_no}-{fee}", out_trade_no=out_trade_no) for fee in (100, 200)]
    by_trade = wait_until(lambda: (lambda r: r if r["refund_status_1"] == "SUCCESS" else None)(
        pay.refund.query(out_trade_no=out_trade_no)))
    assert (by_trade["refund_count"], by_trade["refund_fee"]) == ("2", "300")
    assert [(by_trade[f"out_refund_no_{n}"], by_trade[f"refund_fee_{n}"]) for n in (0, 1)] == \
        [(made[0]["out_refund_no"], "100"), (made[1]["out_refund_no"], "200")]
    assert len(by_trade["refund_success_time_0"]) == 19
    assert pay.refund.query(transaction_id=made[0]["transaction_id"])["refund_count"] == "2"
    one = pay.refund.query(out_refund_no=made[1]["out_refund_no"])
    assert (one["refund_count"], one["refund_id_0"]) == ("1", made[1]["refund_id"])
    assert pay.refund.query(refund_id=made[0]["refund_id"])["out_refund_no_0"] == made[0]["out_refund_no"]
    assert _pay_error(lambda: pay.refund.query(out_refund_no="nope")).errcode == "REFUNDNOTEXIST"


# --- bills -----------------------------------------------------------------------------
def _split(line: str) -> list[str]:
    assert line.startswith("`"), line
    return [cell[1:] for cell in line.split(",")]


def _yuan(cells: list[str], header: list[str], column: str) -> Decimal:
    return Decimal(cells[header.index(column)])


def test_downloadbill_layouts_and_totals(sandbox):
    merchant = new_merchant(sandbox)
    pay, big = _paid_order(sandbox, merchant, 1000)
    _paid_order(sandbox, merchant, 1)
    pay.refund.apply(1000, 300, "R" + big, out_trade_no=big)
    view = wait_until(lambda: (lambda v: v if v["refunds"][0]["refund_status"] == "SUCCESS" else None)(
        trade_view(sandbox.url, merchant["appid"], big)))
    day = view["time_end"][:8]

    expected = {"ALL": (27, 3), "SUCCESS": (20, 2), "REFUND": (29, 1)}
    for bill_type, (width, row_count) in expected.items():
        text = pay.tools.download_bill(day, bill_type)
        assert isinstance(text, str) and "\n" not in text.replace("\r\n", "")
        lines = text.split("\r\n")
        assert lines[-1] == "" and len(lines) == row_count + 4
        header, rows = lines[0].split(","), [_split(line) for line in lines[1:1 + row_count]]
        assert len(header) == width and all(len(r) == width for r in rows)
        assert lines[-3] == ("总交易单数,应结订单总金额,退款总金额,充值券退款总金额,"
                             "手续费总金额,订单总金额,申请退款总金额")
        totals = _split(lines[-2])
        assert int(totals[0]) == row_count
        assert Decimal(totals[1]) == sum(_yuan(r, header, "应结订单金额") for r in rows)
        assert Decimal(totals[4]) == sum(_yuan(r, header, "手续费") for r in rows)
        if "订单金额" in header:
            assert Decimal(totals[5]) == sum(_yuan(r, header, "订单金额") for r in rows)
        if "退款金额" in header:
            assert Decimal(totals[2]) == sum(_yuan(r, header, "退款金额") for r in rows) == Decimal("3.00")
        by_state = {r[header.index("交易状态")]: r for r in rows}
        if bill_type == "ALL":
            paid = next(r for r in rows if r[header.index("商户订单号")] == big and r[9] == "SUCCESS")
            assert [paid[header.index(c)] for c in ("应结订单金额", "微信退款单号", "手续费", "费率")] == \
                ["10.00", "0", "0.06", "0.60%"]
            assert Decimal(totals[4]) == Decimal("0.04")  # 0.06 + 0.00 (1 fen) - 0.02 (3 yuan refunded)
        if bill_type in ("ALL", "REFUND"):
            refund = by_state["REFUND"]
            columns = ("应结订单金额", "退款金额", "退款类型", "退款状态", "手续费")
            assert [refund[header.index(c)] for c in columns] == ["0.00", "3.00", "ORIGINAL", "SUCCESS", "-0.02"]
            assert refund[header.index("交易时间")] == view["refunds"][0]["success_time"]
        if bill_type == "REFUND":
            assert header[14:16] == ["退款申请时间", "退款成功时间"]


def test_downloadbill_no_bill_for_empty_or_future_days(sandbox):
    pay = pay_client(sandbox.url, new_merchant(sandbox))
    tomorrow = datetime.now(timezone(timedelta(hours=8))) + timedelta(days=1)
    for day in ("20200101", tomorrow.strftime("%Y%m%d")):
        error = _pay_error(lambda day=day: pay.tools.download_bill(day))
        assert (error.return_code, error.return_msg) == ("FAIL", "No Bill Exist")
    assert _pay_error(lambda: pay.tools.download_bill("20200101", "BOGUS")).return_msg == "invalid bill_type"
    assert _pay_error(lambda: pay.tools.download_bill("2020-1-1")).return_msg == "invalid bill_date"


# --- durability and the log -----------------------------------------------------------------
def test_restart_keeps_the_ledger_and_settles_and_notifies_a_pending_refund(tmp_path):
    first = SandboxProcess(data_dir=tmp_path, time_scale=0.2).start()  # refunds settle after 1 s
    with NotifyReceiver() as rec:
        try:
            merchant = first.merchants()["wechat"][0]
            pay, out_trade_no = _paid_order(first, merchant, 800, f"{rec.url}/pay")
            refund = pay.refund.apply(800, 200, "R" + out_trade_no, out_trade_no=out_trade_no,
                                      notify_url=f"{rec.url}/refund")
            assert pay.refund.query(out_trade_no=out_trade_no)["refund_status_0"] == "PROCESSING"
        finally:
            first.stop()
        stopped_at = datetime.now(UTC)
        second = SandboxProcess(data_dir=tmp_path, time_scale=0.2).start()
        try:
            assert second.merchants()["wechat"][0] == merchant
            pay = pay_client(second.url, merchant)
            rec.wait_for(2)
            paid_note = next(xmltodict.parse(b)["xml"] for b in rec.received() if "req_info" not in b)
            refund_note = pay.parse_refund_notify_result(next(b for b in rec.received() if "req_info" in b))
            assert paid_note["out_trade_no"] == out_trade_no
            assert (refund_note["refund_id"], refund_note["refund_status"]) == (refund["refund_id"], "SUCCESS")
            log = requests.get(f"{second.url}/sandbox/log", timeout=5).json()
            handed_over = [e for e in log if e["kind"] == "wechat_notify_enqueued" and e["notification"] == "refund"]
            assert [datetime.fromisoformat(e["at"]) > stopped_at for e in handed_over] == [True]
            assert pay.order.query(out_trade_no=out_trade_no)["trade_state"] == "REFUND"
            assert pay.refund.query(out_refund_no="R" + out_trade_no)["refund_status_0"] == "SUCCESS"
            assert "`REFUND" in pay.tools.download_bill(shanghai_compact(datetime.now(UTC))[:8])
        finally:
            second.stop()


def test_requests_are_logged_without_keys(sandbox, md5_merchant):
    pay = pay_client(sandbox.url, md5_merchant)
    out_trade_no = _no()
    create_order(pay, out_trade_no, 100, "http://127.0.0.1:9/n")
    log = requests.get(f"{sandbox.url}/sandbox/log", params={"limit": 2000}, timeout=5).json()
    assert any(e["kind"] == "wechat_pay_request" and e.get("out_trade_no") == out_trade_no for e in log)
    text = str(log)
    assert md5_merchant["api_key"] not in text and md5_merchant["app_secret"] not in text
