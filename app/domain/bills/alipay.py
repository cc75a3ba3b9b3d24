"""Alipay's daily trade bill: `{pid}_{yyyyMMdd}.csv.zip` with a GBK detail CSV (业务明细) and a summary.

The detail entry is read straight out of the zip, line by line. `#` lines are comments except the
markers, found by substring because their dash counts vary: 业务明细列表 opens the table,
业务明细列表结束 closes it, then #交易合计 / #退款合计 give the counts and 商家实收 sums. Fields are
read with the csv module (C, and it honours quoting should a 商品名称 hold a comma); id and text
fields carry a trailing tab, stripped on the columns we use.

Signs in the file: 订单金额 and 商家实收 negative on 退款 rows, 服务费 negative on 交易 rows (taken)
and positive on 退款 rows (handed back). BillRow turns both around: refund amounts positive, fees
positive when charged.
"""
from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from .model import AlipayBillTotals, BillFormatError, BillIntegrityError, BillKind, BillRow, bill_fen, shanghai_time

DETAIL_ENTRY_MARK = "业务明细"
SUMMARY_ENTRY_MARK = "汇总"
TABLE_START = "业务明细列表"
TABLE_END = "业务明细列表结束"
TRADE_TOTAL = "#交易合计"
REFUND_TOTAL = "#退款合计"
PAYMENT_TYPE = "交易"
REFUND_TYPE = "退款"

_NEEDED_COLUMNS = ("支付宝交易号", "商户订单号", "业务类型", "完成时间", "订单金额（元）", "商家实收（元）",
                   "退款批次号/请求号", "服务费（元）")
_TOTAL_LINE = re.compile(r"(\d+)笔.*?商家实收共?[：:]?\s*([+-]?\d+(?:\.\d+)?)元")
_UTF8_NAME_FLAG = 0x800


def detail_entry(archive: zipfile.ZipFile) -> zipfile.ZipInfo:
    for info in archive.infolist():
        # Alipay stores GBK names without the UTF-8 flag, which zipfile then decodes as cp437.
        name = info.filename if info.flag_bits & _UTF8_NAME_FLAG else info.filename.encode("cp437").decode(
            "gbk", errors="replace")
        if DETAIL_ENTRY_MARK in name and SUMMARY_ENTRY_MARK not in name:
            return info
    raise BillFormatError("the bill zip holds no 业务明细 detail entry")


class _DetailLines:
    """Feeds the table's lines to the csv reader and keeps what the `#` lines around it say."""

    def __init__(self, text: IO[str]) -> None:
        self._text = text
        self.line_no = 0
        self.started = self.ended = False
        self.trade_total_line: str | None = None
        self.refund_total_line: str | None = None

    def table(self) -> Iterator[str]:
        for line in self._text:
            self.line_no += 1
            if line.startswith("#"):
                if TABLE_END in line:
                    self.ended = True
                elif TABLE_START in line:
                    self.started = True
                elif line.startswith(TRADE_TOTAL):
                    self.trade_total_line = line
                elif line.startswith(REFUND_TOTAL):
                    self.refund_total_line = line
            elif self.started and not self.ended:
                yield line
            elif line.strip():
                raise BillFormatError(f"line {self.line_no}: text outside the {TABLE_START} table: {line[:60]!r}")


def _totals_line(line: str | None, mark: str) -> tuple[int, int]:
    found = _TOTAL_LINE.search(line) if line else None
    if found is None:
        raise BillIntegrityError(f"the bill has no readable {mark} line: it is truncated or not Alipay's format")
    try:
        return int(found.group(1)), bill_fen(found.group(2))
    except ValueError as exc:
        raise BillFormatError(f"{mark}: {exc}") from exc


class AlipayBill:
    """Iterate once for the rows; when the iteration ends the 合计 lines have been checked against them
    (BillIntegrityError otherwise) and `totals` holds them.

    `source` is the zip's path or a binary file object open on it.
    """

    def __init__(self, source: str | Path | IO[bytes]) -> None:
        self._source = source
        self.totals: AlipayBillTotals | None = None

    def __iter__(self) -> Iterator[BillRow]:
        with zipfile.ZipFile(self._source) as archive, archive.open(detail_entry(archive)) as raw:
            # gb18030 is a superset of GBK: it reads the same bytes, and a stray character does not stop a run.
            yield from self._rows(io.TextIOWrapper(raw, encoding="gb18030", newline=""))

    def _rows(self, text: IO[str]) -> Iterator[BillRow]:
        lines = _DetailLines(text)
        reader = csv.reader(lines.table())
        header = next(reader, None)
        if header is None:
            raise BillIntegrityError(f"the bill has no {TABLE_START} table")
        columns = {name.strip(): index for index, name in enumerate(header)}
        missing = [name for name in _NEEDED_COLUMNS if name not in columns]
        if missing:
            raise BillFormatError(f"the detail header lacks {', '.join(missing)}")
        i_trade, i_out_trade, i_type, i_done, i_amount, i_received, i_request, i_fee = (
            columns[name] for name in _NEEDED_COLUMNS)
        width = len(header)
        trades = trade_sum = refunds = refund_sum = 0
        for fields in reader:
            if not fields:
                continue
            if len(fields) != width:
                raise BillFormatError(f"line {lines.line_no}: {len(fields)} fields where the header has {width}")
            business_type = fields[i_type].strip()
            try:
                received = bill_fen(fields[i_received])
                fee = -bill_fen(fields[i_fee])
                occurred_at = shanghai_time(fields[i_done].strip())
                if business_type == PAYMENT_TYPE:
                    amount = bill_fen(fields[i_amount])
                elif business_type == REFUND_TYPE:
                    amount = -received
                else:
                    raise ValueError(f"unknown 业务类型 {business_type!r}")
            except ValueError as exc:
                raise BillFormatError(f"line {lines.line_no}: {exc}") from exc
            trade_no, out_trade_no = fields[i_trade].strip(), fields[i_out_trade].strip()
            if business_type == PAYMENT_TYPE:
                trades += 1
                trade_sum += received
                yield BillRow(BillKind.PAYMENT, trade_no, out_trade_no, None, None, amount, fee, "TRADE_SUCCESS",
                              occurred_at)
            else:
                refunds += 1
                refund_sum += received
                yield BillRow(BillKind.REFUND, trade_no, out_trade_no, None, fields[i_request].strip() or None,
                              amount, fee, "REFUND_SUCCESS", occurred_at)
        if not lines.ended:
            raise BillIntegrityError(f"the bill ends without its {TABLE_END} marker: it is truncated")
        trade_count, trade_total = _totals_line(lines.trade_total_line, TRADE_TOTAL)
        refund_count, refund_total = _totals_line(lines.refund_total_line, REFUND_TOTAL)
        totals = AlipayBillTotals(trade_count, trade_total, refund_count, refund_total)
        mismatches = [f"{name} says {said}, the rows add up to {found}" for name, said, found in (
            ("交易合计 笔数", trade_count, trades), ("交易合计 商家实收 (fen)", trade_total, trade_sum),
            ("退款合计 笔数", refund_count, refunds), ("退款合计 商家实收 (fen)", refund_total, refund_sum),
        ) if said != found]
        if mismatches:
            raise BillIntegrityError("the Alipay bill's 合计 lines do not match its rows: " + "; ".join(mismatches))
        self.totals = totals
