"""What an exported cell may carry: no spreadsheet formula, no unmasked personal name.

A cell whose text starts with = + - @ (or a tab or carriage return, which some
spreadsheets skip before looking for one) is read as a formula when the file is
opened; a leading single quote makes the spreadsheet show it as plain text.
"""
from __future__ import annotations

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
TEXT_MARKER = "'"


def neutralise_cell(value: str) -> str:
    """'=cmd|...' -> "'=cmd|..."; any other text unchanged."""
    if value and value.startswith(FORMULA_TRIGGERS):
        return TEXT_MARKER + value
    return value


def mask_person_name(name: str | None) -> str:
    """张三 -> 张*, 张小三 -> 张*三, 欧阳小明 -> 欧**明: the first and last characters stay."""
    name = (name or "").strip()
    if len(name) <= 1:
        return "*" * len(name)
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]
