"""Redeemed channel orders written straight into the database, in a clinic of the test's own.

The orders are platform-collected (paid through platform channel apps of the test's own, at the purchase price
the order kept), as statements cover. Statements read only what the orders say (type, status, channel,
redeemed_at, purchase_price_fen, the paid attempt and its app),
so a statement test may lay the orders down directly instead of driving them through payment,
confirmation and redemption. Each test gets its own clinic, so its statements are its own.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from app.db.models import Clinic, Item, MerchantAccount, Order, Patient, PaymentAttempt, Slot

SHANGHAI = timezone(timedelta(hours=8))


def shanghai(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=SHANGHAI)


class StatementClinic:
    """A clinic with a WeChat and an Alipay app of its own, a platform-collected item sold through platform apps
    of the test's own, and a way to add orders."""

    def __init__(self, rt, label: str) -> None:
        self.rt = rt
        suffix = uuid.uuid4().hex[:10]
        self.code = f"st-{label}-{suffix}"[:32]
        with rt.db.session() as session:
            clinic = Clinic(code=self.code, name=f"对账诊所 {label}", his_base_url="http://127.0.0.1:1/his/",
                            his_key_id=f"his-{suffix}", his_secret="not-used-but-long-enough")
            session.add(clinic)
            session.flush()
            self.id = clinic.id
            self.accounts = {}
            for channel in ("wechat", "alipay"):
                account = MerchantAccount(clinic_id=clinic.id, channel=channel, app_id=f"{channel}-{suffix}",
                                          sign_type="MD5" if channel == "wechat" else "RSA2",
                                          api_base_url="http://127.0.0.1:1/")
                session.add(account)
                session.flush()
                self.accounts[channel] = account.id
            self.platform_accounts = _platform_accounts(session, suffix)
            item = Item(clinic_id=clinic.id, code="CLEAN01", name="洁牙套餐", price_fen=19900,
                        collected_by="platform", purchase_price_fen={"wechat": 15000, "alipay": 15000})
            session.add(item)
            session.flush()
            self.item_id = item.id

    @classmethod
    def existing(cls, rt, code: str) -> StatementClinic:
        """An existing clinic (e.g. `demo`) with its first item, sold through platform apps of the test's own."""
        clinic = cls.__new__(cls)
        clinic.rt, clinic.code = rt, code
        with rt.db.session() as session:
            clinic.id = session.scalar(select(Clinic.id).where(Clinic.code == code))
            clinic.accounts = dict(session.execute(
                select(MerchantAccount.channel, MerchantAccount.id)
                .where(MerchantAccount.clinic_id == clinic.id, MerchantAccount.active.is_(True))).all())
            clinic.platform_accounts = _platform_accounts(session, uuid.uuid4().hex[:10])
            clinic.item_id = session.scalar(select(Item.id).where(Item.clinic_id == clinic.id).order_by(Item.id))
        return clinic

    def item(self, name: str, price_fen: int = 19900) -> int:
        with self.rt.db.session() as session:
            item = Item(clinic_id=self.id, code=uuid.uuid4().hex[:12], name=name, price_fen=price_fen)
            session.add(item)
            session.flush()
            return item.id

    def order(self, channel: str, amount_fen: int, redeemed_at: datetime | None, *, status: str = "redeemed",
              patient: str = "张小三", phone: str = "13812345678", item_id: int | None = None,
              order_type: str = "booking", appointment_from_slot: bool = False,
              purchase_price_fen: int | None = None) -> dict:
        """A paid order of `channel`, booked for half an hour before its redemption (on the order, or only
        on its slot, as before staff confirmed it), kept at `purchase_price_fen` (default: its amount); returns
        what its statement line should show. A booking is paid through the platform's app, anything else through
        the clinic's."""
        purchase_price_fen = amount_fen if purchase_price_fen is None else purchase_price_fen
        order_no = f"T{uuid.uuid4().hex[:20].upper()}"
        channel_trade_no = f"{'42' if channel == 'wechat' else '2025'}{uuid.uuid4().int % 10**18:018d}"
        paid_at = (redeemed_at or shanghai(2025, 1, 1)) - timedelta(days=3)
        with self.rt.db.session() as session:
            person = Patient(clinic_id=self.id, name=patient, phone=phone)
            session.add(person)
            session.flush()
            item_id = item_id or self.item_id
            appointment_at = (redeemed_at or paid_at) - timedelta(minutes=30)
            slot = session.scalar(select(Slot).where(Slot.item_id == item_id, Slot.starts_at == appointment_at))
            if slot is None:
                slot = Slot(item_id=item_id, starts_at=appointment_at, ends_at=appointment_at + timedelta(hours=1),
                            capacity=50, reserved=0)
                session.add(slot)
                session.flush()
            order = Order(order_no=order_no, clinic_id=self.id, type=order_type, status=status, channel=channel,
                          amount_fen=amount_fen, patient_id=person.id, item_id=item_id, slot_id=slot.id,
                          purchase_price_fen=purchase_price_fen if order_type == "booking" else None,
                          description="statement test", expires_at=paid_at, paid_at=paid_at,
                          appointment_at=None if appointment_from_slot else appointment_at, redeemed_at=redeemed_at)
            session.add(order)
            session.flush()
            accounts = self.platform_accounts if order_type == "booking" else self.accounts
            attempt = PaymentAttempt(order_id=order.id, merchant_account_id=accounts[channel], channel=channel,
                                     out_trade_no=f"P{order_no}", amount_fen=amount_fen, status="paid",
                                     channel_trade_no=channel_trade_no, paid_at=paid_at)
            session.add(attempt)
            session.flush()
            order.paid_attempt_id = attempt.id
        return {"order_no": order_no, "out_trade_no": f"P{order_no}", "channel_trade_no": channel_trade_no,
                "amount_fen": amount_fen, "purchase_price_fen": purchase_price_fen,
                "appointment_at": appointment_at, "redeemed_at": redeemed_at}


def _platform_accounts(session, suffix: str) -> dict[str, int]:
    """A platform WeChat and Alipay app of the test's own: {channel: id}."""
    accounts = {}
    for channel in ("wechat", "alipay"):
        account = MerchantAccount(owner="platform", clinic_id=None, channel=channel,
                                  app_id=f"platform-{channel}-{suffix}",
                                  sign_type="MD5" if channel == "wechat" else "RSA2",
                                  api_base_url="http://127.0.0.1:1/")
        session.add(account)
        session.flush()
        accounts[channel] = account.id
    return accounts
