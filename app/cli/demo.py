"""The demo clinic, wired to the sandbox world's merchant accounts and HIS. Idempotent."""
from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

import requests
from sqlalchemy import select

from app.db.models import Clinic, Item, ItemInventory, MerchantAccount, Slot
from app.runtime import Runtime
from app.services.messaging import seed_from_channel
from app.services.people.staff_auth import seed_demo_users

SHANGHAI = timezone(timedelta(hours=8))
DEMO_ITEMS = [
    ("CLEAN01", "洁牙套餐 Teeth cleaning package", 19900, 4),
    ("CHECK01", "口腔检查 Dental check-up", 5000, 6),
    ("WHITE01", "美白套餐 Whitening package", 99900, 2),
]
DEMO_INVENTORY = 500
SLOT_HOURS = range(9, 17)
DAYS_AHEAD = 14


def _fetch_sandbox(sandbox_url: str) -> dict:
    try:
        resp = requests.get(f"{sandbox_url.rstrip('/')}/sandbox/merchants", timeout=5)
        resp.raise_for_status()
    except requests.RequestException as exc:
        raise RuntimeError(f"the sandbox at {sandbox_url} is not reachable ({exc.__class__.__name__}); "
                           "start it first (make run does)") from None
    return resp.json()


def _upsert_account(session, clinic: Clinic, channel: str, fields: dict, templates: list[dict]) -> None:
    account = session.scalar(select(MerchantAccount).where(MerchantAccount.channel == channel,
                                                           MerchantAccount.app_id == fields["app_id"]))
    if account is None:
        account = MerchantAccount(clinic_id=clinic.id, channel=channel, app_id=fields["app_id"])
        session.add(account)
    for key, value in fields.items():
        setattr(account, key, value)
    session.flush()
    # The app's message templates as the channel's console lists them (bills pushed to patients).
    seed_from_channel(session, account.id, templates, "seed-demo")
    # A sandbox started on a fresh data directory has new keys: retire the old apps.
    for other in session.scalars(select(MerchantAccount).where(MerchantAccount.clinic_id == clinic.id,
                                                               MerchantAccount.channel == channel,
                                                               MerchantAccount.app_id != fields["app_id"])):
        other.active = False


def seed_demo(rt: Runtime, sandbox_url: str, today: date | None = None) -> str:
    world = _fetch_sandbox(sandbox_url)
    base = sandbox_url.rstrip("/")
    wechat = next(m for m in world["wechat"] if m.get("clinic_code", "demo") == "demo")
    alipay = next(m for m in world["alipay"] if m.get("clinic_code", "demo") == "demo")
    his = world["his"][0]
    today = today or datetime.now(SHANGHAI).date()
    with rt.db.session() as session:
        clinic = session.scalar(select(Clinic).where(Clinic.code == "demo"))
        if clinic is None:
            clinic = Clinic(code="demo", name="演示诊所 Demo Clinic", his_base_url=f"{base}/his/",
                            his_key_id=his["key_id"], his_secret=his["secret"])
            session.add(clinic)
        clinic.his_base_url, clinic.his_key_id, clinic.his_secret = f"{base}/his/", his["key_id"], his["secret"]
        session.flush()
        _upsert_account(session, clinic, "wechat", {
            "app_id": wechat["appid"], "mch_id": wechat["mch_id"], "api_key": wechat["api_key"],
            "app_secret": wechat["app_secret"], "sign_type": wechat["sign_type"],
            "api_base_url": f"{base}/wxpay/", "login_base_url": f"{base}/wxlogin/", "active": True,
            "refund_window_days": 365,
        }, wechat.get("message_templates", []))
        _upsert_account(session, clinic, "alipay", {
            "app_id": alipay["app_id"], "mch_id": alipay.get("pid"), "sign_type": "RSA2",
            "app_private_key": alipay["app_private_key"], "alipay_public_key": alipay["alipay_public_key"],
            "api_base_url": f"{base}/alipay/gateway.do", "login_base_url": None, "active": True,
            "refund_window_days": 365,
        }, alipay.get("message_templates", []))
        slots_added = 0
        for code, name, price_fen, capacity in DEMO_ITEMS:
            item = session.scalar(select(Item).where(Item.clinic_id == clinic.id, Item.code == code))
            if item is None:
                item = Item(clinic_id=clinic.id, code=code, name=name, price_fen=price_fen)
                session.add(item)
                session.flush()
            for channel in ("wechat", "alipay"):
                if session.scalar(select(ItemInventory).where(ItemInventory.item_id == item.id,
                                                              ItemInventory.channel == channel)) is None:
                    session.add(ItemInventory(item_id=item.id, channel=channel, quantity=DEMO_INVENTORY))
            existing = set(session.scalars(select(Slot.starts_at).where(Slot.item_id == item.id)))
            for day in range(DAYS_AHEAD):
                for hour in SLOT_HOURS:
                    starts = datetime.combine(today + timedelta(days=day), time(hour), SHANGHAI)
                    if starts.astimezone(UTC) in existing:
                        continue
                    session.add(Slot(item_id=item.id, starts_at=starts, ends_at=starts + timedelta(hours=1),
                                     capacity=capacity, reserved=0))
                    slots_added += 1
        users_changed = seed_demo_users(session, clinic, rt.settings.DEMO_PASSWORD)
    return (f"clinic demo ready: wechat app {wechat['appid']}, alipay app {alipay['app_id']}, "
            f"{len(DEMO_ITEMS)} items, {slots_added} new slots, {users_changed} demo users created or updated")
