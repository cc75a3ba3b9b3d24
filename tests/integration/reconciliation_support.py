"""Reconciliation test worlds: a clinic of its own (its own merchant accounts, so its bills hold only its own
trades, and its own HIS key), and payments and refunds made through the real services and the sandbox.

A module that does the platform's background work itself (sending HIS writes, following refunds) takes a
database of its own (`own_runtime`): an e2e test earlier in the session leaves the platform running (gunicorn,
workers, the dispatcher) on the session's database, and its dispatcher sends every due row it finds there,
this module's too, at any moment between the module's steps."""
from __future__ import annotations

import dataclasses
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import requests
from sqlalchemy import create_engine, func, select, text, update

from app.db.models import (
    Card,
    Clinic,
    HisOutbox,
    MerchantAccount,
    MpUser,
    Order,
    OrderEvent,
    Patient,
    PaymentAttempt,
    ReconciliationDiscrepancy,
    ReconciliationRepair,
    Refund,
    RefundRequest,
)
from app.db.types import utcnow
from app.domain import ids
from app.runtime import Runtime
from app.services.booking import orders
from app.services.clinics.merchants import merchant_config
from app.services.common.principals import MpPrincipal, MpSignedSession
from app.services.his import delivery
from app.services.payments import attempts
from app.services.refunds import executor
from tests.api.mp_helpers import channel_user_id

SHANGHAI = timezone(timedelta(hours=8))


def own_runtime(settings, postgres_url: str, name: str) -> Runtime:
    """A Runtime on a new database `name` at the latest migration, with queues of its own, that no platform
    process of the session knows about."""
    return Runtime(own_settings(settings, postgres_url, name))


def own_settings(settings, postgres_url: str, name: str):
    """`settings` pointed at a new database `name` at the latest migration, and at queues of its own."""
    from app.db.migrate import upgrade

    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = postgres_url.rsplit("/", 1)[0] + f"/{name}"
    upgrade(url)
    return dataclasses.replace(settings, DATABASE_URL=url, QUEUE_PREFIX=name)


def sandbox_post(sandbox_url: str, path: str, body: dict) -> dict:
    res = requests.post(f"{sandbox_url}{path}", json=body, timeout=10)
    assert res.status_code in (200, 201), res.text
    return res.json()


@dataclass
class OwnClinic:
    id: int
    code: str
    sandbox_url: str
    accounts: dict[str, int]
    merchants: dict[str, dict]
    """The sandbox's view of each merchant account, with the keys the channel itself signs with."""

    def account(self, channel: str) -> int:
        return self.accounts[channel]


def own_clinic(rt, sandbox_url: str, wechat_sign_type: str = "MD5") -> OwnClinic:
    """A clinic with a new WeChat merchant, a new Alipay app and a new HIS key on the given sandbox."""
    code = f"rc{secrets.token_hex(4)}"
    his = sandbox_post(sandbox_url, "/sandbox/merchants", {"channel": "his"})
    wechat = sandbox_post(sandbox_url, "/sandbox/merchants", {"channel": "wechat", "clinic_code": code,
                                                              "sign_type": wechat_sign_type})
    alipay = sandbox_post(sandbox_url, "/sandbox/merchants", {"channel": "alipay", "clinic_code": code})
    with rt.db.session() as session:
        clinic = Clinic(code=code, name=f"对账诊所 {code}", his_base_url=f"{sandbox_url}/his/",
                        his_key_id=his["key_id"], his_secret=his["secret"])
        session.add(clinic)
        session.flush()
        accounts = {}
        for channel, fields in (
            ("wechat", dict(app_id=wechat["appid"], mch_id=wechat["mch_id"], api_key=wechat["api_key"],
                            app_secret=wechat["app_secret"], sign_type=wechat["sign_type"],
                            api_base_url=f"{sandbox_url}/wxpay/", login_base_url=f"{sandbox_url}/wxlogin/")),
            ("alipay", dict(app_id=alipay["app_id"], mch_id=alipay["pid"], sign_type="RSA2",
                            app_private_key=alipay["app_private_key"], alipay_public_key=alipay["alipay_public_key"],
                            api_base_url=f"{sandbox_url}/alipay/gateway.do")),
        ):
            account = MerchantAccount(clinic_id=clinic.id, channel=channel, active=True, refund_window_days=365,
                                      **fields)
            session.add(account)
            session.flush()
            accounts[channel] = account.id
        return OwnClinic(clinic.id, code, sandbox_url, accounts, {"wechat": wechat, "alipay": alipay})


def adapter(rt, clinic: OwnClinic, channel: str):
    with rt.db.session() as session:
        account = session.get(MerchantAccount, clinic.account(channel))
        return rt.channel(merchant_config(account, clinic.code))


def his_card(sandbox_url: str, balance_fen: int = 0) -> tuple[str, str]:
    """A new HIS card of 钱七: (card_no, the holder's phone)."""
    phone = "139" + "".join(secrets.choice("0123456789") for _ in range(8))
    card = sandbox_post(sandbox_url, "/sandbox/his/cards", {"name": "钱七", "phone": phone, "balance_fen": balance_fen})
    return card["card_no"], phone


@dataclass
class Payment:
    order_no: str
    attempt_id: int
    out_trade_no: str
    amount_fen: int
    card_no: str


def new_payer(rt, clinic: OwnClinic, channel: str) -> tuple[MpPrincipal, str]:
    """A mini-program user with a patient holding a new HIS card (bound and verified, as after the SMS step)."""
    card_no, phone = his_card(clinic.sandbox_url)
    with rt.db.session() as session:
        user = MpUser(clinic_id=clinic.id, merchant_account_id=clinic.account(channel), channel=channel,
                      openid=channel_user_id(channel, secrets.token_hex(6)))
        session.add(user)
        session.flush()
        patient = Patient(clinic_id=clinic.id, user_id=user.id, name="钱七", phone=phone)
        session.add(patient)
        session.flush()
        session.add(Card(clinic_id=clinic.id, patient_id=patient.id, card_no=card_no, verified_at=utcnow()))
        return MpPrincipal(user.id, clinic.id, channel), card_no


def unpaid_topup(rt, clinic: OwnClinic, channel: str, amount_fen: int):
    """A top-up order whose trade exists at the channel, not paid: (order_no, PayInstructions, card_no)."""
    principal, card_no = new_payer(rt, clinic, channel)
    order = orders.create_order(rt, MpSignedSession(principal, token_version=0),
                                {"type": "topup", "card_no": card_no, "amount_fen": amount_fen, "channel": channel})
    return order["order_no"], attempts.pay_order(rt, principal, order["order_no"], "127.0.0.1"), card_no


def patient_pays(rt, clinic: OwnClinic, channel: str, amount_fen: int) -> Payment:
    """A top-up order paid at the channel; the platform has not heard of it yet (its attempt is pending)."""
    order_no, pay, card_no = unpaid_topup(rt, clinic, channel, amount_fen)
    # Before the patient pays: the platform's query schedule has not come round for this attempt yet (a
    # platform running in the same test session would otherwise find the payment by querying first).
    with rt.db.session() as session:
        session.execute(update(PaymentAttempt).where(PaymentAttempt.out_trade_no == pay.out_trade_no)
                        .values(next_query_at=utcnow() + timedelta(days=1)))
    if channel == "wechat":
        sandbox_post(clinic.sandbox_url, "/sandbox/wechat/pay",
                     {"prepay_id": pay.pay_params["package"].removeprefix("prepay_id="), "outcome": "success"})
    else:
        sandbox_post(clinic.sandbox_url, "/sandbox/alipay/pay", {"trade_no": pay.trade_no, "outcome": "success"})
    with rt.db.session() as session:
        attempt = session.scalar(select(PaymentAttempt).where(PaymentAttempt.out_trade_no == pay.out_trade_no))
        return Payment(order_no, attempt.id, attempt.out_trade_no, amount_fen, card_no)


def platform_records(rt, payment: Payment) -> None:
    """What the platform does on hearing of the payment: record it and write the HIS."""
    assert attempts.query_attempt(rt, payment.attempt_id) == "paid"
    assert send_his_writes(rt, payment.order_no) == ["sent"], last_his_errors(rt, payment.order_no)


def send_his_writes(rt, order_no: str) -> list[str]:
    """Send the order's pending HIS writes as a worker would; their statuses afterwards, read back."""
    with rt.db.session() as session:
        order = session.scalar(select(Order).where(Order.order_no == order_no))
        pending = list(session.scalars(select(HisOutbox.id).where(HisOutbox.order_id == order.id,
                                                                  HisOutbox.status == delivery.PENDING)))
    for outbox_id in pending:
        delivery.send(rt, outbox_id)
    with rt.db.session() as session:
        return [session.get(HisOutbox, outbox_id).status for outbox_id in pending]


def last_his_errors(rt, order_no: str) -> list[str | None]:
    with rt.db.session() as session:
        order = session.scalar(select(Order).where(Order.order_no == order_no))
        return list(session.scalars(select(HisOutbox.last_error).where(HisOutbox.order_id == order.id)))


def paid(rt, clinic: OwnClinic, channel: str, amount_fen: int) -> Payment:
    payment = patient_pays(rt, clinic, channel, amount_fen)
    platform_records(rt, payment)
    return payment


def refund(rt, payment: Payment, amount_fen: int, settle: bool = True) -> str:
    """A refund sent to the channel; followed until it settles unless `settle` is False (we never hear)."""
    with rt.db.session() as session:
        attempt = session.get(PaymentAttempt, payment.attempt_id)
        order = session.get(Order, attempt.order_id)
        request = RefundRequest(refund_request_no=ids.new_business_no("refund", utcnow()), clinic_id=order.clinic_id,
                                origin="admin", order_id=order.id, amount_fen=amount_fen, status="processing",
                                reason="reconciliation test")
        session.add(request)
        part = executor.add_refund(session, request, attempt, amount_fen)
        session.flush()
        refund_id, refund_no = part.id, part.refund_no
    status = executor.advance(rt, refund_id)
    deadline = datetime.now(UTC) + timedelta(seconds=10)
    while settle and status != "succeeded":
        assert datetime.now(UTC) < deadline, f"refund {refund_no} is still {status}"
        status = executor.advance(rt, refund_id)
    return refund_no


def findings(rt, run_id: int) -> dict[str, tuple[str, str]]:
    """ref -> (type, status) of a run's discrepancies."""
    with rt.db.session() as session:
        return {d.ref: (d.type, d.status) for d in session.scalars(
            select(ReconciliationDiscrepancy).where(ReconciliationDiscrepancy.run_id == run_id))}


def repairs_of(rt, key: str) -> int:
    with rt.db.session() as session:
        return session.scalar(select(func.count(ReconciliationRepair.id)).where(ReconciliationRepair.key == key))


def paid_events(rt, order_no: str) -> int:
    with rt.db.session() as session:
        order = session.scalar(select(Order).where(Order.order_no == order_no))
        return session.scalar(select(func.count(OrderEvent.id)).where(OrderEvent.order_id == order.id,
                                                                     OrderEvent.to_status == "paid"))


def his_records(sandbox_url: str, order_no: str, day) -> list[dict]:
    res = requests.get(f"{sandbox_url}/sandbox/his/records", params={"date": day.isoformat()}, timeout=10)
    res.raise_for_status()
    return [r for r in res.json() if r["order_no"] == order_no]


def refund_row(rt, refund_no: str) -> Refund:
    with rt.db.session() as session:
        return session.scalar(select(Refund).where(Refund.refund_no == refund_no))


def today_shanghai():
    return datetime.now(SHANGHAI).date()
