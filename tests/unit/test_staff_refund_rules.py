"""Which paid orders staff may refund, what the HIS is told first, and when finance must approve."""
from __future__ import annotations

import pytest

from app.domain.errors import Conflict, InvalidInput
from app.domain.staff_refunds import needs_approval, plan


@pytest.mark.parametrize(("order_type", "status", "expected"), [
    ("topup", "completed", "refund_hold"),
    ("topup", "partially_refunded", "refund_hold"),
    ("visit_bill", "completed", "bill_settlement_reversal"),
    ("visit_bill", "partially_refunded", "bill_settlement_reversal"),
    ("booking", "redeemed", "charge_adjustment"),
    ("booking", "paid", None),
    ("booking", "booked", None),
    ("booking", "no_show", None),
    ("booking", "rescheduled", None),
])
def test_each_refundable_order_waits_for_its_his_write(order_type, status, expected):
    assert plan(order_type, status, 100, 1000) == expected


@pytest.mark.parametrize(("order_type", "status"), [
    ("topup", "paid"), ("topup", "refunding"), ("topup", "refunded"), ("topup", "created"),
    ("visit_bill", "paid"), ("visit_bill", "refunded"), ("visit_bill", "closed"),
    ("booking", "created"), ("booking", "cancelled"), ("booking", "refunding"), ("booking", "refunded"),
])
def test_orders_without_money_to_refund_or_not_settled_with_the_his_are_refused(order_type, status):
    with pytest.raises(Conflict) as refused:
        plan(order_type, status, 100, 1000)
    assert refused.value.code == "order_not_refundable"


def test_a_booking_not_yet_redeemed_is_refunded_in_full_only_by_its_cancellation():
    with pytest.raises(Conflict) as refused:
        plan("booking", "booked", 1000, 1000)
    assert refused.value.code == "use_cancellation"
    assert "cancel" in refused.value.message
    assert plan("booking", "redeemed", 1000, 1000) == "charge_adjustment"


def test_more_than_remains_and_nothing_are_refused():
    with pytest.raises(Conflict) as over:
        plan("topup", "completed", 1001, 1000)
    with pytest.raises(InvalidInput):
        plan("topup", "completed", 0, 1000)
    assert (over.value.code, over.value.details) == ("refund_exceeds_refundable", {"refundable_fen": 1000})


def test_finance_approves_only_above_the_threshold():
    assert (needs_approval(50_000, 50_000), needs_approval(50_001, 50_000), needs_approval(1, 0)) == (False, True,
                                                                                                      True)
