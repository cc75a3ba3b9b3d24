"""Invoice amounts, settlement windows, coupon expiry and statement months (pure arithmetic)."""
from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from app.domain.errors import Conflict, InvalidInput
from app.domain.settlement import (
    add_months,
    coupon_expiry,
    ended_month,
    invoice_amount_fen,
    month_bounds_utc,
    parse_month,
    parse_settlement_months,
    require_settlement_window,
    settlement_window_open,
)

QUARTERLY = frozenset({1, 4, 7, 10})


@pytest.mark.parametrize("amount_fen, expected", [
    (10000, 9434),   # the policy's example: 100.00 / 1.06 = 94.339... -> 94.34
    (53, 50),        # 50.0000 exactly
    (159, 150),      # 150.0000 exactly
    (1, 1),          # 0.943... -> 1
    (106, 100),
    (3, 3),          # 2.830... -> 3
    (2, 2),          # 1.886... -> 2
    (0, 0),
    (999_999_999, 943_396_225),  # 943396225.4716... -> down
])
def test_an_ordinary_invoice_is_for_the_amount_net_of_six_percent_rounded_half_up(amount_fen, expected):
    assert invoice_amount_fen(amount_fen, "normal") == expected


def test_quotients_either_side_of_half_a_fen_round_to_the_nearer_fen():
    # fen / 1.06 = fen * 50 / 53: the fraction is r / 53, never exactly a half; 26/53 (0.49) is the
    # largest that rounds down and 27/53 (0.51) the smallest that rounds up.
    below = [fen for fen in range(1, 3000) if fen * 50 % 53 == 26]
    above = [fen for fen in range(1, 3000) if fen * 50 % 53 == 27]
    assert below and above
    for fen in below:
        assert invoice_amount_fen(fen, "normal") == fen * 50 // 53
    for fen in above:
        assert invoice_amount_fen(fen, "normal") == fen * 50 // 53 + 1


def test_ordinary_invoice_matches_exact_rational_rounding_everywhere():
    for fen in range(0, 5000):
        exact_twice = (fen * 200) // 106  # floor(2 * fen / 1.06)
        expected = (exact_twice + 1) // 2  # half-up of fen / 1.06
        assert invoice_amount_fen(fen, "normal") == expected, fen


def test_a_vat_special_invoice_is_for_the_amount():
    assert invoice_amount_fen(10000, "special") == 10000
    assert invoice_amount_fen(1, "special") == 1


def test_unknown_invoice_type_and_non_integer_amounts_are_refused():
    with pytest.raises(InvalidInput) as refused:
        invoice_amount_fen(10000, "receipt")
    assert refused.value.code == "invalid_invoice_type"
    with pytest.raises(ValueError):
        invoice_amount_fen(100.0, "normal")
    with pytest.raises(ValueError):
        invoice_amount_fen(-1, "special")


@pytest.mark.parametrize("settled_on, expires_on", [
    (date(2024, 4, 15), date(2027, 4, 15)),
    (date(2024, 2, 29), date(2027, 2, 28)),
    (date(2025, 1, 31), date(2028, 1, 31)),
    (date(2025, 2, 28), date(2028, 2, 28)),
])
def test_a_coupon_is_valid_three_years_from_settlement(settled_on, expires_on):
    assert coupon_expiry(settled_on) == expires_on


def test_settlement_months_parse_from_the_setting():
    assert parse_settlement_months("1,4,7,10") == QUARTERLY
    assert parse_settlement_months(" 3 , 12 ") == {3, 12}
    for bad in ("", "0", "13", "1,x", "1;4"):
        with pytest.raises(ValueError):
            parse_settlement_months(bad)


def test_the_window_follows_the_shanghai_month():
    # 31 March 16:30 UTC is already 1 April 00:30 in Shanghai: the April window is open.
    assert settlement_window_open(datetime(2025, 3, 31, 16, 30, tzinfo=UTC), QUARTERLY)
    assert not settlement_window_open(datetime(2025, 3, 31, 15, 30, tzinfo=UTC), QUARTERLY)
    assert not settlement_window_open(datetime(2025, 5, 10, tzinfo=UTC), QUARTERLY)


def test_outside_the_window_is_refused_with_the_next_opening():
    with pytest.raises(Conflict) as refused:
        require_settlement_window(datetime(2025, 11, 10, tzinfo=UTC), QUARTERLY)
    assert refused.value.code == "settlement_window_closed"
    assert "2026-01" in refused.value.message
    require_settlement_window(datetime(2025, 10, 1, tzinfo=UTC), QUARTERLY)


def test_only_a_month_that_has_ended_in_shanghai_gets_a_statement():
    # 31 May 16:00 UTC = 1 June 00:00 Shanghai: May has ended.
    assert ended_month("2025-05", datetime(2025, 5, 31, 16, 0, tzinfo=UTC)) == date(2025, 5, 1)
    with pytest.raises(InvalidInput) as refused:
        ended_month("2025-05", datetime(2025, 5, 31, 15, 59, tzinfo=UTC))
    assert refused.value.code == "month_not_ended"
    with pytest.raises(InvalidInput):
        ended_month("2030-01", datetime(2025, 6, 1, tzinfo=UTC))


@pytest.mark.parametrize("text", ["2025-13", "2025-00", "2025-5", "25-05", "2025/05", "", "0000-01", "２０２５-05",
                                  "2025-05\n"])
def test_malformed_months_are_refused(text):
    with pytest.raises(InvalidInput) as refused:
        parse_month(text)
    assert refused.value.code == "invalid_month"


def test_month_bounds_are_shanghai_midnights_in_utc():
    start, end = month_bounds_utc(date(2025, 12, 1))
    assert start == datetime(2025, 11, 30, 16, 0, tzinfo=UTC)
    assert end == datetime(2025, 12, 31, 16, 0, tzinfo=UTC)
    assert add_months(date(2025, 12, 1), 1) == date(2026, 1, 1)
    assert add_months(date(2025, 1, 1), -1) == date(2024, 12, 1)
