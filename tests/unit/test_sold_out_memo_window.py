"""SoldOutMemo.holds_any: true exactly while some remembered answer is still fresh, so a request outside a crowd
skips the sold-out lookup before Flask (app/api/mp/sold_out_edge.py)."""
from __future__ import annotations

from app.admission_gate import ADMITTED, SLOT_FULL, Admission, SoldOutMemo


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_it_holds_an_answer_only_while_one_is_fresh_and_not_after_a_clear():
    clock = _Clock()
    memo = SoldOutMemo(0.5, clock=clock)
    assert not memo.holds_any()

    memo.remember((1, 2, 3, "wechat"), Admission(ADMITTED), memo.version)
    assert not memo.holds_any()  # only sold-out answers are remembered

    memo.remember((1, 2, 3, "wechat"), Admission(SLOT_FULL), memo.version)
    assert memo.holds_any()
    clock.now += 0.49
    assert memo.holds_any()
    clock.now += 0.02
    assert not memo.holds_any()

    memo.remember((1, 2, 4, "wechat"), Admission(SLOT_FULL), memo.version)
    memo.clear()
    assert not memo.holds_any()


def test_a_memo_of_no_time_never_holds_anything():
    memo = SoldOutMemo(0)
    memo.remember((1, 2, 3, "wechat"), Admission(SLOT_FULL), memo.version)
    assert not memo.holds_any()
