"""The hash join of the reconciliation, for any keyed records (the HIS leg): one pass, linear in records."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class KeyedMatch(Generic[T]):
    matched: int = 0
    unknown: list[T] = field(default_factory=list)
    """Records whose key is not among ours."""
    amount_mismatches: list[tuple[T, int]] = field(default_factory=list)
    """Records with our amount beside them."""


_ABSENT = object()


def match_keyed(records: Iterable[T], key: Callable[[T], str], amount: Callable[[T], int],
                ours: dict[str, int | None]) -> KeyedMatch[T]:
    """The same join for any keyed records; what stays in `ours` is missing from the records. An amount of
    None in `ours` is not compared (a write whose amount the other side decides)."""
    result: KeyedMatch[T] = KeyedMatch()
    take = ours.pop
    for record in records:
        expected = take(key(record), _ABSENT)
        if expected is _ABSENT:
            result.unknown.append(record)
        elif expected is not None and expected != amount(record):
            result.amount_mismatches.append((record, expected))
        else:
            result.matched += 1
    return result
