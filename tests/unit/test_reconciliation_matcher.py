"""The bill-against-records matcher: every outcome, the trailer's totals, odd lines, and streaming."""
from __future__ import annotations

import io
import random
import tracemalloc
from dataclasses import dataclass

import pytest

from app.domain.bills import BillFormatError, BillIntegrityError, BillKind, WeChatBill
from app.domain.keyed_match import match_keyed
from app.domain.money import fen_to_yuan
from app.domain.reconciliation import AMOUNT, STATUS, UNKNOWN, Book, WeChatBillMatcher, match_rows

HEADER = ("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,"
          "交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,"
          "充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注")
TRAILER = "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"


@dataclass
class Row:
    out_trade_no: str
    amount_fen: int
    refund_no: str | None = None
    state: str = "SUCCESS"
    refund_state: str = "SUCCESS"
    goods: str = "就诊卡充值 Card top-up"

    def fee(self) -> int:
        return (self.amount_fen * 6 + 500) // 1000

    def fields(self, index: int) -> list[str]:
        refund = self.refund_no is not None
        y = fen_to_yuan
        return [f"2026-11-21 10:{index // 60 % 60:02d}:{index % 60:02d}", "wx8888888888888888", "1900000109", "0", "",
                f"42000000{index:020d}", self.out_trade_no, "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "JSAPI",
                "REFUND" if refund else self.state, "OTHERS", "CNY", y(0 if refund else self.amount_fen), "0.00",
                f"50300{index:023d}" if refund else "0", self.refund_no or "0", y(self.amount_fen if refund else 0),
                "0.00", "ORIGINAL" if refund else "", self.refund_state if refund else "", self.goods, "",
                y(-self.fee() if refund else self.fee()), "0.60%", y(0 if refund else self.amount_fen),
                y(self.amount_fen if refund else 0), ""]


def bill(rows: list[Row], *, count_delta: int = 0, fee_delta: int = 0, blank_lines: bool = False) -> bytes:
    lines = [HEADER]
    for index, row in enumerate(rows):
        lines.append(",".join("`" + value for value in row.fields(index)))
        if blank_lines and index % 3 == 0:
            lines.append("")
    settled = sum(r.amount_fen for r in rows if r.refund_no is None)
    refunded = sum(r.amount_fen for r in rows if r.refund_no is not None)
    fees = sum(-r.fee() if r.refund_no else r.fee() for r in rows)
    lines += [TRAILER, ",".join("`" + v for v in [str(len(rows) + count_delta), fen_to_yuan(settled),
                                                  fen_to_yuan(refunded), "0.00", fen_to_yuan(fees + fee_delta),
                                                  fen_to_yuan(settled), fen_to_yuan(refunded)])]
    return ("\r\n".join(lines) + "\r\n").encode()


def run(data: bytes, book: Book, block_bytes: int = 1 << 20, keep_unknown: bool = True):
    return WeChatBillMatcher(io.BytesIO(data), book, keep_unknown=keep_unknown, block_bytes=block_bytes).run()


def reasons(result) -> dict[str, str]:
    return {(u.row.out_refund_no or u.row.out_trade_no): u.reason for u in result.unmatched}


@pytest.mark.parametrize("block_bytes", [64, 700, 1 << 20])
def test_every_outcome_of_payments_and_refunds(block_bytes):
    rows = [Row("T1", 1000), Row("T2", 2000), Row("T3", 3000), Row("T4", 4000, state="REVOKED"),
            Row("T1", 300, refund_no="T1R01"), Row("T2", 500, refund_no="T2R01"),
            Row("T3", 700, refund_no="T3R01", refund_state="PROCESSING"), Row("T9", 900, refund_no="T9R01")]
    book = Book.of([("T1", 1000), ("T2", 2001), ("T4", 4000), ("T5", 5000)],
                   [("T1R01", 300), ("T2R01", 500), ("T3R01", 700), ("T8R01", 800)])
    result = run(bill(rows), book, block_bytes)
    assert result.matched == 3  # T1, T1R01, T2R01
    assert reasons(result) == {"T2": AMOUNT, "T3": UNKNOWN, "T4": STATUS, "T3R01": STATUS, "T9R01": UNKNOWN}
    amount = next(u for u in result.unmatched if u.reason == AMOUNT)
    assert (amount.row.amount_fen, amount.platform_amount_fen) == (2000, 2001)
    assert book.payments == {b"T5": 5000} and book.refunds == {b"T8R01": 800}, "left over: missing from the bill"
    refund = next(u.row for u in result.unmatched if u.row.out_refund_no == "T9R01")
    assert (refund.kind, refund.out_trade_no, refund.amount_fen, refund.fee_fen) == (BillKind.REFUND, "T9", 900, -5)
    assert (result.rows, result.payment_rows, result.refund_rows) == (8, 4, 4)
    assert result.payment_fen == 10_000 and result.refund_fen == 2400
    assert result.fee_fen == sum(r.fee() for r in rows[:4]) - sum(r.fee() for r in rows[4:])
    assert result.totals.count == 8


def test_a_trailer_that_does_not_add_up_fails_after_the_last_row():
    with pytest.raises(BillIntegrityError, match="总交易单数"):
        run(bill([Row("T1", 1000), Row("T2", 2000)], count_delta=1), Book())
    with pytest.raises(BillIntegrityError, match="手续费总金额"):
        run(bill([Row("T1", 1000)], fee_delta=-1), Book())


def test_a_bill_cut_short_is_refused():
    data = bill([Row(f"T{i}", 1000 + i) for i in range(50)])
    with pytest.raises(BillIntegrityError, match="truncated"):
        run(data[:data.index(TRAILER.encode())], Book(), block_bytes=300)
    with pytest.raises(BillIntegrityError, match="truncated"):
        run(data[:len(data) // 2], Book(), block_bytes=300)


def test_a_bad_line_is_named():
    lines = bill([Row(f"T{i}", 1000) for i in range(10)]).split(b"\r\n")
    lines[4] = lines[4].replace(b",`JSAPI", b"")
    with pytest.raises(BillFormatError, match="line 5: 26 fields"):
        run(b"\r\n".join(lines), Book(), block_bytes=200)
    lines = bill([Row(f"T{i}", 1000) for i in range(10)]).split(b"\r\n")
    lines[6] = lines[6].replace(b"`0.60%", b"`0.60%,`1.x")
    with pytest.raises(BillFormatError, match="line 7"):
        run(b"\r\n".join(lines), Book())
    with pytest.raises(BillFormatError, match="lacks 商户订单号"):
        run(bill([]).replace("商户订单号".encode(), b"x"), Book())


def test_blank_lines_and_commas_in_free_text_are_read():
    rows = [Row(f"T{i}", 1000 + i, goods="洁牙, 套餐 A,B") for i in range(20)]
    book = Book.of([(r.out_trade_no, r.amount_fen) for r in rows])
    result = run(bill(rows, blank_lines=True), book, block_bytes=512)
    assert result.matched == 20 and not result.unmatched and not book.payments


def test_an_empty_day_has_a_header_and_a_zero_trailer():
    book = Book.of([("T1", 100)])
    result = run(bill([]), book)
    assert result.rows == 0 and result.totals.count == 0 and book.payments == {b"T1": 100}


def test_the_fast_reader_agrees_with_the_parser_row_by_row():
    rnd = random.Random(7)
    rows = []
    for i in range(3000):
        rows.append(Row(f"T{i:08d}", rnd.choice([990, 1990, 5000, 19900]) + rnd.randrange(3)))
        if rnd.random() < 0.1:
            rows.append(Row(f"T{i:08d}", rnd.randrange(1, 900), refund_no=f"T{i:08d}R01"))
    payments = [(r.out_trade_no, r.amount_fen + (rnd.random() < 0.01)) for r in rows if r.refund_no is None
                and rnd.random() > 0.01] + [(f"X{i}", 100) for i in range(30)]
    refunds = [(r.refund_no, r.amount_fen) for r in rows if r.refund_no and rnd.random() > 0.02]
    data = bill(rows)
    fast_book, slow_book = Book.of(payments, refunds), Book.of(payments, refunds)
    fast = run(data, fast_book, block_bytes=4096)
    slow = match_rows(WeChatBill(io.StringIO(data.decode(), newline="")), slow_book)
    assert (fast.matched, fast.rows, fast.fee_fen, fast.payment_fen, fast.refund_fen) == (
        slow.matched, slow.rows, slow.fee_fen, slow.payment_fen, slow.refund_fen)
    def unmatched(result):
        return sorted(((u.row, u.reason, u.platform_amount_fen) for u in result.unmatched),
                      key=lambda item: (item[0].channel_trade_no, item[0].kind))

    assert unmatched(fast) == unmatched(slow)
    assert fast_book == slow_book and fast.totals == slow.totals
    assert {u.reason for u in fast.unmatched} == {UNKNOWN, AMOUNT}


def test_looking_for_a_few_keys_keeps_no_other_row():
    rows = [Row(f"T{i}", 1000) for i in range(100)]
    book = Book.of([("T5", 1000), ("T7", 999), ("Z", 1)])
    result = run(bill(rows), book, keep_unknown=False)
    assert result.matched == 1 and [(u.row.out_trade_no, u.reason) for u in result.unmatched] == [("T7", AMOUNT)]
    assert book.payments == {b"Z": 1}


def test_memory_follows_the_block_not_the_bill():
    rows = [Row(f"T{i:020d}", 1000 + i % 50) for i in range(20_000)]
    data = bill(rows)
    book = Book.of([(r.out_trade_no, r.amount_fen) for r in rows])
    tracemalloc.start()
    try:
        result = WeChatBillMatcher(io.BytesIO(data), book, block_bytes=256 * 1024).run()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.matched == 20_000 and len(data) > 5_000_000
    assert peak < 3_000_000, f"peak {peak} bytes while reading a {len(data)}-byte bill in 256 KiB blocks"


def test_keyed_records_match_by_key_and_amount():
    records = [("k1", 100), ("k2", 200), ("k3", 300), ("k5", 7)]
    ours = {"k1": 100, "k2": 201, "k4": 400, "k5": None}
    result = match_keyed(records, lambda r: r[0], lambda r: r[1], ours)
    assert result.matched == 2  # k1, and k5 whose amount is not ours to say
    assert result.amount_mismatches == [(("k2", 200), 201)] and result.unknown == [("k3", 300)]
    assert ours == {"k4": 400}
