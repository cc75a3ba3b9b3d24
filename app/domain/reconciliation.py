"""Matching a channel's daily bill against our own records: a hash join in one pass, linear in rows.

Our side of a day is a `Book`: payments by out_trade_no and refunds by out_refund_no, each mapping to the
amount in fen we recorded. Every bill row pops its key from the book: an equal amount (and a settled status)
is a match, anything else is kept as `Unmatched` for the service to judge, and what is left in the book is
missing from the bill. Memory is the book (which only shrinks) and the unmatched rows, never the bill.

The WeChat bill is read as bytes, in blocks of lines, and never decoded but for the rows that do not match:
one `split` makes a block one flat list of fields, each column is a slice of it, and the join runs as `map`
over the slices, so Python code runs per block and per unmatched row rather than per row. A block that is
not all rows of the header's width is read again line by line, to name the bad line. The trailer's totals
are checked against the rows' sums after the last row (BillIntegrityError).
"""
from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import compress, repeat
from operator import ne
from typing import BinaryIO

from app.domain.bills import BillFormatError, BillIntegrityError, BillKind, BillRow, WeChatBill
from app.domain.bills.model import shanghai_time
from app.domain.money import yuan_to_fen

SETTLED_STATUSES = frozenset({"SUCCESS", "TRADE_SUCCESS", "REFUND_SUCCESS"})

UNKNOWN = "unknown"
"""The row's key is not among the day's records (it may still be ours, recorded on another day)."""
AMOUNT = "amount"
STATUS = "status"

BLOCK_BYTES = 256 << 10  # small enough for the block's fields to stay in the CPU caches
_TRAILER_MARK = "总交易单数".encode()
_TRAILER_TAIL_LIMIT = 64 * 1024
_CACHED_AMOUNTS = 200_000
_WECHAT_COLUMNS = ("交易时间", "微信订单号", "商户订单号", "交易状态", "应结订单金额", "微信退款单号", "商户退款单号",
                   "退款金额", "退款状态", "手续费", "订单金额")
_WECHAT_PAID, _WECHAT_REFUND = b"SUCCESS", b"REFUND"
_CRLF, _ROW_BREAK, _ZERO = b"\r\n", b"\r\n`", b"0.00"


@dataclass
class Book:
    """Our records of one day on one merchant account: out_trade_no / out_refund_no -> amount in fen."""

    payments: dict[bytes, int] = field(default_factory=dict)
    refunds: dict[bytes, int] = field(default_factory=dict)

    @classmethod
    def of(cls, payments: Iterable[tuple[str, int]], refunds: Iterable[tuple[str, int]] = ()) -> Book:
        return cls(_encoded(payments), _encoded(refunds))

    def __len__(self) -> int:
        return len(self.payments) + len(self.refunds)


def _encoded(pairs: Iterable[tuple[str, int]]) -> dict[bytes, int]:
    return {key.encode(): amount for key, amount in pairs}


@dataclass(slots=True)
class Unmatched:
    row: BillRow
    reason: str
    """UNKNOWN, AMOUNT or STATUS."""
    platform_amount_fen: int | None
    """What the day's record says, when there is one."""


@dataclass
class BillMatch:
    matched: int = 0
    unmatched: list[Unmatched] = field(default_factory=list)
    rows: int = 0
    payment_rows: int = 0
    refund_rows: int = 0
    payment_fen: int = 0
    """The bill's payments (order amounts)."""
    refund_fen: int = 0
    fee_fen: int = 0
    """The channel's fees over the day, net of fees handed back on refunds."""
    totals: object | None = None
    """The bill's own totals (BillTotals, AlipayBillTotals) once they were checked; None without a bill."""

    def add(self, row: BillRow, expected: int | None, keep_unknown: bool = True) -> None:
        self.rows += 1
        self.fee_fen += row.fee_fen
        if row.kind is BillKind.PAYMENT:
            self.payment_rows += 1
            self.payment_fen += row.amount_fen
        else:
            self.refund_rows += 1
            self.refund_fen += row.amount_fen
        if expected is None:
            if keep_unknown:
                self.unmatched.append(Unmatched(row, UNKNOWN, None))
        elif expected != row.amount_fen:
            self.unmatched.append(Unmatched(row, AMOUNT, expected))
        elif row.status not in SETTLED_STATUSES:
            self.unmatched.append(Unmatched(row, STATUS, expected))
        else:
            self.matched += 1


def match_rows(rows: Iterable[BillRow], book: Book, keep_unknown: bool = True) -> BillMatch:
    """The generic join over parsed rows (Alipay's bill, tests); the bill's parser checks its totals.
    `keep_unknown=False` drops the rows whose key is not in the book (looking for a few keys in a bill)."""
    result = BillMatch()
    take_payment, take_refund = book.payments.pop, book.refunds.pop
    for row in rows:
        if row.kind is BillKind.PAYMENT:
            result.add(row, take_payment(row.out_trade_no.encode(), None), keep_unknown)
        else:
            result.add(row, take_refund((row.out_refund_no or "").encode(), None), keep_unknown)
    totals = getattr(rows, "totals", None)
    result.totals = totals
    return result


class _FenCache(dict):
    """Bill amount text -> fen. Bills repeat a few prices on most rows, so nearly every lookup is a hit."""

    def __missing__(self, text: bytes) -> int:
        if len(self) > _CACHED_AMOUNTS:
            self.clear()
        value = self[text] = yuan_to_fen(text.decode("ascii"))
        return value


class WeChatBillMatcher:
    """Streams a WeChat ALL bill (bytes, as downloaded) against a book; `run()` returns the BillMatch.

    `progress` is called with the number of bytes read after every block; `keep_unknown=False` drops the
    rows whose key is not in the book.
    """

    def __init__(self, stream: BinaryIO, book: Book, progress: Callable[[int], None] | None = None,
                 keep_unknown: bool = True, block_bytes: int = BLOCK_BYTES) -> None:
        self._stream = stream
        self._book = book
        self._keep_unknown = keep_unknown
        self._progress = progress
        self._block_bytes = block_bytes
        self._fen = _FenCache()
        self._line_no = 0
        self._settled = self._refunded = 0
        self.result = BillMatch()

    def run(self) -> BillMatch:
        self._read_header()
        read, read_line = self._stream.read, self._stream.readline
        while True:
            block = read(self._block_bytes)
            if not block:
                break
            if block[-1:] != b"\n":
                block += read_line()
            if self._progress:
                self._progress(len(block))
            trailer_at = _line_start(block, _TRAILER_MARK)
            if trailer_at >= 0:
                self._rows(block[:trailer_at])
                self._trailer(block[trailer_at:])
                return self.result
            if block[-1:] != b"\n":
                break
            self._rows(block)
        raise BillIntegrityError("the bill ends without its 总交易单数 trailer: it is truncated")

    # --- header and trailer -------------------------------------------------------------------
    def _read_header(self) -> None:
        for raw in self._stream:
            self._line_no += 1
            line = raw.decode("utf-8-sig", errors="replace").rstrip("\r\n")
            if not line:
                continue
            if line.startswith("`"):
                raise BillFormatError(f"line {self._line_no}: a bill row before the column header")
            columns = {name: index for index, name in enumerate(line.split(","))}
            missing = [name for name in _WECHAT_COLUMNS if name not in columns]
            if missing:
                raise BillFormatError(f"the bill header lacks {', '.join(missing)}")
            self._width = len(columns)
            needed = [columns[name] for name in _WECHAT_COLUMNS[1:]]
            if columns["交易时间"] != 0 or 0 in needed or self._width - 1 in needed:
                raise BillFormatError("the bill's columns are not in WeChat's order (交易时间 first)")
            (self._i_time, self._i_trade, self._i_out_trade, self._i_state, self._i_settle, self._i_refund_id,
             self._i_out_refund, self._i_refund, self._i_refund_state, self._i_fee, self._i_order) = (
                columns[name] for name in _WECHAT_COLUMNS)
            return
        raise BillIntegrityError("the bill is empty: no header")

    def _trailer(self, text: bytes) -> None:
        """The trailer is the parser's: read and checked by the same code."""
        tail = text + self._stream.read(_TRAILER_TAIL_LIMIT)
        if self._stream.read(1):
            raise BillFormatError("more than a trailer after the bill's rows")
        lines = enumerate(tail.decode("utf-8", errors="replace").splitlines(), self._line_no + 1)
        totals = WeChatBill._trailer(next(lines)[1], lines)
        WeChatBill._check(totals, self.result.rows, self._settled, self._refunded, self.result.fee_fen)
        self.result.totals = totals

    # --- rows --------------------------------------------------------------------------------
    def _rows(self, text: bytes) -> None:
        """A run of complete lines, each a backtick row."""
        if not text:
            return
        flat = self._flat(text)
        block = self._read_block(flat) if flat is not None else None
        if block is None:
            return self._rows_by_line(text)
        self._join(flat, block)
        self._line_no += block.lines

    def _flat(self, text: bytes) -> list[bytes] | None:
        """The block's fields in one list, split on ",`" only: a line break does not split, so the last field
        of each row and the first of the next share one piece (neither is a column read per row), and row r's
        field k (0 < k < width - 1) is at r * (width - 1) + k. None unless every line is a row of exactly
        `width` fields: each line break must then fall in a shared piece, and nothing else may."""
        step = self._width - 1
        lines = text.count(b"\n")
        if text[:1] != b"`" or text[-2:] != _CRLF:
            return None
        flat = text.split(b",`")
        if len(flat) != lines * step + 1 or flat[-1].count(b"\n") != 1:
            return None
        shared = b"".join(flat[step:-1:step])
        if shared.count(_ROW_BREAK) != lines - 1 or shared.count(b"\n") != lines - 1:
            return None
        flat[0] = flat[0][1:]
        return flat

    def _read_block(self, flat: list[bytes]) -> _Block | None:
        """Everything about a block that can fail, read before anything is changed."""
        step, fen = self._width - 1, self._fen.__getitem__
        states = flat[self._i_state::step]
        refunds = _positions(states, _WECHAT_REFUND)
        ordered, settled_column, refunded_column = (flat[i::step] for i in (self._i_order, self._i_settle,
                                                                              self._i_refund))
        try:
            fees = sum(map(fen, flat[self._i_fee::step]))
            payment_amounts = list(map(fen, _without(ordered, refunds)))
            refund_amounts = [fen(refunded_column[row]) for row in refunds]
            # Settled usually equals ordered row by row, and payment rows refund nothing: no more lookups then.
            settled = (sum(payment_amounts) + sum(fen(ordered[row]) for row in refunds)
                       if settled_column == ordered else sum(map(fen, settled_column)))
            others = _without(refunded_column, refunds)
            refunded = sum(refund_amounts) + (0 if others.count(_ZERO) == len(others) else sum(map(fen, others)))
        except ValueError:
            return None
        return _Block(len(states), settled, refunded, fees, states, refunds, payment_amounts, refund_amounts)

    def _rows_by_line(self, text: bytes) -> None:
        """The slow reading of a block the fast one refused: find the bad line, or drop blank lines."""
        good = []
        for number, line in enumerate(text.split(b"\n"), self._line_no + 1):
            line = line.rstrip(b"\r")
            if not line.strip():
                continue
            if line[:1] != b"`":
                raise BillFormatError(f"line {number}: neither a bill row nor the trailer: {line[:60]!r}")
            fields = line[1:].split(b",`")
            if len(fields) != self._width:
                raise BillFormatError(f"line {number}: {len(fields)} fields where the header has {self._width}")
            try:
                for index in (self._i_settle, self._i_refund, self._i_fee, self._i_order):
                    self._fen[fields[index]]
            except ValueError as exc:
                raise BillFormatError(f"line {number}: {exc}") from exc
            good.append(line)
        if good:
            flat = self._flat(_CRLF.join(good) + _CRLF)
            block = self._read_block(flat) if flat is not None else None
            if block is None:
                raise BillFormatError(f"lines {self._line_no + 1}-{number}: unreadable rows")
            self._join(flat, block)
        self._line_no += text.count(b"\n")

    def _join(self, flat: list[bytes], block: _Block) -> None:
        step, refunds, result = self._width - 1, block.refunds, self.result
        self._pop(flat, self._book.payments, _without(flat[self._i_out_trade::step], refunds),
                  block.payment_amounts, _without(block.states, refunds), refunds, of_payments=True)
        if refunds:
            self._pop(flat, self._book.refunds, [flat[row * step + self._i_out_refund] for row in refunds],
                      block.refund_amounts, [flat[row * step + self._i_refund_state] for row in refunds], refunds,
                      of_payments=False)
        result.rows += block.lines
        result.refund_rows += len(refunds)
        result.payment_rows += block.lines - len(refunds)
        result.payment_fen += sum(block.payment_amounts)
        result.refund_fen += sum(block.refund_amounts)
        result.fee_fen += block.fees
        self._settled += block.settled
        self._refunded += block.refunded

    def _pop(self, flat: list[bytes], book: dict[bytes, int], keys: list[bytes], actual: list[int],
             statuses: list[bytes], refunds: list[int], of_payments: bool) -> None:
        """Pop the keys from the book; keep what does not match. `refunds` are the block's refund rows: the
        refunds' own positions, or (for payments) the rows left out of `keys`."""
        expected = list(map(book.pop, keys, repeat(None)))
        flagged = set(compress(range(len(keys)), map(ne, expected, actual)))
        if statuses.count(_WECHAT_PAID) != len(statuses):
            flagged.update(j for j, status in enumerate(statuses) if status != _WECHAT_PAID)
        self.result.matched += len(keys) - len(flagged)
        # Where each left-out row would have been among the kept ones: a kept index's row number follows.
        gaps = [row - k for k, row in enumerate(refunds)] if of_payments else refunds
        for j in sorted(flagged):
            reason = UNKNOWN if expected[j] is None else AMOUNT if expected[j] != actual[j] else STATUS
            if reason == UNKNOWN and not self._keep_unknown:
                continue
            row = j + bisect_right(gaps, j) if of_payments else refunds[j]
            try:
                bill_row = self._bill_row(self._fields(flat, row))
            except ValueError as exc:
                raise BillFormatError(f"line {self._line_no + row + 1}: {exc}") from exc
            self.result.unmatched.append(Unmatched(bill_row, reason, expected[j]))

    def _fields(self, flat: list[bytes], row: int) -> list[bytes]:
        step = self._width - 1
        start, end = row * step, (row + 1) * step
        first = flat[start] if row == 0 else flat[start].partition(_ROW_BREAK)[2]
        return [first, *flat[start + 1:end], flat[end].partition(_CRLF)[0]]

    def _bill_row(self, fields: list[bytes]) -> BillRow:
        text = [value.decode("utf-8", errors="replace") for value in fields]
        fen = self._fen
        occurred_at = shanghai_time(text[self._i_time])
        if fields[self._i_state] == _WECHAT_REFUND:
            return BillRow(BillKind.REFUND, text[self._i_trade], text[self._i_out_trade], text[self._i_refund_id],
                           text[self._i_out_refund], fen[fields[self._i_refund]], fen[fields[self._i_fee]],
                           text[self._i_refund_state], occurred_at)
        return BillRow(BillKind.PAYMENT, text[self._i_trade], text[self._i_out_trade], None, None,
                       fen[fields[self._i_order]], fen[fields[self._i_fee]], text[self._i_state], occurred_at)


@dataclass(slots=True)
class _Block:
    lines: int
    settled: int
    refunded: int
    fees: int
    states: list[bytes]
    refunds: list[int]
    """Positions of the block's refund rows; the others are payments (or unsettled payment rows)."""
    payment_amounts: list[int]
    refund_amounts: list[int]


def _positions(column: list[bytes], value: bytes) -> list[int]:
    """Where `value` stands in the column: list.index does the scanning, Python runs once per hit."""
    found, at = [], -1
    try:
        while True:
            at = column.index(value, at + 1)
            found.append(at)
    except ValueError:
        return found


def _without(column: list, rows: list[int]) -> list:
    """The column less the given (sorted) rows, copied slice by slice."""
    if not rows:
        return column
    kept, start = [], 0
    for row in rows:
        kept += column[start:row]
        start = row + 1
    kept += column[start:]
    return kept


def _line_start(data: bytes, mark: bytes) -> int:
    """Where a line starting with `mark` begins in data, or -1."""
    at = data.find(mark)
    while at > 0 and data[at - 1:at] != b"\n":
        at = data.find(mark, at + 1)
    return at


def match_wechat_bill(stream: BinaryIO, book: Book, progress: Callable[[int], None] | None = None,
                      keep_unknown: bool = True) -> BillMatch:
    return WeChatBillMatcher(stream, book, progress, keep_unknown).run()
