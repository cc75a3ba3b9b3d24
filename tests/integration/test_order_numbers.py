"""An order number's random part repeating within its second (one in a million per pair of orders made in the same
second; 100 orders in a second make 4,950 pairs, about a 1 in 200 chance): the order is placed again with a new
number, never a 500.

The repeat is made real in PostgreSQL: a trigger on this test's item inserts, just before the booking's own
insert, another order holding the same number (what a concurrent request that drew it first would have
committed), for as many inserts as the test arms it; a sequence counts them, since it is not rolled back with
the failed transaction."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select, text

from app.db.models import Order, Slot
from tests.api.order_helpers import add_patient, booking, bound_card, created, label, place_order, refusal, topup, user
from tests.e2e.helpers import fresh_slot

TWIN = """
CREATE OR REPLACE FUNCTION test_order_number_twin() RETURNS trigger AS $$
DECLARE twin orders%ROWTYPE;
BEGIN
  IF pg_trigger_depth() = 1 AND NEW.{column} = {value} AND nextval('test_order_number_repeats') <= {times} THEN
    twin := NEW;
    twin.id := nextval(pg_get_serial_sequence('orders', 'id'));
    twin.active_booking_key := NULL;
    INSERT INTO orders SELECT twin.*;
  END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql;
"""


@pytest.fixture()
def repeat_numbers(rt):
    """`arm(column, value, times)`: the next `times` inserts of an order whose `column` is `value` meet a twin."""
    if rt.db.engine.dialect.name != "postgresql":
        pytest.skip("the repeat is made by a PostgreSQL trigger")

    def arm(column: str, value, times: int) -> None:
        with rt.db.engine.begin() as conn:
            conn.execute(text("DROP SEQUENCE IF EXISTS test_order_number_repeats"))
            conn.execute(text("CREATE SEQUENCE test_order_number_repeats"))
            conn.execute(text(TWIN.format(column=column, value=value if isinstance(value, int) else f"'{value}'",
                                          times=times)))
            conn.execute(text("CREATE TRIGGER test_order_number_twin BEFORE INSERT ON orders FOR EACH ROW "
                              "EXECUTE FUNCTION test_order_number_twin()"))

    yield arm
    with rt.db.engine.begin() as conn:
        conn.execute(text("DROP TRIGGER IF EXISTS test_order_number_twin ON orders"))
        conn.execute(text("DROP FUNCTION IF EXISTS test_order_number_twin()"))
        conn.execute(text("DROP SEQUENCE IF EXISTS test_order_number_repeats"))


def _repeats_met(rt) -> int:
    with rt.db.engine.connect() as conn:
        return conn.execute(text("SELECT last_value FROM test_order_number_repeats")).scalar_one()


def _held(rt, slot_id: int) -> tuple[int, int]:
    with rt.db.session() as session:
        orders = session.scalar(select(func.count()).select_from(Order).where(Order.slot_id == slot_id))
        return session.get(Slot, slot_id).reserved, orders


def test_a_booking_whose_number_was_taken_is_placed_with_a_new_one(client, sandbox, rt, demo_clinic,
                                                                   repeat_numbers):
    headers = user(client, sandbox, label("number-repeat"))
    item_id, slot_id = fresh_slot(rt, capacity=1)
    patient = add_patient(client, headers)
    repeat_numbers("item_id", item_id, times=2)

    booked = created(place_order(client, headers, booking(item_id, slot_id, patient["id"])))

    assert _repeats_met(rt) == 3  # two inserts met a twin, the third found its number free
    assert booked["slot"]["id"] == slot_id
    assert _held(rt, slot_id) == (1, 1)  # one place, one order: the twins went with their transactions


def test_three_taken_numbers_in_a_row_are_a_503_and_the_place_goes_back(client, sandbox, rt, demo_clinic,
                                                                        repeat_numbers):
    headers = user(client, sandbox, label("number-exhausted"))
    item_id, slot_id = fresh_slot(rt, capacity=1)
    patient = add_patient(client, headers)
    repeat_numbers("item_id", item_id, times=3)

    refused = place_order(client, headers, booking(item_id, slot_id, patient["id"]))

    assert refusal(refused) == (503, "order_number_unavailable")
    assert refused.headers["Retry-After"] == "1"
    assert _held(rt, slot_id) == (0, 0)
    # The gate has its place back too: the next patient books it.
    other = user(client, sandbox, label("number-next"))
    assert created(place_order(client, other, booking(item_id, slot_id, add_patient(client, other)["id"])))


def test_a_top_up_whose_number_was_taken_is_placed_with_a_new_one(client, sandbox, rt, demo_clinic,
                                                                  repeat_numbers):
    headers = user(client, sandbox, label("number-topup"))
    card_no = bound_card(client, sandbox, headers)
    repeat_numbers("card_no", card_no, times=1)

    order = created(place_order(client, headers, topup(card_no, 5000)))

    assert _repeats_met(rt) == 2
    assert (order["type"], order["amount_fen"]) == ("topup", 5000)
