"""Steps shared by the mini-program orders API tests: users, patients, cards, bills, slots and the ledgers."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import requests
from sqlalchemy import func, select, update

from app.db.models import Order, PaymentAttempt, Slot
from tests.api.card_helpers import bind, his_card
from tests.api.mp_helpers import bearer, login
from tests.e2e.helpers import fresh_slot

MP = "/api/mp/v1"
SHANGHAI = timezone(timedelta(hours=8))


def user(client, sandbox, label: str, channel: str = "wechat") -> dict:
    """Bearer headers of a new (or returning) mini-program user known by `label`."""
    return bearer(login(client, sandbox, channel, openid=label)["token"])


def add_patient(client, headers: dict, name: str = "李四", phone: str = "13700001111") -> dict:
    resp = client.post(f"{MP}/patients", json={"name": name, "phone": phone, "relation": "self"}, headers=headers)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def bound_card(client, sandbox, headers: dict) -> str:
    """A new HIS card, bound to a new patient of this user who is its holder (same name and phone), with the
    code the HIS's phone received."""
    card = his_card(sandbox)
    patient = add_patient(client, headers, card["name"], card["phone"])
    bound = bind(client, sandbox, headers, patient["id"], card["card_no"], card["phone"])
    assert bound.status_code == 201, bound.get_json()
    return card["card_no"]


def his_bill(sandbox, card_no: str, amount_fen: int, kind: str = "exam") -> str:
    resp = requests.post(f"{sandbox.url}/sandbox/his/bills",
                         json={"card_no": card_no, "kind": kind, "title": f"{kind} 检查", "amount_fen": amount_fen},
                         timeout=5)
    assert resp.status_code == 201, resp.text
    return resp.json()["bill_id"]


def label(name: str) -> str:
    """A user label of this module, unique per call."""
    return f"orders-api-{name}-{uuid.uuid4().hex[:8]}"


def booking(item_id: int, slot_id: int, patient_id: int, channel: str = "wechat") -> dict:
    return {"type": "booking", "item_id": item_id, "slot_id": slot_id, "patient_id": patient_id, "channel": channel}


def topup(card_no: str, amount_fen, channel: str = "wechat") -> dict:
    return {"type": "topup", "card_no": card_no, "amount_fen": amount_fen, "channel": channel}


def bills(card_no: str, bill_ids: list[str], channel: str = "wechat") -> dict:
    return {"type": "visit_bill", "card_no": card_no, "bill_ids": bill_ids, "channel": channel}


def place_order(client, headers: dict, body: dict, key: str | None = None):
    return client.post(f"{MP}/orders", json=body, headers={**headers, **({"Idempotency-Key": key} if key else {})})


def created(resp) -> dict:
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def refusal(resp) -> tuple[int, str | None]:
    return resp.status_code, (resp.get_json() or {}).get("error")


def remaining(client, headers: dict, rt, item_id: int, slot_id: int) -> int:
    """The slot's places left, as the mini-program's slot list shows them."""
    with rt.db.session() as session:
        day = session.get(Slot, slot_id).starts_at.astimezone(SHANGHAI).date()
    resp = client.get(f"{MP}/items/{item_id}/slots", query_string={"date": day.isoformat()}, headers=headers)
    assert resp.status_code == 200, resp.get_json()
    [slot] = [s for s in resp.get_json() if s["id"] == slot_id]
    return slot["remaining"]


def pay(client, headers: dict, order_no: str) -> dict:
    resp = client.post(f"{MP}/orders/{order_no}/pay", headers=headers)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def paying_booking(client, rt, headers: dict, patient: dict) -> tuple[int, int, dict, str]:
    """A booking of a fresh two-place slot with a WeChat trade opened: (item_id, slot_id, order, out_trade_no)."""
    item_id, slot_id = fresh_slot(rt, capacity=2)
    order = created(place_order(client, headers, booking(item_id, slot_id, patient["id"])))
    return item_id, slot_id, order, pay(client, headers, order["order_no"])["out_trade_no"]


def wechat_merchant(sandbox) -> dict:
    return next(m for m in sandbox.merchants()["wechat"] if m["clinic_code"] == "demo")


def alipay_merchant(sandbox) -> dict:
    return next(m for m in sandbox.merchants()["alipay"] if m["clinic_code"] == "demo")


def wechat_trade(sandbox, out_trade_no: str) -> dict:
    resp = requests.get(f"{sandbox.url}/sandbox/wechat/trades/{out_trade_no}",
                        params={"appid": wechat_merchant(sandbox)["appid"]}, timeout=5)
    assert resp.status_code == 200, resp.text
    return resp.json()


def alipay_trade(sandbox, out_trade_no: str) -> dict:
    resp = requests.get(f"{sandbox.url}/sandbox/alipay/trades/{out_trade_no}",
                        params={"app_id": alipay_merchant(sandbox)["app_id"]}, timeout=5)
    assert resp.status_code == 200, resp.text
    return resp.json()


def attempts_of(rt, order_no: str) -> list[PaymentAttempt]:
    with rt.db.session() as session:
        return list(session.scalars(select(PaymentAttempt).join(Order, Order.id == PaymentAttempt.order_id)
                                    .where(Order.order_no == order_no).order_by(PaymentAttempt.id)))


def orders_of_user(rt, order_no: str) -> int:
    """How many orders the user who placed `order_no` has in the database."""
    with rt.db.session() as session:
        owner = session.scalar(select(Order.user_id).where(Order.order_no == order_no))
        return session.scalar(select(func.count(Order.id)).where(Order.user_id == owner))


def make_overdue(rt, order_no: str) -> int:
    """Expire the order in the database, and keep the dispatcher (if a platform runs) off it and its
    attempts, so that the test alone decides when it is handled. Returns the order's id."""
    with rt.db.session() as session:
        order = session.scalar(select(Order).where(Order.order_no == order_no))
        now = datetime.now(UTC)
        session.execute(update(Order).where(Order.id == order.id)
                        .values(expires_at=now - timedelta(minutes=1), next_check_at=now + timedelta(hours=1)))
        session.execute(update(PaymentAttempt).where(PaymentAttempt.order_id == order.id,
                                                     PaymentAttempt.status == "pending")
                        .values(next_query_at=now + timedelta(hours=1)))
        return order.id
