"""Attacks on the channel notify endpoints and on refund state, each trying to break one rule.

Messages are made as the channel makes them: WeChat refund results AES-encrypted with a merchant's API key,
payment results signed with it, Alipay notifications signed with an Alipay private key the sandbox made for
that app. Each test checks that the attack changed nothing, and that the platform said why.

The module runs the platform in process on a database of its own: no worker of a platform left running by
an e2e test may settle, send or process anything here behind the test's back.
"""
from __future__ import annotations

import base64
import hashlib
import logging
import secrets
from datetime import datetime, timedelta
from urllib.parse import urlencode

import pytest
import requests
from Cryptodome.Hash import SHA256
from Cryptodome.PublicKey import RSA
from Cryptodome.Signature import PKCS1_v1_5
from sqlalchemy import event, select, text, update

from app.channels.base import NotificationKind
from app.db.encrypted import keyring_for
from app.db.models import HisOutbox, MerchantAccount, NotificationInbox, Order, PaymentAttempt, Refund, RefundRequest
from app.db.types import utcnow
from app.domain.money import fen_to_yuan
from app.services.payments import notifications
from app.services.refunds import card_refunds, executor
from tests.e2e.refund_helpers import wechat_refund_notification
from tests.integration.reconciliation_support import (
    OwnClinic,
    Payment,
    adapter,
    own_clinic,
    own_settings,
    paid,
    unpaid_topup,
)
from workers.dispatcher import lease_spec

SHANGHAI_TIME = "%Y-%m-%d %H:%M:%S"
NOTIFY_LOG = "app.services.payments.notifications"


@pytest.fixture(scope="module")
def app(settings, postgres_url):
    from app.factory import create_app

    flask_app = create_app(own_settings(settings, postgres_url, "hpay_security_notify"))
    yield flask_app
    flask_app.extensions["hpay_runtime"].close()


@pytest.fixture(scope="module")
def rt(app):
    return app.extensions["hpay_runtime"]


@pytest.fixture(scope="module")
def clinic_a(rt, sandbox) -> OwnClinic:
    return own_clinic(rt, sandbox.url)


@pytest.fixture(scope="module")
def clinic_b(rt, sandbox) -> OwnClinic:
    return own_clinic(rt, sandbox.url)


# --- the world: card refunds in flight, and what a card holds ------------------------------------

def card_refund(rt, clinic: OwnClinic, channel: str, amount_fen: int) -> tuple[Payment, Refund]:
    """A card topped up with `amount_fen` on `channel`, then a window refund of all of it: the HIS took the
    amount off the card and the refund part is ready to go to the channel (pending)."""
    payment = paid(rt, clinic, channel, amount_fen)
    request_no = card_refunds.request_refund(rt, clinic_id=clinic.id, card_no=payment.card_no,
                                             amount_fen=amount_fen, origin="window", account_ids=None)
    with rt.db.session() as session:
        request = session.scalar(select(RefundRequest).where(RefundRequest.refund_request_no == request_no))
        [part] = request.parts
        assert part.status == "pending", part.status
        session.expunge(part)
    assert his_balance(clinic, payment.card_no) == 0
    return payment, part


def sent_card_refund(rt, clinic: OwnClinic, amount_fen: int) -> tuple[Payment, Refund]:
    """A WeChat card refund sent to the channel, whose outcome the platform has not heard yet."""
    payment, part = card_refund(rt, clinic, "wechat", amount_fen)
    assert executor.advance(rt, part.id) == "processing"
    return payment, part


def his_balance(clinic: OwnClinic, card_no: str) -> int:
    return requests.get(f"{clinic.sandbox_url}/sandbox/cards/{card_no}", timeout=10).json()["balance_fen"]


def part_now(rt, part_id: int) -> Refund:
    with rt.db.session() as session:
        part = session.get(Refund, part_id)
        session.expunge(part)
        return part


def restores_of(rt, part: Refund) -> list[HisOutbox]:
    with rt.db.session() as session:
        return list(session.scalars(select(HisOutbox).where(HisOutbox.refund_request_id == part.refund_request_id,
                                                           HisOutbox.kind == "refund_restore")))


def refunded_fen(rt, order_no: str) -> int:
    with rt.db.session() as session:
        return session.scalar(select(Order.refunded_fen).where(Order.order_no == order_no))


def inbox_count(rt) -> int:
    with rt.db.session() as session:
        return len(session.scalars(select(NotificationInbox.id)).all())


def attempt_of(rt, out_trade_no: str) -> PaymentAttempt:
    with rt.db.session() as session:
        attempt = session.scalar(select(PaymentAttempt).where(PaymentAttempt.out_trade_no == out_trade_no))
        session.expunge(attempt)
        return attempt


def refused_because(caplog, *needles: str) -> bool:
    return any(record.levelno >= logging.WARNING and all(n in record.getMessage() for n in needles)
               for record in caplog.records)


# --- messages as the channels make them ----------------------------------------------------------

def wechat_refund_result(clinic: OwnClinic, payment: Payment, refund_no: str, refund_fee: int, status: str,
                         rt, refund_id: str | None = None) -> bytes:
    """A refund result for `payment` naming `refund_no`, encrypted with `clinic`'s API key."""
    attempt = attempt_of(rt, payment.out_trade_no)
    trade = {"transaction_id": attempt.channel_trade_no, "out_trade_no": payment.out_trade_no,
             "total_fee": str(payment.amount_fen)}
    refund = {"refund_id": refund_id or "50" + secrets.token_hex(14), "out_refund_no": refund_no,
              "refund_fee": str(refund_fee), "refund_status": status,
              "success_time": datetime.now().strftime(SHANGHAI_TIME) if status == "SUCCESS" else ""}
    return wechat_refund_notification(clinic.merchants["wechat"], trade, refund)


def post_wechat_refund(client, clinic: OwnClinic, body: bytes):
    return client.post(f"/notify/wechat/{clinic.code}/refund", data=body, content_type="text/xml")


def alipay_signed(fields: dict, alipay_private_key: str) -> bytes:
    """Signed as Alipay signs: every field but sign and sign_type, sorted, RSA2 with Alipay's private key."""
    message = "&".join(f"{k}={fields[k]}" for k in sorted(fields) if k not in ("sign", "sign_type"))
    signature = PKCS1_v1_5.new(RSA.import_key(alipay_private_key)).sign(SHA256.new(message.encode()))
    return urlencode({**fields, "sign": base64.b64encode(signature).decode()}).encode()


def alipay_fields(clinic: OwnClinic, payment: Payment, rt, **extra) -> dict:
    attempt = attempt_of(rt, payment.out_trade_no)
    total = fen_to_yuan(payment.amount_fen)
    now = datetime.now().strftime(SHANGHAI_TIME)
    return {"notify_time": now, "notify_type": "trade_status_sync", "notify_id": secrets.token_hex(18),
            "app_id": clinic.merchants["alipay"]["app_id"], "charset": "utf-8", "version": "1.0", "sign_type": "RSA2",
            "trade_no": attempt.channel_trade_no, "out_trade_no": payment.out_trade_no,
            "buyer_id": "2088000000000001", "trade_status": "TRADE_SUCCESS", "total_amount": total,
            "receipt_amount": total, "buyer_pay_amount": total, "gmt_create": now, "gmt_payment": now,
            "subject": "充值", **extra}


def alipay_refund_result(clinic: OwnClinic, payment: Payment, refund_no: str, refunded_total_fen: int, rt) -> bytes:
    fields = alipay_fields(clinic, payment, rt, out_biz_no=refund_no, refund_fee=fen_to_yuan(refunded_total_fen),
                           gmt_refund=datetime.now().strftime(SHANGHAI_TIME) + ".123")
    return alipay_signed(fields, clinic.merchants["alipay"]["alipay_private_key"])


def post_alipay(client, clinic: OwnClinic, body: bytes):
    return client.post(f"/notify/alipay/{clinic.code}", data=body,
                       content_type="application/x-www-form-urlencoded; charset=utf-8")


def wechat_payment_result(merchant: dict, out_trade_no: str, total_fee: int, sign) -> bytes:
    fields = {"appid": merchant["appid"], "mch_id": merchant["mch_id"], "nonce_str": secrets.token_hex(8),
              "result_code": "SUCCESS", "return_code": "SUCCESS", "openid": "o-attacker", "trade_type": "JSAPI",
              "bank_type": "CMC", "total_fee": str(total_fee), "cash_fee": str(total_fee), "fee_type": "CNY",
              "transaction_id": "42000000" + secrets.token_hex(10), "out_trade_no": out_trade_no,
              "time_end": datetime.now().strftime("%Y%m%d%H%M%S")}
    fields = sign(fields)
    return ("<xml>" + "".join(f"<{k}><![CDATA[{v}]]></{k}>" for k, v in fields.items()) + "</xml>").encode()


def signed_by_hand(fields: dict, key: str, sign_type: str, name_it: bool) -> dict:
    """A v2 signature computed from the protocol (PROTOCOLS.md), not with our code: our signer refuses an empty
    key, and the attacks need exactly what an attacker would compute."""
    import hmac

    if name_it:
        fields = {**fields, "sign_type": sign_type}
    message = "&".join(f"{k}={v}" for k, v in sorted(fields.items()) if v) + f"&key={key}"
    digest = (hashlib.md5(message.encode()).hexdigest() if sign_type == "MD5"
              else hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest())
    return {**fields, "sign": digest.upper()}


def post_wechat_payment(client, clinic: OwnClinic, body: bytes):
    return client.post(f"/notify/wechat/{clinic.code}/pay", data=body, content_type="text/xml")


def order_status(rt, order_no: str) -> str:
    with rt.db.session() as session:
        return session.scalar(select(Order.status).where(Order.order_no == order_no))


# --- item 2: one clinic's key settling another clinic's refund ----------------------------------

@pytest.mark.parametrize("named_trade", ["the attacker's own payment", "the victim's payment"])
def test_another_clinics_key_cannot_close_a_refund(rt, client, clinic_a, clinic_b, caplog, named_trade):
    victim_payment, victim_part = sent_card_refund(rt, clinic_a, 3000)
    own_payment = paid(rt, clinic_b, "wechat", 3000)
    trade = own_payment if named_trade == "the attacker's own payment" else victim_payment
    inbox_before = inbox_count(rt)

    # REFUNDCLOSE, encrypted with clinic B's key, posted to B's endpoint, naming A's refund.
    reply = post_wechat_refund(client, clinic_b, wechat_refund_result(clinic_b, trade, victim_part.refund_no, 3000,
                                                                      "REFUNDCLOSE", rt))

    assert reply.status_code == 200 and b"FAIL" in reply.data
    assert inbox_count(rt) == inbox_before
    after = part_now(rt, victim_part.id)
    assert (after.status, after.failure_code) == ("processing", None)
    assert restores_of(rt, victim_part) == [], "the card must not be given back money the channel is refunding"
    assert his_balance(clinic_a, victim_payment.card_no) == 0
    assert refused_because(caplog, clinic_b.code, trade.out_trade_no)


def test_processing_refuses_a_foreign_refund_an_older_version_stored(rt, clinic_a, clinic_b, caplog):
    victim_payment, victim_part = sent_card_refund(rt, clinic_a, 3000)
    own_payment = paid(rt, clinic_b, "wechat", 3000)
    body = wechat_refund_result(clinic_b, own_payment, victim_part.refund_no, 3000, "REFUNDCLOSE", rt)
    # Stored as the ingestion of an older version did (the payment exists on B's account, so it passed).
    with rt.db.session() as session:
        row = NotificationInbox(channel="wechat", kind=NotificationKind.REFUND.value, clinic_code=clinic_b.code,
                                merchant_account_id=clinic_b.account("wechat"), out_trade_no=own_payment.out_trade_no,
                                body=body.decode(), content_type="text/xml", status="received", attempts=0,
                                next_attempt_at=utcnow(), received_at=utcnow())
        session.add(row)
        session.flush()
        inbox_id = row.id

    assert notifications.process(rt, inbox_id) == "failed"

    with rt.db.session() as session:
        row = session.get(NotificationInbox, inbox_id)
        assert row.status == "failed" and victim_part.refund_no in row.error
    after = part_now(rt, victim_part.id)
    assert (after.status, after.failure_code) == ("processing", None)
    assert restores_of(rt, victim_part) == []
    assert refused_because(caplog, f"notification {inbox_id}", victim_part.refund_no)


def test_processing_refuses_a_payment_for_another_clinics_order(rt, clinic_a, clinic_b, caplog):
    order_no, pay, _card = unpaid_topup(rt, clinic_a, "wechat", 2700)
    merchant_b = clinic_b.merchants["wechat"]
    body = wechat_payment_result(merchant_b, pay.out_trade_no, 2700,
                                 lambda fields: signed_by_hand(fields, merchant_b["api_key"], "MD5", name_it=False))
    # Signed with B's key and stored under B's account, naming A's order: only a row stored by something other
    # than today's ingestion can hold that, and processing must not trust it either.
    with rt.db.session() as session:
        row = NotificationInbox(channel="wechat", kind=NotificationKind.PAYMENT.value, clinic_code=clinic_b.code,
                                merchant_account_id=clinic_b.account("wechat"), out_trade_no=pay.out_trade_no,
                                body=body.decode(), content_type="text/xml", status="received", attempts=0,
                                next_attempt_at=utcnow(), received_at=utcnow())
        session.add(row)
        session.flush()
        inbox_id = row.id

    assert notifications.process(rt, inbox_id) == "failed"

    assert order_status(rt, order_no) == "created"
    assert attempt_of(rt, pay.out_trade_no).status == "pending"
    assert refused_because(caplog, f"notification {inbox_id}", pay.out_trade_no)


@pytest.mark.parametrize("named_trade", ["the attacker's own payment", "the victim's payment"])
def test_another_clinics_alipay_app_cannot_settle_a_refund(rt, client, clinic_a, clinic_b, caplog, named_trade):
    victim_payment, victim_part = card_refund(rt, clinic_a, "alipay", 3000)  # not yet sent to Alipay
    own_payment = paid(rt, clinic_b, "alipay", 3000)
    trade = own_payment if named_trade == "the attacker's own payment" else victim_payment
    inbox_before = inbox_count(rt)

    # Signed with B's Alipay key, for B's app, naming A's refund request number as out_biz_no.
    reply = post_alipay(client, clinic_b, alipay_refund_result(clinic_b, trade, victim_part.refund_no, 3000, rt))

    assert reply.status_code == 200 and reply.data == b"fail"
    assert inbox_count(rt) == inbox_before
    assert part_now(rt, victim_part.id).status == "pending"
    assert refunded_fen(rt, victim_payment.order_no) == 0, "no money went back, so none may be counted as refunded"
    assert refused_because(caplog, clinic_b.code, trade.out_trade_no)


def test_a_refund_result_with_another_amount_is_refused(rt, client, clinic_a, caplog):
    payment, part = sent_card_refund(rt, clinic_a, 3000)
    inbox_before = inbox_count(rt)

    # The right merchant, payment and refund number, but not the amount we refunded.
    reply = post_wechat_refund(client, clinic_a, wechat_refund_result(clinic_a, payment, part.refund_no, 1,
                                                                      "SUCCESS", rt))

    assert reply.status_code == 200 and b"FAIL" in reply.data
    assert inbox_count(rt) == inbox_before
    assert part_now(rt, part.id).status == "processing"
    assert refunded_fen(rt, payment.order_no) == 0
    assert refused_because(caplog, "refund_fee 1 fen", part.refund_no)
    # The genuine result is taken, so the refusal above was about the amount.
    genuine = post_wechat_refund(client, clinic_a, wechat_refund_result(clinic_a, payment, part.refund_no, 3000,
                                                                        "SUCCESS", rt))
    assert b"SUCCESS" in genuine.data and inbox_count(rt) == inbox_before + 1


def test_an_alipay_refund_total_that_cannot_hold_the_refund_is_refused(rt, client, clinic_a, caplog):
    payment, part = card_refund(rt, clinic_a, "alipay", 3000)

    reply = post_alipay(client, clinic_a, alipay_refund_result(clinic_a, payment, part.refund_no, 1000, rt))

    assert reply.data == b"fail"
    assert part_now(rt, part.id).status == "pending"
    assert refused_because(caplog, "refunded total 1000 fen", part.refund_no)


# --- item 3: an empty or short key ---------------------------------------------------------------

@pytest.mark.parametrize("stored_key", ["", "short-key"])
def test_a_payment_forged_for_a_merchant_without_a_proper_key_is_refused(rt, client, sandbox, stored_key, caplog):
    clinic = own_clinic(rt, sandbox.url)
    order_no, pay, _card = unpaid_topup(rt, clinic, "wechat", 2500)
    # The key column is nullable: an older version let an empty (or short) key be stored. Storage refuses
    # one now (app/db/encrypted.py), so the old row is written as it would have been: encrypted, unchecked.
    keyring = keyring_for(rt.db.engine.dialect)
    with rt.db.session() as session:
        session.execute(text("UPDATE merchant_accounts SET api_key = :key WHERE id = :id"),
                        {"key": keyring.encrypt(stored_key), "id": clinic.account("wechat")})
    inbox_before = inbox_count(rt)

    forged = wechat_payment_result(clinic.merchants["wechat"], pay.out_trade_no, 2500,
                                   lambda fields: signed_by_hand(fields, stored_key, "MD5", name_it=False))
    reply = post_wechat_payment(client, clinic, forged)

    assert reply.status_code == 200 and b"FAIL" in reply.data
    assert inbox_count(rt) == inbox_before
    assert order_status(rt, order_no) == "created"
    assert refused_because(caplog, "WeChat Pay API key")


def test_an_alipay_app_without_a_public_key_answers_fail(rt, client, sandbox, caplog):
    clinic = own_clinic(rt, sandbox.url)
    _order_no, pay, _card = unpaid_topup(rt, clinic, "alipay", 2500)
    with rt.db.session() as session:
        session.execute(update(MerchantAccount).where(MerchantAccount.id == clinic.account("alipay"))
                        .values(alipay_public_key=""))
    payment = Payment("", 0, pay.out_trade_no, 2500, "")
    body = alipay_signed(alipay_fields(clinic, payment, rt), clinic.merchants["alipay"]["alipay_private_key"])

    reply = post_alipay(client, clinic, body)

    assert reply.status_code == 200 and reply.data == b"fail"
    assert refused_because(caplog, "Alipay public key")


# --- item 12: verify first, always; and the merchant's own sign type ----------------------------

@pytest.mark.parametrize("trade_status", ["TRADE_CLOSED", "TRADE_SOMETHING_NEW"])
def test_alipay_notifications_with_nothing_to_do_are_verified_first(rt, client, clinic_a, trade_status):
    _order_no, pay, _card = unpaid_topup(rt, clinic_a, "alipay", 1800)
    payment = Payment("", 0, pay.out_trade_no, 1800, "")
    fields = alipay_fields(clinic_a, payment, rt, trade_status=trade_status)
    stranger_key = RSA.generate(2048).export_key().decode()

    unsigned = urlencode(fields).encode()
    badly_signed = alipay_signed(fields, stranger_key)
    signed = alipay_signed(fields, clinic_a.merchants["alipay"]["alipay_private_key"])

    assert post_alipay(client, clinic_a, unsigned).data == b"fail"
    assert post_alipay(client, clinic_a, badly_signed).data == b"fail"
    assert post_alipay(client, clinic_a, signed).data == b"success"


def test_an_md5_signed_payment_is_refused_by_an_hmac_sha256_merchant(rt, client, sandbox, caplog):
    clinic = own_clinic(rt, sandbox.url, wechat_sign_type="HMAC-SHA256")
    order_no, pay, _card = unpaid_topup(rt, clinic, "wechat", 2600)
    merchant = clinic.merchants["wechat"]
    inbox_before = inbox_count(rt)

    # The right key, the right amount, but MD5 (named in the message, as WeChat names a non-default type).
    md5 = wechat_payment_result(merchant, pay.out_trade_no, 2600,
                                lambda fields: signed_by_hand(fields, merchant["api_key"], "MD5", name_it=True))
    reply = post_wechat_payment(client, clinic, md5)

    assert reply.status_code == 200 and b"FAIL" in reply.data
    assert inbox_count(rt) == inbox_before
    assert order_status(rt, order_no) == "created"
    assert refused_because(caplog, "'MD5'", "HMAC-SHA256")
    # The merchant's own sign type is taken.
    hmac_signed = wechat_payment_result(
        merchant, pay.out_trade_no, 2600,
        lambda fields: signed_by_hand(fields, merchant["api_key"], "HMAC-SHA256", name_it=True))
    assert b"SUCCESS" in post_wechat_payment(client, clinic, hmac_signed).data
    assert inbox_count(rt) == inbox_before + 1


# --- item 15: a notification settling a refund part while the executor writes it ---------------

def genuine_refund_result(rt, clinic: OwnClinic, channel: str, payment: Payment, part: Refund) -> tuple[bytes, str]:
    """The channel's own SUCCESS result for a refund it has made (body, content type)."""
    if channel == "wechat":
        refund_id = adapter(rt, clinic, "wechat").query_refund(payment.out_trade_no, part.refund_no).channel_refund_id
        return wechat_refund_result(clinic, payment, part.refund_no, part.amount_fen, "SUCCESS", rt,
                                    refund_id=refund_id), "text/xml"
    return (alipay_refund_result(clinic, payment, part.refund_no, part.amount_fen, rt),
            "application/x-www-form-urlencoded; charset=utf-8")


# WeChat answers a refund PROCESSING (the executor's write moves the part to processing); Alipay refunds at
# once (the executor's write settles the part, the same moment the notification settles it).
@pytest.mark.parametrize("channel", ["wechat", "alipay"])
def test_a_refund_settled_between_the_executors_read_and_write_is_not_overwritten(rt, clinic_a, caplog, channel):
    payment, part = card_refund(rt, clinic_a, channel, 3000)
    raced = []

    def notification_arrives(conn, cursor, statement, parameters, context, executemany):
        # The executor has sent the refund and read the part; its write is about to go. Just then the
        # channel's SUCCESS result is received and processed, on other connections, and committed.
        if raced or not statement.lstrip().upper().startswith("UPDATE REFUNDS"):
            return
        raced.append(statement)
        body, content_type = genuine_refund_result(rt, clinic_a, channel, payment, part)
        result = notifications.ingest(rt, channel, clinic_a.code, body, content_type,
                                      NotificationKind.REFUND if channel == "wechat" else None)
        assert result.accepted, result.reason
        with rt.db.session() as session:
            inbox_id = session.scalar(select(NotificationInbox.id).where(
                NotificationInbox.out_trade_no == payment.out_trade_no).order_by(NotificationInbox.id.desc()))
        assert notifications.process(rt, inbox_id) == "refund_applied"

    event.listen(rt.db.engine, "before_cursor_execute", notification_arrives)
    try:
        outcome = executor.advance(rt, part.id)
    finally:
        event.remove(rt.db.engine, "before_cursor_execute", notification_arrives)

    assert raced, "the executor never wrote the part"
    assert outcome == "succeeded"
    assert part_now(rt, part.id).status == "succeeded"
    assert refunded_fen(rt, payment.order_no) == 3000
    assert refused_because(caplog, part.refund_no, "changed from pending")
    # Nothing left to follow: the executor sees a settled part, and the money is counted once.
    assert executor.advance(rt, part.id) == "succeeded"
    with rt.db.session() as session:
        assert part.id not in lease_spec("refunds").due_ids(session, utcnow() + timedelta(days=1), 1000)
        request = session.get(RefundRequest, part.refund_request_id)
        assert request.status == "succeeded"
        topup_status = session.scalar(select(Order.status).where(Order.order_no == payment.order_no))
    assert refunded_fen(rt, payment.order_no) == 3000 and topup_status == "refunded"
