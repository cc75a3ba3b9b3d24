"""The WeChat Pay adapter through wechatpy against the sandbox WeChat gateways over HTTP."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests
import xmltodict

from app.channels import (
    AlreadyPaid,
    ChannelRejected,
    ChannelUnavailable,
    InvalidNotification,
    InvalidResponse,
    NotificationKind,
    RefundState,
    TradeState,
    WeChatPayChannel,
    channel_for,
    wechat_sign,
)
from app.domain.bills import BillKind, WeChatBill
from tests.integration.channel_helpers import (
    NotificationReceiver,
    TamperingProxy,
    control,
    new_merchant,
    out_trade_no,
    sandbox_today,
    wait_until,
    wechat_config,
)
from tests.servers import free_port

CLIENT_IP = "127.0.0.1"


@pytest.fixture(scope="module")
def md5_merchant(sandbox):
    return next(m for m in sandbox.merchants()["wechat"] if m["sign_type"] == "MD5")


@pytest.fixture(scope="module")
def channel(sandbox, md5_merchant) -> WeChatPayChannel:
    return channel_for(wechat_config(sandbox.url, md5_merchant))


@pytest.fixture(scope="module")
def hmac_channel(sandbox) -> WeChatPayChannel:
    return channel_for(wechat_config(sandbox.url, new_merchant(sandbox.url, "wechat", sign_type="HMAC-SHA256")))


@pytest.fixture(scope="module")
def other_channel(sandbox) -> WeChatPayChannel:
    return channel_for(wechat_config(sandbox.url, new_merchant(sandbox.url, "wechat", sign_type="MD5")))


@pytest.fixture(scope="module")
def receiver(channel):
    with NotificationReceiver(channel.notification_ack(True)) as running:
        yield running


def openid_of(sandbox, channel) -> str:
    return control(sandbox.url, "wechat/codes", {"appid": channel.config.app_id})["openid"]


def create(sandbox, channel, receiver, amount_fen=2500, payer=None):
    number = out_trade_no()
    prepay = channel.create_payment(number, amount_fen, "挂号费", payer or openid_of(sandbox, channel), receiver.url,
                                    datetime.now(UTC) + timedelta(minutes=15), CLIENT_IP)
    return number, prepay


def paid_trade(sandbox, channel, receiver, amount_fen=2500):
    number, prepay = create(sandbox, channel, receiver, amount_fen)
    control(sandbox.url, "wechat/pay", {"prepay_id": prepay.prepay_id, "outcome": "success"})
    return number, prepay


def resigned(body: bytes, api_key: str, sign_type: str = "MD5", **changes) -> bytes:
    fields = {**xmltodict.parse(body)["xml"], **changes}
    fields["sign"] = wechat_sign.sign(fields, api_key, sign_type)
    return xmltodict.unparse({"xml": fields}).encode()


def sandbox_trade(sandbox, merchant, number) -> dict:
    return requests.get(f"{sandbox.url}/sandbox/wechat/trades/{number}", params={"appid": merchant["appid"]},
                        timeout=5).json()


def wait_for_refund_notification(channel, receiver, out_refund_no: str) -> bytes:
    """Refund notifications are encrypted: find ours by decrypting each."""
    def ours():
        for body in list(receiver.bodies):
            if b"req_info" in body:
                try:
                    if channel.parse_refund_notification(body).out_refund_no == out_refund_no:
                        return body
                except InvalidNotification:
                    continue
        return None
    return wait_until(ours, what=f"the refund notification of {out_refund_no}")


def test_login_with_a_good_and_a_bad_code(sandbox, channel):
    issued = control(sandbox.url, "wechat/codes", {"appid": channel.config.app_id})
    identity = channel.login(issued["code"])
    assert identity.openid == issued["openid"]
    assert identity.unionid
    for bad in (issued["code"], "not-a-code"):  # a code works once
        with pytest.raises(ChannelRejected) as refused:
            channel.login(bad)
        assert refused.value.code == "invalid_code"


def test_create_pay_query_and_notification(sandbox, channel, receiver, md5_merchant):
    payer = openid_of(sandbox, channel)
    number, prepay = create(sandbox, channel, receiver, 2500, payer)
    params = dict(prepay.pay_params)
    assert set(params) == {"timeStamp", "nonceStr", "package", "signType", "paySign"}
    assert params["package"] == f"prepay_id={prepay.prepay_id}" and params["signType"] == "MD5"
    pay_sign = params.pop("paySign")
    assert wechat_sign.verify({**params, "appId": md5_merchant["appid"], "sign": pay_sign}, md5_merchant["api_key"],
                              "MD5")
    pending = channel.query_payment(number)
    assert (pending.state, pending.raw_state, pending.paid_at) == (TradeState.PENDING, "NOTPAY", None)

    control(sandbox.url, "wechat/pay", {"prepay_id": prepay.prepay_id, "outcome": "success"})
    paid = channel.query_payment(number)
    assert (paid.state, paid.raw_state, paid.amount_fen, paid.payer_id) == (TradeState.PAID, "SUCCESS", 2500, payer)
    assert paid.channel_trade_no and paid.paid_at.tzinfo is not None
    assert abs(paid.paid_at - datetime.now(UTC)) < timedelta(minutes=2)

    body = receiver.wait_for(number.encode())
    assert channel.notification_kind(body) is NotificationKind.PAYMENT
    note = channel.parse_payment_notification(body, "text/xml")
    assert (note.out_trade_no, note.channel_trade_no, note.amount_fen, note.paid_at) == (
        number, paid.channel_trade_no, 2500, paid.paid_at)
    assert (note.app_id, note.mch_id, note.payer_id) == (md5_merchant["appid"], md5_merchant["mch_id"], payer)


def test_query_of_an_unknown_trade(channel):
    assert channel.query_payment(out_trade_no()).state is TradeState.NOT_FOUND


def test_close_unpaid_then_paid(sandbox, channel, receiver):
    number, _ = create(sandbox, channel, receiver)
    channel.close_payment(number)
    assert channel.query_payment(number).state is TradeState.CLOSED
    channel.close_payment(number)  # closing a closed trade is not an error

    paid_number, _ = paid_trade(sandbox, channel, receiver)
    with pytest.raises(AlreadyPaid) as refused:
        channel.close_payment(paid_number)
    assert refused.value.code == "ORDERPAID"
    assert channel.query_payment(paid_number).state is TradeState.PAID


def test_refunds_are_idempotent_bounded_and_notified(sandbox, channel, receiver, md5_merchant):
    number, _ = paid_trade(sandbox, channel, receiver, 1000)
    first = channel.refund(number, number + "R1", 1000, 300, "患者取消", receiver.url)
    assert (first.out_refund_no, first.amount_fen, first.state) == (number + "R1", 300, RefundState.PROCESSING)
    again = channel.refund(number, number + "R1", 1000, 300, "患者取消", receiver.url)
    assert again.channel_refund_id == first.channel_refund_id
    trade = sandbox_trade(sandbox, md5_merchant, number)
    assert trade["refunded_fee"] == 300 and len(trade["refunds"]) == 1

    with pytest.raises(ChannelRejected) as refused:
        channel.refund(number, number + "R2", 1000, 701, "", receiver.url)
    assert refused.value.code == "ERROR" and "累计退款金额大于支付金额" in refused.value.message

    settled = wait_until(lambda: (r := channel.query_refund(number, number + "R1")).state is RefundState.SUCCEEDED
                         and r, what="the refund to settle")
    assert (settled.channel_refund_id, settled.amount_fen, settled.raw_status) == (
        first.channel_refund_id, 300, "SUCCESS")
    assert settled.succeeded_at.tzinfo is not None
    assert channel.query_refund(number, number + "R9").state is RefundState.NOT_FOUND

    body = wait_for_refund_notification(channel, receiver, number + "R1")
    assert channel.notification_kind(body) is NotificationKind.REFUND
    note = channel.parse_refund_notification(body)
    assert (note.out_trade_no, note.out_refund_no, note.channel_refund_id, note.amount_fen, note.state) == (
        number, number + "R1", first.channel_refund_id, 300, RefundState.SUCCEEDED)
    assert note.succeeded_at == settled.succeeded_at


def test_forged_and_foreign_payment_notifications_are_rejected(sandbox, channel, other_channel, receiver,
                                                                md5_merchant):
    number, _ = paid_trade(sandbox, channel, receiver, 1800)
    genuine = receiver.wait_for(number.encode())
    channel.parse_payment_notification(genuine)
    key = md5_merchant["api_key"]

    bad_sign = genuine.replace(b"<sign><![CDATA[", b"<sign><![CDATA[0", 1)
    tampered_amount = xmltodict.unparse({"xml": {**xmltodict.parse(genuine)["xml"], "total_fee": "1"}}).encode()
    for forged in (bad_sign, tampered_amount, resigned(genuine, key + "x", total_fee="1"), b"<xml><a>", b"plain"):
        with pytest.raises(InvalidNotification):
            channel.parse_payment_notification(forged)
    with pytest.raises(InvalidNotification, match="bad signature"):
        channel.parse_payment_notification(tampered_amount)

    # Signed with this merchant's key but naming another merchant: refused by the appid / mch_id check.
    other = other_channel.config
    with pytest.raises(InvalidNotification, match="appid"):
        channel.parse_payment_notification(resigned(genuine, key, appid=other.app_id))
    with pytest.raises(InvalidNotification, match="mch_id"):
        channel.parse_payment_notification(resigned(genuine, key, mch_id=other.mch_id))

    # Another merchant's genuine notification arriving at this merchant's endpoint.
    foreign_number, _ = paid_trade(sandbox, other_channel, receiver, 1800)
    foreign = receiver.wait_for(foreign_number.encode())
    other_channel.parse_payment_notification(foreign)
    with pytest.raises(InvalidNotification):
        channel.parse_payment_notification(foreign)


def test_foreign_and_forged_refund_notifications_are_rejected(sandbox, channel, other_channel, receiver):
    number, _ = paid_trade(sandbox, other_channel, receiver, 900)
    other_channel.refund(number, number + "R1", 900, 900, "", receiver.url)
    foreign = wait_for_refund_notification(other_channel, receiver, number + "R1")
    with pytest.raises(InvalidNotification, match="appid"):
        channel.parse_refund_notification(foreign)
    # The right appid and mch_id but a req_info encrypted with another key.
    fields = xmltodict.parse(foreign)["xml"]
    disguised = xmltodict.unparse({"xml": {**fields, "appid": channel.config.app_id,
                                           "mch_id": channel.config.mch_id}}).encode()
    with pytest.raises(InvalidNotification, match="decrypt"):
        channel.parse_refund_notification(disguised)


def test_hmac_sha256_merchant_end_to_end(sandbox, hmac_channel, receiver):
    config = hmac_channel.config
    identity = hmac_channel.login(control(sandbox.url, "wechat/codes", {"appid": config.app_id})["code"])
    number, prepay = create(sandbox, hmac_channel, receiver, 4200, identity.openid)
    params = dict(prepay.pay_params)
    assert params["signType"] == "HMAC-SHA256"
    pay_sign = params.pop("paySign")
    assert wechat_sign.verify({**params, "appId": config.app_id, "sign": pay_sign}, config.api_key, "HMAC-SHA256")

    control(sandbox.url, "wechat/pay", {"prepay_id": prepay.prepay_id, "outcome": "success"})
    paid = hmac_channel.query_payment(number)
    assert (paid.state, paid.amount_fen) == (TradeState.PAID, 4200)
    body = receiver.wait_for(number.encode())
    assert b"HMAC-SHA256" in body
    note = hmac_channel.parse_payment_notification(body)
    assert (note.out_trade_no, note.amount_fen, note.channel_trade_no) == (number, 4200, paid.channel_trade_no)
    # The same notification checked as MD5 would not pass: the adapter really verified HMAC-SHA256.
    assert not wechat_sign.verify(xmltodict.parse(body)["xml"], config.api_key, "MD5")

    refund = hmac_channel.refund(number, number + "R1", 4200, 4200, "", receiver.url)
    wait_until(lambda: hmac_channel.query_refund(number, number + "R1").state is RefundState.SUCCEEDED,
               what="the refund to settle")
    note = hmac_channel.parse_refund_notification(wait_for_refund_notification(hmac_channel, receiver,
                                                                               number + "R1"))
    assert (note.channel_refund_id, note.amount_fen) == (refund.channel_refund_id, 4200)
    assert hmac_channel.query_payment(number).state is TradeState.REFUNDED
    unpaid, _ = create(sandbox, hmac_channel, receiver, 100, identity.openid)
    hmac_channel.close_payment(unpaid)
    assert hmac_channel.query_payment(unpaid).state is TradeState.CLOSED

    # Every request named and used HMAC-SHA256 (the sandbox would also take MD5 without sign_type).
    log = requests.get(f"{sandbox.url}/sandbox/log", params={"limit": 2000}, timeout=5).json()
    calls = [e for e in log if e["kind"] == "wechat_pay_request" and e.get("out_trade_no") in (number, unpaid)]
    assert {e["endpoint"] for e in calls} == {"pay/unifiedorder", "pay/orderquery", "secapi/pay/refund",
                                              "pay/refundquery", "pay/closeorder"}
    assert all(e.get("sign_type") == "HMAC-SHA256" and e["return_code"] == "SUCCESS" for e in calls)


def test_altered_answers_are_rejected(sandbox, channel, receiver, md5_merchant):
    number, _ = paid_trade(sandbox, channel, receiver, 2500)

    def halve_the_amount(body: bytes) -> bytes:
        return body.replace(b"<total_fee>2500</total_fee>", b"<total_fee>1250</total_fee>")

    with TamperingProxy(sandbox.url, halve_the_amount) as proxy:
        tampered = WeChatPayChannel(wechat_config(sandbox.url, md5_merchant,
                                                  api_base_url=f"{proxy.url}/wxpay/"))
        with pytest.raises(InvalidResponse, match="signature"):
            tampered.query_payment(number)
        assert proxy.altered == 1
    with TamperingProxy(sandbox.url, lambda body: body) as proxy:
        untouched = WeChatPayChannel(wechat_config(sandbox.url, md5_merchant,
                                                   api_base_url=f"{proxy.url}/wxpay/"))
        assert untouched.query_payment(number).amount_fen == 2500


def test_an_unreachable_gateway_is_unavailable(sandbox, md5_merchant):
    dead = f"http://127.0.0.1:{free_port()}/"
    channel = WeChatPayChannel(wechat_config(sandbox.url, md5_merchant, api_base_url=dead))
    with pytest.raises(ChannelUnavailable):
        channel.query_payment(out_trade_no())


def test_todays_bill_lists_our_trades_and_refunds(sandbox, channel, receiver, tmp_path):
    first, _ = paid_trade(sandbox, channel, receiver, 12345)
    second, _ = paid_trade(sandbox, channel, receiver, 1)
    refund = channel.refund(first, first + "R1", 12345, 2345, "", receiver.url)
    wait_until(lambda: channel.query_refund(first, first + "R1").state is RefundState.SUCCEEDED,
               what="the refund to settle")
    trades = {n: channel.query_payment(n).channel_trade_no for n in (first, second)}

    path = channel.download_bill(sandbox_today(sandbox.url), tmp_path / "wechat.csv")
    assert path == tmp_path / "wechat.csv" and not (tmp_path / "wechat.csv.part").exists()
    with open(path, encoding="utf-8", newline="") as lines:
        bill = WeChatBill(lines)
        ours = [row for row in bill if row.out_trade_no in trades]
    assert bill.totals is not None and bill.totals.count >= 3
    assert sorted((r.kind, r.out_trade_no, r.channel_trade_no, r.out_refund_no, r.channel_refund_no, r.amount_fen,
                   r.status) for r in ours) == sorted([
        (BillKind.PAYMENT, first, trades[first], None, None, 12345, "SUCCESS"),
        (BillKind.PAYMENT, second, trades[second], None, None, 1, "SUCCESS"),
        (BillKind.REFUND, first, trades[first], first + "R1", refund.channel_refund_id, 2345, "SUCCESS"),
    ])
    fees = {(r.kind, r.out_trade_no): r.fee_fen for r in ours}
    assert fees[(BillKind.PAYMENT, first)] > 0 and fees[(BillKind.REFUND, first)] < 0


def test_no_bill_for_a_day_to_come(sandbox, channel, tmp_path):
    assert channel.download_bill(sandbox_today(sandbox.url) + timedelta(days=1), tmp_path / "none.csv") is None
    assert not (tmp_path / "none.csv").exists()
