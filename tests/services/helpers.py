"""A clinic of each test's own in the services database, a patient with a card the fake HIS holds, and the
steps of paying and of the workers' jobs, done by calling the use cases the way the jobs do."""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update

from app.db.models import (
    AuditEvent,
    Card,
    Clinic,
    HisOutbox,
    MerchantAccount,
    MpUser,
    Order,
    Patient,
    PaymentAttempt,
    Refund,
    RefundRequest,
    StatusEvent,
)
from app.domain.his_writes import HisWriteStatus
from app.domain.refunds import IN_FLIGHT
from app.runtime import Runtime
from app.services.booking import orders
from app.services.common.principals import MpPrincipal, MpSignedSession
from app.services.his import send
from app.services.payments import expire_order, pay_order, query_attempt
from app.services.refunds import advance
from tests.services.conftest import World


@dataclass(frozen=True)
class OwnClinic:
    id: int
    code: str
    accounts: dict[str, int]


@dataclass(frozen=True)
class Holder:
    """A mini-program user with one patient whose verified card the HIS holds."""

    principal: MpPrincipal
    patient_id: int
    card_no: str


def new_clinic(rt: Runtime) -> OwnClinic:
    code = f"svc{secrets.token_hex(4)}"
    with rt.db.session() as session:
        clinic = Clinic(code=code, name=f"诊所 {code}", his_base_url="https://his.example.test/his",
                        his_key_id=f"his-{code}", his_secret=secrets.token_hex(16))
        session.add(clinic)
        session.flush()
        wechat = MerchantAccount(clinic_id=clinic.id, channel="wechat", app_id=f"wx{code}", mch_id="1900000109",
                                 api_key=secrets.token_hex(16), app_secret=secrets.token_hex(16), sign_type="MD5",
                                 api_base_url="https://api.mch.example.test/", login_base_url="https://api.example.test/",
                                 refund_window_days=365, active=True)
        alipay = MerchantAccount(clinic_id=clinic.id, channel="alipay", app_id=f"ali{code}", sign_type="RSA2",
                                 app_private_key=secrets.token_hex(32), alipay_public_key="fake",
                                 api_base_url="https://openapi.example.test/gateway.do", refund_window_days=365,
                                 active=True)
        session.add_all([wechat, alipay])
        session.flush()
        return OwnClinic(clinic.id, code, {"wechat": wechat.id, "alipay": alipay.id})


def new_holder(rt: Runtime, world: World, clinic: OwnClinic, channel: str = "wechat",
               balance_fen: int = 0) -> Holder:
    name, phone = "测试患者", f"139{secrets.randbelow(10**8):08d}"
    card_no = world.his.add_card(name, phone, balance_fen)
    with rt.db.session() as session:
        user = MpUser(clinic_id=clinic.id, merchant_account_id=clinic.accounts[channel], channel=channel,
                      openid=f"openid-{secrets.token_hex(6)}")
        session.add(user)
        session.flush()
        patient = Patient(clinic_id=clinic.id, user_id=user.id, name=name, phone=phone, relation="self")
        session.add(patient)
        session.flush()
        session.add(Card(clinic_id=clinic.id, patient_id=patient.id, card_no=card_no))
        return Holder(MpPrincipal(user.id, clinic.id, channel), patient.id, card_no)


def signed(principal: MpPrincipal) -> MpSignedSession:
    """The session of a token the use cases are given: a new user's (token version 0, never logged out)."""
    return MpSignedSession(principal, token_version=0)


def place_topup(rt: Runtime, holder: Holder, amount_fen: int) -> str:
    return orders.create_order(rt, signed(holder.principal), {"type": "topup", "channel": holder.principal.channel,
                                                      "card_no": holder.card_no, "amount_fen": amount_fen})["order_no"]


def place_bill_payment(rt: Runtime, holder: Holder, bill_ids: list[str]) -> str:
    return orders.create_order(rt, signed(holder.principal), {"type": "visit_bill", "channel": holder.principal.channel,
                                                      "card_no": holder.card_no, "bill_ids": bill_ids})["order_no"]


def attempt_of(rt: Runtime, out_trade_no: str) -> PaymentAttempt:
    with rt.db.session() as session:
        return session.scalar(select(PaymentAttempt).where(PaymentAttempt.out_trade_no == out_trade_no))


def pay(rt: Runtime, world: World, holder: Holder, order_no: str) -> PaymentAttempt:
    """The patient pays at the channel; the payment is learnt by the query job (no notification needed)."""
    out_trade_no = pay_order(rt, holder.principal, order_no, "127.0.0.1").out_trade_no
    world.channels.pay(out_trade_no)
    attempt = attempt_of(rt, out_trade_no)
    query_attempt(rt, attempt.id)
    return attempt_of(rt, out_trade_no)


def order(rt: Runtime, order_no: str) -> Order:
    with rt.db.session() as session:
        return session.scalar(select(Order).where(Order.order_no == order_no))


def writes(rt: Runtime, clinic: OwnClinic, kind: str | None = None) -> list[HisOutbox]:
    with rt.db.session() as session:
        query = select(HisOutbox).where(HisOutbox.clinic_id == clinic.id).order_by(HisOutbox.id)
        return list(session.scalars(query.where(HisOutbox.kind == kind) if kind else query))


def send_writes(rt: Runtime, clinic: OwnClinic) -> list[str]:
    """What the his queue's jobs do: send every pending HIS write of the clinic once; their statuses after."""
    return [send(rt, row.id) for row in writes(rt, clinic) if row.status == HisWriteStatus.PENDING]


def refund_requests(rt: Runtime, clinic: OwnClinic) -> list[RefundRequest]:
    with rt.db.session() as session:
        return list(session.scalars(select(RefundRequest).where(RefundRequest.clinic_id == clinic.id)
                                    .order_by(RefundRequest.id)))


def parts(rt: Runtime, request_id: int) -> list[Refund]:
    with rt.db.session() as session:
        return list(session.scalars(select(Refund).where(Refund.refund_request_id == request_id).order_by(Refund.id)))


def advance_refunds(rt: Runtime, clinic: OwnClinic) -> list[str]:
    """What the channel queue's refund jobs do: send or follow each refund of the clinic still in flight."""
    with rt.db.session() as session:
        ids = list(session.scalars(select(Refund.id).join(RefundRequest).where(
            RefundRequest.clinic_id == clinic.id, Refund.status.in_(IN_FLIGHT)).order_by(Refund.id)))
    return [advance(rt, refund_id) for refund_id in ids]


def events(rt: Runtime, record_type: str, record_id: int) -> list[tuple[str, str]]:
    with rt.db.session() as session:
        return [(e.from_status, e.to_status) for e in session.scalars(
            select(StatusEvent).where(StatusEvent.record_type == record_type, StatusEvent.record_id == record_id)
            .order_by(StatusEvent.id))]


def audit_actions(rt: Runtime, clinic: OwnClinic) -> list[str]:
    with rt.db.session() as session:
        return list(session.scalars(select(AuditEvent.action).where(AuditEvent.clinic_id == clinic.id)
                                    .order_by(AuditEvent.id)))


def expire_unpaid(rt: Runtime, order_no: str) -> None:
    """The unpaid order's time is up and `rt`'s process closes it, as the workers would."""
    with rt.db.session() as session:
        order_id = session.scalar(select(Order.id).where(Order.order_no == order_no))
        session.execute(update(Order).where(Order.id == order_id).values(expires_at=datetime.now(UTC)))
    assert expire_order(rt, order_id) == "closed"
