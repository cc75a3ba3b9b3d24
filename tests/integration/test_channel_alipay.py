"""The Alipay adapter through python-alipay-sdk against the sandbox Alipay gateway over HTTP."""
from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from Cryptodome.Hash import SHA256
from Cryptodome.PublicKey import RSA
from Cryptodome.Signature import PKCS1_v1_5

from app.channels import (
    AlipayChannel,
    AlreadyPaid,
    ChannelRejected,
    ChannelUnavailable,
    InvalidNotification,
    InvalidResponse,
    NotificationKind,
    RefundState,
    TradeState,
    channel_for,
)
from app.domain.bills import AlipayBill, BillKind
from tests.integration.channel_helpers import (
    NotificationReceiver,
    TamperingProxy,
    alipay_config,
    control,
    new_merchant,
    out_trade_no,
    sandbox_today,
)
from tests.servers import free_port

CLIENT_IP = "127.0.0.1"
SHANGHAI = timezone(timedelta(hours=8))


@pytest.fixture(scope="module")
def merchant(sandbox):
    return sandbox.merchants()["alipay"][0]


@pytest.fixture(scope="module")
def channel(sandbox, merchant) -> AlipayChannel:
    return channel_for(alipay_config(sandbox.url, merchant))


@pytest.fixture(scope="module")
def other_merchant(sandbox):
    return new_merchant(sandbox.url, "alipay")


@pytest.fixture(scope="module")
def other_channel(sandbox, other_merchant) -> AlipayChannel:
    return channel_for(alipay_config(sandbox.url, other_merchant))


@pytest.fixture(scope="module")
def receiver(channel):
    with NotificationReceiver(channel.notification_ack(True)) as running:
        yield running


def user_of(sandbox, channel) -> str:
    return control(sandbox.url, "alipay/codes", {"app_id": channel.config.app_id})["user_id"]


def create(sandbox, channel, receiver, amount_fen=2500, payer=None):
    number = out_trade_no()
    prepay = channel.create_payment(number, amount_fen, "体检套餐", payer or user_of(sandbox, channel), receiver.url,
                                    datetime.now(UTC) + timedelta(minutes=15), CLIENT_IP)
    return number, prepay


def paid_trade(sandbox, channel, receiver, amount_fen=2500):
    number, prepay = create(sandbox, channel, receiver, amount_fen)
    control(sandbox.url, "alipay/pay", {"trade_no": prepay.trade_no, "outcome": "success"})
    return number, prepay


def notification_of(receiver, number: str, *needles: bytes) -> bytes:
    return receiver.wait_for(f"out_trade_no={number}".encode(), *needles)


def alipay_signed(fields: dict, alipay_private_key: str) -> bytes:
    """A notification signed as Alipay signs it (all fields but sign and sign_type, sorted, RSA2)."""
    fields = {k: v for k, v in fields.items() if k != "sign"}
    message = "&".join(f"{k}={fields[k]}" for k in sorted(fields) if k != "sign_type")
    signer = PKCS1_v1_5.new(RSA.import_key(alipay_private_key))
    fields["sign"] = base64.b64encode(signer.sign(SHA256.new(message.encode()))).decode()
    return urlencode(fields).encode()


def test_login_with_a_good_and_a_bad_code(sandbox, channel):
    issued = control(sandbox.url, "alipay/codes", {"app_id": channel.config.app_id})
    identity = channel.login(issued["code"])
    assert identity.openid == issued["user_id"]
    for bad in (issued["code"], "not-a-code"):  # a code works once
        with pytest.raises(ChannelRejected) as refused:
            channel.login(bad)
        assert refused.value.code == "invalid_code"


def test_create_pay_query_and_notification(sandbox, channel, receiver, merchant):
    payer = user_of(sandbox, channel)
    number, prepay = create(sandbox, channel, receiver, 2501, payer)
    assert prepay.trade_no and prepay.pay_params is None
    pending = channel.query_payment(number)
    assert (pending.state, pending.raw_state, pending.amount_fen, pending.paid_at) == (
        TradeState.PENDING, "WAIT_BUYER_PAY", 2501, None)

    control(sandbox.url, "alipay/pay", {"trade_no": prepay.trade_no, "outcome": "success"})
    paid = channel.query_payment(number)
    assert (paid.state, paid.raw_state, paid.amount_fen, paid.channel_trade_no, paid.payer_id) == (
        TradeState.PAID, "TRADE_SUCCESS", 2501, prepay.trade_no, payer)
    assert abs(paid.paid_at - datetime.now(UTC)) < timedelta(minutes=2)

    body = notification_of(receiver, number)
    assert channel.notification_kind(body, "application/x-www-form-urlencoded") is NotificationKind.PAYMENT
    note = channel.parse_payment_notification(body, "application/x-www-form-urlencoded")
    assert (note.out_trade_no, note.channel_trade_no, note.amount_fen, note.paid_at, note.app_id, note.payer_id) == (
        number, prepay.trade_no, 2501, paid.paid_at, merchant["app_id"], payer)


def test_query_of_an_unknown_trade(channel):
    unknown = channel.query_payment(out_trade_no())
    assert (unknown.state, unknown.raw_state) == (TradeState.NOT_FOUND, "ACQ.TRADE_NOT_EXIST")


def test_close_unpaid_then_paid(sandbox, channel, receiver):
    number, _ = create(sandbox, channel, receiver)
    channel.close_payment(number)
    assert channel.query_payment(number).state is TradeState.CLOSED
    channel.close_payment(number)

    paid_number, _ = paid_trade(sandbox, channel, receiver)
    with pytest.raises(AlreadyPaid) as refused:
        channel.close_payment(paid_number)
    assert refused.value.code == "ACQ.TRADE_STATUS_ERROR"
    assert channel.query_payment(paid_number).state is TradeState.PAID


def test_refunds_are_idempotent_bounded_and_notified(sandbox, channel, receiver):
    number, _ = paid_trade(sandbox, channel, receiver, 1000)
    first = channel.refund(number, number + "R1", 1000, 300, "患者取消", None)
    assert (first.amount_fen, first.state, first.refund_total_fen) == (300, RefundState.SUCCEEDED, 300)
    again = channel.refund(number, number + "R1", 1000, 300, "患者取消", None)
    assert (again.state, again.refund_total_fen) == (RefundState.SUCCEEDED, 300)

    for refund_no, amount, code in ((number + "R2", 701, "ACQ.REASON_TRADE_REFUND_FEE_ERR"),
                                    (number + "R1", 400, "ACQ.DISCORDANT_REPEAT_REQUEST")):
        with pytest.raises(ChannelRejected) as refused:
            channel.refund(number, refund_no, 1000, amount, "", None)
        assert refused.value.code == code and refused.value.message

    found = channel.query_refund(number, number + "R1")
    assert (found.state, found.amount_fen, found.raw_status) == (RefundState.SUCCEEDED, 300, "REFUND_SUCCESS")
    assert abs(found.succeeded_at - datetime.now(UTC)) < timedelta(minutes=2)
    assert channel.query_refund(number, number + "R9").state is RefundState.NOT_FOUND
    assert channel.query_refund(out_trade_no(), "R1").state is RefundState.NOT_FOUND

    body = notification_of(receiver, number, f"out_biz_no={number}R1".encode())
    assert channel.notification_kind(body) is NotificationKind.REFUND
    note = channel.parse_refund_notification(body)
    assert (note.out_trade_no, note.out_refund_no, note.refund_total_fen, note.amount_fen, note.state) == (
        number, number + "R1", 300, None, RefundState.SUCCEEDED)
    with pytest.raises(InvalidNotification, match="not a payment"):
        channel.parse_payment_notification(body)

    rest = channel.refund(number, number + "R3", 1000, 700, "", None)
    assert rest.refund_total_fen == 1000
    assert channel.query_payment(number).state is TradeState.REFUNDED


def test_forged_and_foreign_notifications_are_rejected(sandbox, channel, other_channel, receiver, merchant,
                                                       other_merchant):
    number, _ = paid_trade(sandbox, channel, receiver, 1800)
    genuine = notification_of(receiver, number)
    fields = dict(parse_qsl(genuine.decode()))
    channel.parse_payment_notification(genuine)

    # Another first character (a fixed "A" left one signature in 64 that starts with "A" unchanged).
    bad_sign = urlencode({**fields, "sign": ("B" if fields["sign"][0] == "A" else "A") + fields["sign"][1:]}).encode()
    tampered_amount = urlencode({**fields, "total_amount": "0.01"}).encode()
    for forged in (bad_sign, tampered_amount, urlencode({k: v for k, v in fields.items() if k != "sign"}).encode(),
                   b"%zz=1", b"no-equals-sign"):
        with pytest.raises(InvalidNotification):
            channel.parse_payment_notification(forged)
    with pytest.raises(InvalidNotification, match="bad signature"):
        channel.parse_payment_notification(tampered_amount)

    # Correctly signed by this app's Alipay key, but naming another app.
    with pytest.raises(InvalidNotification, match="app_id"):
        channel.parse_payment_notification(alipay_signed({**fields, "app_id": other_merchant["app_id"]},
                                                         merchant["alipay_private_key"]))
    assert channel.parse_payment_notification(alipay_signed(fields, merchant["alipay_private_key"])).amount_fen == 1800

    # Another app's genuine notification arriving at this app's endpoint.
    foreign_number, _ = paid_trade(sandbox, other_channel, receiver, 1800)
    foreign = notification_of(receiver, foreign_number)
    other_channel.parse_payment_notification(foreign)
    with pytest.raises(InvalidNotification):
        channel.parse_payment_notification(foreign)


def test_altered_gateway_answers_are_rejected(sandbox, channel, receiver, merchant):
    number, _ = paid_trade(sandbox, channel, receiver, 2500)

    def halve_the_amount(body: bytes) -> bytes:
        return body.replace(b'"total_amount":"25.00"', b'"total_amount":"12.50"')

    with TamperingProxy(sandbox.url, halve_the_amount) as proxy:
        tampered = AlipayChannel(alipay_config(sandbox.url, merchant, f"{proxy.url}/alipay/gateway.do"))
        with pytest.raises(InvalidResponse, match="signature"):
            tampered.query_payment(number)
        assert proxy.altered == 1
    with TamperingProxy(sandbox.url, lambda body: body) as proxy:
        untouched = AlipayChannel(alipay_config(sandbox.url, merchant, f"{proxy.url}/alipay/gateway.do"))
        assert untouched.query_payment(number).amount_fen == 2500
    # Alipay reads `timestamp` as GMT+8 whatever the host's time zone (this host runs on UTC).
    sent = dict(parse_qsl(urlsplit(proxy.paths[0]).query))["timestamp"]
    assert abs(datetime.strptime(sent, "%Y-%m-%d %H:%M:%S") - datetime.now(SHANGHAI).replace(tzinfo=None)) < timedelta(
        minutes=2)


def test_an_unreachable_gateway_is_unavailable(sandbox, merchant):
    dead = f"http://127.0.0.1:{free_port()}/alipay/gateway.do"
    with pytest.raises(ChannelUnavailable):
        AlipayChannel(alipay_config(sandbox.url, merchant, dead)).query_payment(out_trade_no())


def test_todays_bill_lists_our_trades_and_refunds(sandbox, channel, receiver, tmp_path):
    first, first_prepay = paid_trade(sandbox, channel, receiver, 12345)
    second, second_prepay = paid_trade(sandbox, channel, receiver, 1)
    channel.refund(first, first + "R1", 12345, 2345, "", None)

    path = channel.download_bill(sandbox_today(sandbox.url), tmp_path / "alipay.csv.zip")
    assert path == tmp_path / "alipay.csv.zip" and not (tmp_path / "alipay.csv.zip.part").exists()
    bill = AlipayBill(path)
    ours = [row for row in bill if row.out_trade_no in (first, second)]
    assert bill.totals is not None and bill.totals.trade_count >= 2 and bill.totals.refund_count >= 1
    assert sorted((r.kind, r.out_trade_no, r.channel_trade_no, r.out_refund_no, r.amount_fen) for r in ours) == sorted([
        (BillKind.PAYMENT, first, first_prepay.trade_no, None, 12345),
        (BillKind.PAYMENT, second, second_prepay.trade_no, None, 1),
        (BillKind.REFUND, first, first_prepay.trade_no, first + "R1", 2345),
    ])
    fees = {(r.kind, r.out_trade_no): r.fee_fen for r in ours}
    assert fees[(BillKind.PAYMENT, first)] > 0 and fees[(BillKind.REFUND, first)] < 0


def test_no_bill_for_a_day_to_come(sandbox, channel, tmp_path):
    assert channel.download_bill(sandbox_today(sandbox.url) + timedelta(days=1), tmp_path / "none.zip") is None
    assert not (tmp_path / "none.zip").exists()

