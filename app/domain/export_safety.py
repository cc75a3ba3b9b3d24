"""What an exported cell may carry: no spreadsheet formula, no unmasked personal name.

Following OWASP's CSV-injection guidance: a spreadsheet evaluates a cell as a formula when its first
character is = + - @ (or a tab or carriage return, which some skip before looking), and several also
skip leading spaces, accept the full-width forms ＝ ＋ － ＠, and split a cell at `|` or `;` (DDE
payloads such as `;=cmd|' /C calc'!A0`). So a cell whose first character after any run of
whitespace, `|` and `;` is a trigger gets a leading single quote, which makes the spreadsheet show
it as plain text. Other text is left exactly as it is.
"""
from __future__ import annotations

FORMULA_TRIGGERS = frozenset("=+-@＝＋－＠")
# Skipped before looking for a trigger: whitespace (including tab, CR, LF and the ideographic space)
# and the separators a spreadsheet may split a cell at.
_SKIPPED_SEPARATORS = frozenset("|;")
TEXT_MARKER = "'"


def _first_meaningful(value: str) -> str | None:
    for char in value:
        if char.isspace() or char in _SKIPPED_SEPARATORS:
            continue
        return char
    return None


def is_formula_like(value: str) -> bool:
    """True when a spreadsheet might evaluate this text (see the module docstring)."""
    if not value:
        return False
    if value[0] in "\t\r\n":
        return True
    return _first_meaningful(value) in FORMULA_TRIGGERS


def neutralise_cell(value: str) -> str:
    """'=cmd|...' -> "'=cmd|..."; ' ＝1+1' -> "' ＝1+1"; any other text unchanged."""
    return TEXT_MARKER + value if is_formula_like(value) else value


def mask_person_name(name: str | None) -> str:
    """张三 -> 张*, 张小三 -> 张*三, 欧阳小明 -> 欧**明: the first and last characters stay."""
    name = (name or "").strip()
    if len(name) <= 1:
        return "*" * len(name)
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]
