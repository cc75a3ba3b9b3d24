"""Shared steps of the end-to-end tests: users, a fresh slot, and the database's view."""
from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from app.db.models import Clinic, HisOutbox, Item, ItemInventory, Order, OrderEvent, Slot
from mini_program_mock.patient import MiniProgramClient
from tests.api.mp_helpers import channel_user_id


def new_client(platform, sandbox, channel: str, label: str) -> MiniProgramClient:
    client = MiniProgramClient(platform.url, sandbox.url, channel, say=lambda _line: None)
    client.login(channel_user_id(channel, label))
    return client


def new_patient(client: MiniProgramClient, name: str = "李四") -> dict:
    return client.call("POST", "/patients", json={"name": name, "phone": "13700001111", "relation": "self"})


def fresh_slot(rt, capacity: int, inventory: int = 1000, starts_in: timedelta = timedelta(days=2)) -> tuple[int, int]:
    """A new item with one slot of `capacity` places, so a test owns its inventory."""
    with rt.db.session() as session:
        clinic = session.scalar(select(Clinic).where(Clinic.code == "demo"))
        stamp = datetime.now(UTC).strftime("%H%M%S%f")
        item = Item(clinic_id=clinic.id, code=f"T{stamp}", name=f"测试项目 {stamp}", price_fen=2000)
        session.add(item)
        session.flush()
        for channel in ("wechat", "alipay"):
            session.add(ItemInventory(item_id=item.id, channel=channel, quantity=inventory, reserved=0))
        starts = (datetime.now(UTC) + starts_in).replace(microsecond=0)
        slot = Slot(item_id=item.id, starts_at=starts, ends_at=starts + timedelta(hours=1), capacity=capacity,
                    reserved=0)
        session.add(slot)
        session.flush()
        return item.id, slot.id


def order_row(rt, order_no: str) -> Order:
    with rt.db.session() as session:
        return session.scalar(select(Order).where(Order.order_no == order_no))


def events_to(rt, order_no: str, status: str) -> int:
    with rt.db.session() as session:
        order = session.scalar(select(Order).where(Order.order_no == order_no))
        return session.scalar(select(func.count(OrderEvent.id)).where(OrderEvent.order_id == order.id,
                                                                      OrderEvent.to_status == status))


def outbox_rows(rt, order_no: str) -> list[HisOutbox]:
    with rt.db.session() as session:
        order = session.scalar(select(Order).where(Order.order_no == order_no))
        return list(session.scalars(select(HisOutbox).where(HisOutbox.order_id == order.id)))


def wait_until(predicate, timeout: float = 30.0, interval: float = 0.3, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
