"""200 concurrent booking requests for 10 places: exactly 10 orders, the rest 409 slot_sold_out."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import requests
from sqlalchemy import func, select

from app.db.models import Order, Slot
from tests.e2e.helpers import fresh_slot, new_client, new_patient


def test_flash_crowd_never_oversells(platform, sandbox, rt):
    item_id, slot_id = fresh_slot(rt, capacity=10)
    crowd = []
    for i in range(20):
        client = new_client(platform, sandbox, "wechat", f"crowd-{slot_id}-{i}")
        crowd.append((client.token, new_patient(client)["id"]))

    def book(n: int):
        token, patient_id = crowd[n % len(crowd)]
        return requests.post(f"{platform.url}/api/mp/v1/orders", timeout=60,
                             headers={"Authorization": f"Bearer {token}"},
                             json={"type": "booking", "item_id": item_id, "slot_id": slot_id,
                                   "patient_id": patient_id, "channel": "wechat"})

    with ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(book, range(200)))

    statuses = [r.status_code for r in responses]
    assert statuses.count(201) == 10, statuses
    assert statuses.count(409) == 190, statuses
    assert {r.json()["error"] for r in responses if r.status_code == 409} == {"slot_sold_out"}
    with rt.db.session() as session:
        assert session.get(Slot, slot_id).reserved == 10
        assert session.scalar(select(func.count(Order.id)).where(Order.slot_id == slot_id)) == 10
