"""Exported cells never carry a live formula, and patient names leave masked."""
from __future__ import annotations

import pytest

from app.domain.export_safety import mask_person_name, neutralise_cell


@pytest.mark.parametrize("value", ["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1:A2)", "\t=1+1", "\r=1+1",
                                   "=HYPERLINK(\"http://x\",\"y\")"])
def test_a_cell_that_a_spreadsheet_would_evaluate_is_turned_into_text(value):
    assert neutralise_cell(value) == "'" + value


@pytest.mark.parametrize("value", ["洁牙套餐", "4200000000202501011234567890", "2025-03-05 10:00:00", "", "a=b",
                                   "'=already quoted"])
def test_other_text_is_left_as_it_is(value):
    assert neutralise_cell(value) == value


@pytest.mark.parametrize("name, masked", [
    ("张三", "张*"),
    ("张小三", "张*三"),
    ("欧阳小明", "欧**明"),
    ("李", "*"),
    ("", ""),
    (None, ""),
    ("  王五  ", "王*"),
])
def test_patient_names_keep_only_their_first_and_last_characters(name, masked):
    assert mask_person_name(name) == masked
