"""The card-refund rules (seed 000, section 3.3): the three limits at their boundaries, and the split
over top-up orders, newest first, each part no larger than what remains of its order."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.errors import Conflict, InvalidInput
from app.domain.refunds import RefundableTopup, RefundPart, allocate, check_limits

T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
WINDOW_PASSED = "past the channel's refund window"
COUNT_LIMIT = "at WeChat's limit of 50 refunds"


def topup(order_id: int, remaining_fen: int, days_after: float = 0, skip: str | None = None) -> RefundableTopup:
    return RefundableTopup(order_id, T0 + timedelta(days=days_after), remaining_fen, skip)


def refusal(amount_fen: int, balance_fen: int, topups: list[RefundableTopup]) -> Conflict:
    with pytest.raises(Conflict) as caught:
        check_limits(amount_fen, balance_fen, topups)
    return caught.value


# --- check_limits -----------------------------------------------------------------------------

@pytest.mark.parametrize("amount_fen", [0, -1])
def test_a_refund_of_nothing_or_less_is_invalid(amount_fen):
    with pytest.raises(InvalidInput) as caught:
        check_limits(amount_fen, 10_000, [topup(1, 10_000)])
    assert caught.value.code == "invalid_amount"


def test_the_balance_limit_admits_exactly_the_balance_and_refuses_one_fen_more():
    topups = [topup(1, 5000), topup(2, 5000)]
    check_limits(6000, 6000, topups)
    over = refusal(6001, 6000, topups)
    assert over.code == "refund_exceeds_balance" and over.details == {"balance_fen": 6000}


def test_the_online_topup_limit_admits_exactly_what_remains_and_refuses_one_fen_more():
    topups = [topup(1, 3000), topup(2, 1000)]
    check_limits(4000, 9000, topups)
    over = refusal(4001, 9000, topups)
    assert over.code == "refund_exceeds_online_topups" and over.details == {"refundable_topups_fen": 4000}


def test_a_card_without_online_topups_refunds_nothing_online():
    assert refusal(1, 50_000, []).code == "refund_exceeds_online_topups"
    assert refusal(1, 50_000, [topup(1, 0)]).code == "refund_exceeds_online_topups"


def test_skipped_orders_count_as_topups_but_cannot_take_the_refund():
    topups = [topup(1, 1000, skip=WINDOW_PASSED), topup(2, 2000, days_after=1), topup(3, 500, skip=COUNT_LIMIT)]
    check_limits(2000, 10_000, topups)
    over = refusal(2001, 10_000, topups)
    assert over.code == "refund_exceeds_refundable_orders" and over.details == {"refundable_fen": 2000}
    assert WINDOW_PASSED in over.message and COUNT_LIMIT in over.message
    # Beyond every top-up, skipped or not, the top-up limit is the one broken.
    assert refusal(3501, 10_000, topups).code == "refund_exceeds_online_topups"


def test_the_balance_is_checked_before_the_topups():
    # Both limits broken: the card's balance is what the patient is told about.
    assert refusal(5000, 1000, [topup(1, 2000)]).code == "refund_exceeds_balance"
    # A balance at or below zero (other refunds in flight) refuses any amount.
    assert refusal(1, 0, [topup(1, 2000)]).code == "refund_exceeds_balance"
    assert refusal(1, -300, [topup(1, 2000)]).code == "refund_exceeds_balance"


# --- allocate ---------------------------------------------------------------------------------

def test_the_newest_topup_is_refunded_first_and_each_part_stays_within_its_order():
    topups = [topup(1, 3000, days_after=0), topup(2, 2000, days_after=1), topup(3, 1000, days_after=2)]
    assert allocate(5500, topups) == [RefundPart(3, 1000), RefundPart(2, 2000), RefundPart(1, 2500)]


def test_newest_means_latest_paid_not_highest_order_id():
    # Order 9 was created first but paid last (a retried payment): it is the newest top-up.
    topups = [topup(9, 1000, days_after=5), topup(4, 1000, days_after=1), topup(7, 1000, days_after=3)]
    assert [p.order_id for p in allocate(3000, topups)] == [9, 7, 4]


def test_topups_paid_at_the_same_moment_go_higher_order_id_first():
    topups = [topup(5, 1000), topup(8, 1000), topup(6, 1000)]
    assert [p.order_id for p in allocate(2500, topups)] == [8, 6, 5]


def test_an_amount_inside_the_newest_order_is_one_part():
    assert allocate(700, [topup(1, 3000), topup(2, 2000, days_after=1)]) == [RefundPart(2, 700)]


def test_an_amount_ending_exactly_on_an_order_boundary_takes_no_zero_part():
    topups = [topup(1, 3000), topup(2, 2000, days_after=1)]
    assert allocate(2000, topups) == [RefundPart(2, 2000)]
    assert allocate(5000, topups) == [RefundPart(2, 2000), RefundPart(1, 3000)]


def test_skipped_and_fully_refunded_orders_are_passed_over():
    topups = [topup(1, 1000), topup(2, 4000, days_after=1, skip=WINDOW_PASSED), topup(3, 0, days_after=2),
              topup(4, 600, days_after=3, skip=COUNT_LIMIT), topup(5, 500, days_after=4)]
    assert allocate(1500, topups) == [RefundPart(5, 500), RefundPart(1, 1000)]


def test_more_than_the_usable_topups_is_refused_rather_than_split_short():
    with pytest.raises(Conflict) as caught:
        allocate(1501, [topup(1, 1000), topup(2, 500, days_after=1), topup(3, 900, skip=WINDOW_PASSED)])
    assert caught.value.code == "refund_exceeds_refundable_orders"


_topups = st.lists(
    st.tuples(st.integers(0, 5000), st.integers(0, 30), st.sampled_from([None, None, None, WINDOW_PASSED])),
    max_size=8,
).map(lambda rows: [topup(i + 1, rem, days, skip) for i, (rem, days, skip) in enumerate(rows)])


@given(topups=_topups, amount_fen=st.integers(1, 40_000), balance_fen=st.integers(0, 40_000))
def test_whatever_passes_the_limits_is_split_exactly_newest_first(topups, amount_fen, balance_fen):
    try:
        check_limits(amount_fen, balance_fen, topups)
    except Conflict:
        usable = sum(t.remaining_fen for t in topups if t.skip_reason is None)
        assert amount_fen > min(balance_fen, usable)
        return
    parts = allocate(amount_fen, topups)
    by_id = {t.order_id: t for t in topups}
    assert sum(p.amount_fen for p in parts) == amount_fen <= balance_fen
    assert len({p.order_id for p in parts}) == len(parts)
    for part in parts:
        source = by_id[part.order_id]
        assert source.skip_reason is None and 0 < part.amount_fen <= source.remaining_fen
    # Every part but the last empties its order; nothing older is touched while a newer order has money left.
    assert all(p.amount_fen == by_id[p.order_id].remaining_fen for p in parts[:-1])
    taken = [(by_id[p.order_id].paid_at, p.order_id) for p in parts]
    assert taken == sorted(taken, reverse=True)
    untouched_newer = [t for t in topups if t.skip_reason is None and t.remaining_fen > 0
                       and t.order_id not in {p.order_id for p in parts} and (t.paid_at, t.order_id) > taken[-1]]
    assert untouched_newer == []
