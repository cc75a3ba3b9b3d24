"""A platform-collected booking keeps its item's channel purchase price as it was when the order was made."""
from __future__ import annotations

import secrets
from datetime import timedelta

import pytest

from app.db.models import Item, ItemInventory, MerchantAccount, MpUser, Patient, Slot
from app.db.types import utcnow
from app.domain.errors import Conflict
from app.services.booking import orders
from app.services.clinics.items import update_item
from app.services.common.principals import MpPrincipal, StaffPrincipal
from tests.services.helpers import Holder, new_clinic, order, pay, signed


def _platform_booking_setup(rt, clinic, channel: str, prices: dict[str, int]):
    """A platform app of `channel`, a user of it with a patient, and a platform-collected item with a slot."""
    with rt.db.session() as session:
        account = MerchantAccount(owner="platform", clinic_id=None, channel=channel,
                                  app_id=f"plat{secrets.token_hex(5)}", mch_id="1900000109",
                                  api_key=secrets.token_hex(16), app_secret=secrets.token_hex(16),
                                  app_private_key=secrets.token_hex(32), alipay_public_key="fake",
                                  sign_type="MD5" if channel == "wechat" else "RSA2",
                                  api_base_url="https://api.example.test/", refund_window_days=365, active=True)
        session.add(account)
        session.flush()
        user = MpUser(clinic_id=clinic.id, merchant_account_id=account.id, channel=channel,
                      openid=f"openid-{secrets.token_hex(6)}")
        session.add(user)
        session.flush()
        patient = Patient(clinic_id=clinic.id, user_id=user.id, name="测试患者", phone="13900001111", relation="self")
        item = Item(clinic_id=clinic.id, code=secrets.token_hex(5), name="渠道体检套餐", price_fen=29900,
                    collected_by="platform", channels=["wechat", "alipay"], purchase_price_fen=prices)
        session.add_all([patient, item])
        session.flush()
        starts = utcnow() + timedelta(days=2)
        slot = Slot(item_id=item.id, starts_at=starts, ends_at=starts + timedelta(hours=1), capacity=5, reserved=0)
        session.add(slot)
        session.add_all([ItemInventory(item_id=item.id, channel=each, quantity=10, reserved=0)
                         for each in ("wechat", "alipay")])
        session.flush()
        return MpPrincipal(user.id, clinic.id, channel), patient.id, item.id, slot.id


@pytest.mark.parametrize("channel", ["wechat", "alipay"])
def test_the_purchase_price_is_kept_on_the_order_and_a_later_price_change_moves_no_past_order(rt, world, channel):
    clinic = new_clinic(rt)
    principal, patient_id, item_id, slot_id = _platform_booking_setup(rt, clinic, channel,
                                                                      {"wechat": 18000, "alipay": 17500})
    booking = {"type": "booking", "channel": channel, "item_id": item_id, "slot_id": slot_id,
               "patient_id": patient_id}
    first = orders.create_order(rt, signed(principal), booking)["order_no"]
    admin = StaffPrincipal(user_id=1, username="admin-test", role="admin", clinic_ids=(clinic.id,))
    update_item(rt, admin, item_id, {"purchase_price_fen": {"wechat": 21000, "alipay": 20500}})
    # A family member: one patient holds one booking of an item a day.
    with rt.db.session() as session:
        child = Patient(clinic_id=clinic.id, user_id=principal.user_id, name="测试家属", phone="13900001113",
                        relation="child")
        session.add(child)
        session.flush()
        child_id = child.id
    second = orders.create_order(rt, signed(principal), {**booking, "patient_id": child_id})["order_no"]

    pay(rt, world, Holder(principal, patient_id, ""), first)

    expected_first = 18000 if channel == "wechat" else 17500
    expected_second = 21000 if channel == "wechat" else 20500
    assert order(rt, first).status == "paid"
    assert (order(rt, first).purchase_price_fen, order(rt, second).purchase_price_fen) == (expected_first,
                                                                                           expected_second)


def test_a_clinic_collected_booking_keeps_no_purchase_price(rt, world):
    clinic = new_clinic(rt)
    with rt.db.session() as session:
        user = MpUser(clinic_id=clinic.id, merchant_account_id=clinic.accounts["wechat"], channel="wechat",
                      openid=f"openid-{secrets.token_hex(6)}")
        session.add(user)
        session.flush()
        patient = Patient(clinic_id=clinic.id, user_id=user.id, name="测试患者", phone="13900001112", relation="self")
        item = Item(clinic_id=clinic.id, code=secrets.token_hex(5), name="洁牙", price_fen=9900)
        session.add_all([patient, item])
        session.flush()
        starts = utcnow() + timedelta(days=2)
        slot = Slot(item_id=item.id, starts_at=starts, ends_at=starts + timedelta(hours=1), capacity=5, reserved=0)
        session.add(slot)
        session.add_all([ItemInventory(item_id=item.id, channel=each, quantity=10, reserved=0)
                         for each in ("wechat", "alipay")])
        session.flush()
        ids = (user.id, patient.id, item.id, slot.id)
    order_no = orders.create_order(rt, signed(MpPrincipal(ids[0], clinic.id, "wechat")), {
        "type": "booking", "channel": "wechat", "item_id": ids[2], "slot_id": ids[3], "patient_id": ids[1]})["order_no"]
    assert order(rt, order_no).purchase_price_fen is None


def test_a_platform_item_without_a_price_on_the_channel_is_not_sold_there(rt, world):
    clinic = new_clinic(rt)
    # As an item made before purchase prices were required on every channel it is offered on.
    principal, patient_id, item_id, slot_id = _platform_booking_setup(rt, clinic, "alipay", {"wechat": 18000})
    with pytest.raises(Conflict) as refused:
        orders.create_order(rt, signed(principal), {"type": "booking", "channel": "alipay", "item_id": item_id,
                                            "slot_id": slot_id, "patient_id": patient_id})
    assert refused.value.code == "purchase_price_missing"
    with rt.db.session() as session:
        assert session.get(Slot, slot_id).reserved == 0
