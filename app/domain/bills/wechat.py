"""WeChat Pay's daily ALL bill (downloadbill): a header line, backtick rows, a trailer header and totals.

Every data field starts with a backtick, so a row is split on ",`" rather than on ",": a comma inside
a field (商品名称 and 商户数据包 are free text) then stays in its field, and the split is one C call per
row. Only the text ",`" inside a field would still break it; a row that comes out with the wrong
number of fields is refused, never silently shifted.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator

from .model import BillFormatError, BillIntegrityError, BillKind, BillRow, BillTotals, bill_fen, shanghai_time

TRAILER_MARK = "总交易单数"

_NEEDED_COLUMNS = ("交易时间", "微信订单号", "商户订单号", "交易状态", "应结订单金额", "微信退款单号", "商户退款单号",
                   "退款金额", "退款状态", "手续费", "订单金额")
_TRAILER_COLUMNS = ("总交易单数", "应结订单总金额", "退款总金额", "手续费总金额", "订单总金额")


def _split(line: str) -> list[str]:
    return line[1:].split(",`")


class WeChatBill:
    """Iterate once for the rows; when the iteration ends the trailer has been checked against them
    (BillIntegrityError otherwise) and `totals` holds it.

    `lines` is any iterable of text lines, with or without their line endings, e.g. a file opened
    with `encoding="utf-8"`.
    """

    def __init__(self, lines: Iterable[str]) -> None:
        self._lines = lines
        self.totals: BillTotals | None = None

    def __iter__(self) -> Iterator[BillRow]:
        lines = enumerate(self._lines, 1)
        columns = self._header(lines)
        (i_time, i_trade, i_out_trade, i_state, i_settle, i_refund_id, i_out_refund, i_refund, i_refund_state,
         i_fee, i_order) = (columns[name] for name in _NEEDED_COLUMNS)
        width = len(columns)
        count = settled = refunded = fees = 0
        for line_no, line in lines:
            line = line.rstrip("\r\n")
            if not line:
                continue
            if line[0] != "`":
                if line.startswith(TRAILER_MARK):
                    totals = self._trailer(line, lines)
                    self._check(totals, count, settled, refunded, fees)
                    self.totals = totals
                    return
                raise BillFormatError(f"line {line_no}: neither a bill row nor the trailer: {line[:60]!r}")
            fields = _split(line)
            if len(fields) != width:
                raise BillFormatError(f"line {line_no}: {len(fields)} fields where the header has {width}")
            is_refund = fields[i_state] == "REFUND"
            try:
                settle, refund, fee = bill_fen(fields[i_settle]), bill_fen(fields[i_refund]), bill_fen(
                    fields[i_fee])
                amount = refund if is_refund else bill_fen(fields[i_order])
                occurred_at = shanghai_time(fields[i_time])
            except ValueError as exc:
                raise BillFormatError(f"line {line_no}: {exc}") from exc
            count += 1
            settled += settle
            refunded += refund
            fees += fee
            if is_refund:
                yield BillRow(BillKind.REFUND, fields[i_trade], fields[i_out_trade], fields[i_refund_id],
                              fields[i_out_refund], amount, fee, fields[i_refund_state], occurred_at)
            else:
                yield BillRow(BillKind.PAYMENT, fields[i_trade], fields[i_out_trade], None, None, amount, fee,
                              fields[i_state], occurred_at)
        raise BillIntegrityError(f"the bill ends without its {TRAILER_MARK} trailer: it is truncated")

    @staticmethod
    def _header(lines: Iterator[tuple[int, str]]) -> dict[str, int]:
        for line_no, line in lines:
            line = line.rstrip("\r\n").lstrip("\ufeff")
            if not line:
                continue
            if line[0] == "`":
                raise BillFormatError(f"line {line_no}: a bill row before the column header")
            columns = {name: index for index, name in enumerate(line.split(","))}
            missing = [name for name in _NEEDED_COLUMNS if name not in columns]
            if missing:
                raise BillFormatError(f"the bill header lacks {', '.join(missing)}")
            return columns
        raise BillIntegrityError("the bill is empty: no header")

    @staticmethod
    def _trailer(header_line: str, lines: Iterator[tuple[int, str]]) -> BillTotals:
        names = header_line.split(",")
        missing = [name for name in _TRAILER_COLUMNS if name not in names]
        if missing:
            raise BillFormatError(f"the trailer header lacks {', '.join(missing)}")
        values = next((line.rstrip("\r\n") for _, line in lines if line.strip()), None)
        if values is None or not values.startswith("`"):
            raise BillIntegrityError("the trailer header is not followed by its totals row")
        fields = _split(values)
        if len(fields) != len(names):
            raise BillFormatError(f"the totals row has {len(fields)} fields where its header has {len(names)}")
        by_name = dict(zip(names, fields, strict=True))
        extra = next((line for _, line in lines if line.strip()), None)
        if extra is not None:
            raise BillFormatError(f"text after the totals row: {extra[:60]!r}")
        try:
            return BillTotals(count=int(by_name["总交易单数"]),
                              settlement_total_fen=bill_fen(by_name["应结订单总金额"]),
                              refund_total_fen=bill_fen(by_name["退款总金额"]),
                              fee_total_fen=bill_fen(by_name["手续费总金额"]),
                              order_total_fen=bill_fen(by_name["订单总金额"]))
        except ValueError as exc:
            raise BillFormatError(f"the totals row: {exc}") from exc

    @staticmethod
    def _check(totals: BillTotals, count: int, settled: int, refunded: int, fees: int) -> None:
        mismatches = [f"{name} says {said}, the rows add up to {found}" for name, said, found in (
            ("总交易单数", totals.count, count),
            ("应结订单总金额 (fen)", totals.settlement_total_fen, settled),
            ("退款总金额 (fen)", totals.refund_total_fen, refunded),
            ("手续费总金额 (fen)", totals.fee_total_fen, fees),
        ) if said != found]
        if mismatches:
            raise BillIntegrityError("the WeChat bill's trailer does not match its rows: " + "; ".join(mismatches))
