"""Key rotation without downtime, attacked from both sides: after an operator replaces a channel app's WeChat API
key or Alipay public key, notifications signed with the old key are still accepted during the grace period
(the channel may have some in flight), the new key's are accepted at once, a stranger's key never is, and the old
key stops working when the grace ends. Everything we sign uses the new key at once.

The module runs the platform in process on a database of its own, so that no worker of a platform left running by
an e2e test processes its inbox rows.
"""
from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import datetime, timedelta
from urllib.parse import urlencode

import pytest
from Cryptodome.Hash import SHA256
from Cryptodome.PublicKey import RSA
from Cryptodome.Signature import PKCS1_v1_5
from sqlalchemy import func, select, update

from app.channels import wechat_sign
from app.channels.base import InvalidNotification
from app.db.models import MerchantAccount, NotificationInbox, PaymentAttempt
from app.db.types import utcnow
from app.domain.money import fen_to_yuan
from app.services.clinics.merchants import channel_for_account
from tests.api.admin_helpers import ADMIN
from tests.api.onboarding_helpers import operator_headers
from tests.integration.reconciliation_support import own_clinic, own_settings, unpaid_topup

SHANGHAI_TIME = "%Y-%m-%d %H:%M:%S"


@pytest.fixture(scope="module")
def app(settings, postgres_url):
    from app.cli import create_cli_app

    flask_app = create_cli_app(own_settings(settings, postgres_url, "hpay_security_rotation"))
    yield flask_app
    flask_app.extensions["hpay_runtime"].close()


@pytest.fixture(scope="module")
def rt(app):
    return app.extensions["hpay_runtime"]


def _inbox(rt, out_trade_no: str) -> int:
    with rt.db.session() as session:
        return session.scalar(select(func.count(NotificationInbox.id))
                              .where(NotificationInbox.out_trade_no == out_trade_no))


def _wechat_payment(merchant: dict, out_trade_no: str, total_fee: int, key: str) -> bytes:
    fields = {"appid": merchant["appid"], "mch_id": merchant["mch_id"], "nonce_str": secrets.token_hex(8),
              "result_code": "SUCCESS", "return_code": "SUCCESS", "openid": "o-rotation", "trade_type": "JSAPI",
              "bank_type": "CMC", "total_fee": str(total_fee), "cash_fee": str(total_fee), "fee_type": "CNY",
              "transaction_id": "4200" + secrets.token_hex(10), "out_trade_no": out_trade_no,
              "time_end": datetime.now().strftime("%Y%m%d%H%M%S")}
    fields["sign"] = wechat_sign.sign(fields, key, merchant["sign_type"])
    return ("<xml>" + "".join(f"<{k}><![CDATA[{v}]]></{k}>" for k, v in fields.items()) + "</xml>").encode()


def _alipay_payment(app_id: str, trade_no: str, out_trade_no: str, amount_fen: int, private_pem: str) -> bytes:
    now = datetime.now().strftime(SHANGHAI_TIME)
    total = fen_to_yuan(amount_fen)
    fields = {"notify_time": now, "notify_type": "trade_status_sync", "notify_id": secrets.token_hex(18),
              "app_id": app_id, "charset": "utf-8", "version": "1.0", "trade_no": trade_no,
              "out_trade_no": out_trade_no, "buyer_id": "2088000000000001", "trade_status": "TRADE_SUCCESS",
              "total_amount": total, "receipt_amount": total, "buyer_pay_amount": total, "gmt_create": now,
              "gmt_payment": now, "subject": "充值"}
    message = "&".join(f"{k}={fields[k]}" for k in sorted(fields))
    signature = PKCS1_v1_5.new(RSA.import_key(private_pem)).sign(SHA256.new(message.encode()))
    return urlencode({**fields, "sign_type": "RSA2", "sign": base64.b64encode(signature).decode()}).encode()


def _end_grace(rt, account_id: int) -> None:
    with rt.db.session() as session:
        session.execute(update(MerchantAccount).where(MerchantAccount.id == account_id).values(
            previous_api_key_valid_until=utcnow() - timedelta(seconds=1),
            previous_alipay_public_key_valid_until=utcnow() - timedelta(seconds=1)))


def _fresh_adapter(rt, account_id: int):
    with rt.db.session() as session:
        return channel_for_account(rt, session, session.get(MerchantAccount, account_id))


def test_a_new_wechat_api_key_takes_over_and_the_old_one_verifies_only_within_the_grace(app, rt, sandbox):
    client = app.test_client()
    headers, _ = operator_headers(client, rt)
    clinic = own_clinic(rt, sandbox.url)
    merchant, account_id = clinic.merchants["wechat"], clinic.account("wechat")
    _order_no, pay, _card = unpaid_topup(rt, clinic, "wechat", 1200)
    old_key, new_key = merchant["api_key"], secrets.token_hex(16)

    rotated = client.patch(f"{ADMIN}/channel-apps/{account_id}", json={"api_key": new_key}, headers=headers)

    assert rotated.status_code == 200, rotated.get_json()
    previous = rotated.get_json()["previous_key"]
    assert previous["field"] == "api_key"
    valid_until = datetime.fromisoformat(previous["valid_until"])
    assert timedelta(hours=23) < valid_until - utcnow() <= timedelta(hours=24)
    signed_old = _wechat_payment(merchant, pay.out_trade_no, 1200, old_key)
    signed_new = _wechat_payment(merchant, pay.out_trade_no, 1200, new_key)
    signed_stranger = _wechat_payment(merchant, pay.out_trade_no, 1200, secrets.token_hex(16))
    replies = [client.post(f"/notify/wechat/{clinic.code}/pay", data=body, content_type="text/xml").data
               for body in (signed_old, signed_new, signed_stranger)]
    assert [b"SUCCESS" in reply for reply in replies] == [True, True, False]
    assert _inbox(rt, pay.out_trade_no) == 2
    # Everything we sign uses the new key at once.
    assert _fresh_adapter(rt, account_id).config.api_key == new_key

    _end_grace(rt, account_id)
    adapter = _fresh_adapter(rt, account_id)
    adapter.verify_notification(signed_new, "text/xml")
    with pytest.raises(InvalidNotification, match="bad signature"):
        adapter.verify_notification(signed_old, "text/xml")
    shown = client.get(f"{ADMIN}/channel-apps/{account_id}", headers=headers).get_json()
    assert shown["previous_key"] is None
    assert shown["api_key"]["fingerprint"] == hashlib.sha256(new_key.encode()).hexdigest()[:12]


def test_a_new_alipay_public_key_takes_over_and_the_old_one_verifies_only_within_the_grace(app, rt, sandbox):
    client = app.test_client()
    headers, _ = operator_headers(client, rt)
    clinic = own_clinic(rt, sandbox.url)
    merchant, account_id = clinic.merchants["alipay"], clinic.account("alipay")
    _order_no, pay, _card = unpaid_topup(rt, clinic, "alipay", 1300)
    new_pair = RSA.generate(2048)
    new_private, new_public = new_pair.export_key().decode(), new_pair.publickey().export_key().decode()

    rotated = client.patch(f"{ADMIN}/channel-apps/{account_id}", json={"alipay_public_key": new_public},
                           headers=headers)

    assert rotated.status_code == 200, rotated.get_json()
    assert rotated.get_json()["previous_key"]["field"] == "alipay_public_key"
    with rt.db.session() as session:
        trade_no = session.scalar(select(PaymentAttempt.channel_trade_no)
                                  .where(PaymentAttempt.out_trade_no == pay.out_trade_no))
    signed_old = _alipay_payment(merchant["app_id"], trade_no, pay.out_trade_no, 1300, merchant["alipay_private_key"])
    signed_new = _alipay_payment(merchant["app_id"], trade_no, pay.out_trade_no, 1300, new_private)
    signed_stranger = _alipay_payment(merchant["app_id"], trade_no, pay.out_trade_no, 1300,
                                      RSA.generate(2048).export_key().decode())
    replies = [client.post(f"/notify/alipay/{clinic.code}", data=body,
                           content_type="application/x-www-form-urlencoded; charset=utf-8").data
               for body in (signed_old, signed_new, signed_stranger)]
    assert replies == [b"success", b"success", b"fail"]
    assert _inbox(rt, pay.out_trade_no) == 2

    _end_grace(rt, account_id)
    adapter = _fresh_adapter(rt, account_id)
    adapter.verify_notification(signed_new)
    with pytest.raises(InvalidNotification, match="bad signature"):
        adapter.verify_notification(signed_old)
