"""A booking asks the admission gate before the database confirms the token's session (so a crowd's sold-out
answers need no database work). Attacks on that order: a logged-out token must take no place, neither through
the gate nor the database, must not leave an Idempotency-Key answered 401 for its user's next login, and may
learn only what the catalogue shows anyone signed in (that the slot is full)."""
from __future__ import annotations

from sqlalchemy import func, select

from app.db.models import Order, Slot
from tests.api.order_helpers import MP, add_patient, booking, created, label, place_order, refusal, user
from tests.e2e.helpers import fresh_slot


def _held(rt, slot_id: int) -> tuple[int, int]:
    with rt.db.session() as session:
        orders = session.scalar(select(func.count()).select_from(Order).where(Order.slot_id == slot_id))
        return session.get(Slot, slot_id).reserved, orders


def test_a_logged_out_token_takes_no_place_and_its_key_stays_free_for_the_next_login(client, sandbox, rt,
                                                                                      demo_clinic):
    who = label("logged-out")
    stolen = user(client, sandbox, who)
    patient = add_patient(client, stolen, "王五")
    item_id, slot_id = fresh_slot(rt, capacity=1)
    assert client.post(f"{MP}/auth/logout", headers=stolen).status_code == 204

    plain = place_order(client, stolen, booking(item_id, slot_id, patient["id"]))
    keyed = place_order(client, stolen, booking(item_id, slot_id, patient["id"]), key="book-once")

    assert refusal(plain) == (401, "token_revoked")
    assert refusal(keyed) == (401, "token_revoked")
    assert _held(rt, slot_id) == (0, 0)
    # The only place is still there (the gate gave back what it admitted), and the key was not spent on a 401.
    again = user(client, sandbox, who)
    booked = created(place_order(client, again, booking(item_id, slot_id, patient["id"]), key="book-once"))
    assert booked["slot"]["id"] == slot_id
    assert _held(rt, slot_id) == (1, 1)


def test_a_logged_out_token_learns_only_that_a_full_slot_is_full(client, sandbox, rt, demo_clinic):
    owner = user(client, sandbox, label("owner"))
    item_id, slot_id = fresh_slot(rt, capacity=1)
    created(place_order(client, owner, booking(item_id, slot_id, add_patient(client, owner, "张三")["id"])))
    stolen = user(client, sandbox, label("late"))
    patient = add_patient(client, stolen, "李四")
    assert client.post(f"{MP}/auth/logout", headers=stolen).status_code == 204

    full = place_order(client, stolen, booking(item_id, slot_id, patient["id"]))
    other = fresh_slot(rt, capacity=1)
    open_slot = place_order(client, stolen, booking(*other, patient["id"]))
    topup = client.post(f"{MP}/orders", headers=stolen,
                        json={"type": "topup", "card_no": "D0000001", "amount_fen": 100, "channel": "wechat"})

    assert refusal(full) == (409, "slot_sold_out")  # what GET /items shows any signed-in user
    assert refusal(open_slot) == (401, "token_revoked")
    assert refusal(topup) == (401, "token_revoked")
    assert _held(rt, slot_id) == (1, 1) and _held(rt, other[1]) == (0, 0)
