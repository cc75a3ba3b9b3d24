"""A statement as a CSV (UTF-8 with BOM, so Excel reads the Chinese) or XLSX file, with the caller's columns.

Both writers stream: lines come from the database in batches and go straight
to a spooled temporary file (XlsxWriter in constant_memory mode flushes each
row), so a statement of any size takes bounded memory. The file is complete
before the response starts, so a failure is an error response, never a
truncated download. Every text cell is neutralised against formula injection.
"""
from __future__ import annotations

import csv
import io
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO

import xlsxwriter
from sqlalchemy import select

from app.db.models import StatementLine
from app.domain.errors import InvalidInput
from app.domain.export_safety import neutralise_cell
from app.domain.money import fen_to_yuan
from app.domain.settlement import SHANGHAI
from app.runtime import Runtime
from app.services.common.principals import StaffPrincipal
from app.services.settlement.statements import scoped_statement

CSV, XLSX = "csv", "xlsx"
FORMATS = {CSV: "text/csv; charset=utf-8",
           XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
PAYMENT_METHOD_NAMES = {"wechat": "微信支付", "alipay": "支付宝"}
TOTAL_LABEL = "合计"
READ_BATCH = 1000
SPOOL_IN_MEMORY_BYTES = 1 << 20


def _time(value: datetime | None) -> str:
    return value.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S") if value else ""


@dataclass(frozen=True)
class ExportField:
    header: str
    value: Callable[[StatementLine], str | int]
    # Money fields hold integer fen: yuan text in CSV, a number in XLSX, and a total in the last row.
    money: bool = False


EXPORT_FIELDS: dict[str, ExportField] = {
    "channel_trade_no": ExportField("渠道订单号", lambda line: line.channel_trade_no or ""),
    "order_no": ExportField("平台订单号", lambda line: line.order_no),
    "out_trade_no": ExportField("商户订单号", lambda line: line.out_trade_no or ""),
    "patient": ExportField("患者", lambda line: line.patient_name),
    "patient_phone": ExportField("患者手机号", lambda line: line.patient_phone or ""),
    "item": ExportField("项目", lambda line: line.item_name),
    "appointment_at": ExportField("预约时间", lambda line: _time(line.appointment_at)),
    "redeemed_at": ExportField("核销时间", lambda line: _time(line.redeemed_at)),
    "payment_method": ExportField("支付方式", lambda line: PAYMENT_METHOD_NAMES.get(line.channel, line.channel)),
    "purchase_price": ExportField("渠道采购价", lambda line: line.purchase_price_fen, money=True),
    "amount": ExportField("金额", lambda line: line.amount_fen, money=True),
}


def parse_fields(spec: str | None) -> list[str]:
    """'patient,amount' -> ['patient', 'amount']; none given -> every field; an unknown one is refused."""
    if spec is None:
        return list(EXPORT_FIELDS)
    names = list(dict.fromkeys(name.strip() for name in spec.split(",") if name.strip()))
    unknown = [name for name in names if name not in EXPORT_FIELDS]
    if unknown or not names:
        raise InvalidInput(f"fields must be a comma list of {', '.join(EXPORT_FIELDS)}"
                           + (f"; unknown: {', '.join(unknown)}" if unknown else ""), "unknown_export_field")
    return names


@dataclass
class StatementFile:
    """A finished export, its content positioned at the start; whoever sends it closes it."""

    filename: str
    mimetype: str
    size: int
    content: BinaryIO


def export_statement(rt: Runtime, principal: StaffPrincipal, statement_id: int, file_format: str,
                     fields: str | None = None) -> StatementFile:
    """The statement's lines in redemption order, then a total row, in the chosen format and columns."""
    if file_format not in FORMATS:
        raise InvalidInput(f"format must be one of {', '.join(FORMATS)}", "invalid_format")
    names = parse_fields(fields)
    out = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY_BYTES)
    try:
        with rt.db.session() as session:
            statement, clinic_code = scoped_statement(session, principal, statement_id)
            lines = session.scalars(select(StatementLine).where(StatementLine.statement_id == statement_id)
                                    .order_by(StatementLine.redeemed_at, StatementLine.id)
                                    .execution_options(yield_per=READ_BATCH))
            (_write_csv if file_format == CSV else _write_xlsx)(out, names, lines)
        size = out.tell()
        out.seek(0)
    except BaseException:
        out.close()
        raise
    safe_code = re.sub(r"[^A-Za-z0-9_-]", "_", clinic_code)
    filename = f"statement-{safe_code}-{statement.channel}-{statement.month}.{file_format}"
    return StatementFile(filename, FORMATS[file_format], size, out)


def _rows(names: list[str], lines) -> Iterator[list[str | int]]:
    """Header, one row per line (text neutralised, money in fen), then the total row."""
    fields = [EXPORT_FIELDS[name] for name in names]
    totals = [0] * len(fields)
    yield [field.header for field in fields]
    for line in lines:
        row = []
        for index, field in enumerate(fields):
            value = field.value(line)
            if field.money:
                totals[index] += value
                row.append(value)
            else:
                row.append(neutralise_cell(value))
        yield row
    label_at = next((index for index, field in enumerate(fields) if not field.money), None)
    yield [totals[index] if field.money else (TOTAL_LABEL if index == label_at else "")
           for index, field in enumerate(fields)]


def _write_csv(out: BinaryIO, names: list[str], lines) -> None:
    text = io.TextIOWrapper(out, encoding="utf-8-sig", newline="")
    writer = csv.writer(text)
    money = [EXPORT_FIELDS[name].money for name in names]
    for number, row in enumerate(_rows(names, lines)):
        writer.writerow([fen_to_yuan(value) if number and is_money else value
                         for value, is_money in zip(row, money, strict=True)])
    text.flush()
    text.detach()


def _write_xlsx(out: BinaryIO, names: list[str], lines) -> None:
    workbook = xlsxwriter.Workbook(out, {"constant_memory": True, "strings_to_formulas": False,
                                         "strings_to_urls": False, "strings_to_numbers": False})
    sheet = workbook.add_worksheet("对账单")
    header = workbook.add_format({"bold": True})
    money_format = workbook.add_format({"num_format": "0.00"})
    money = [EXPORT_FIELDS[name].money for name in names]
    for column, is_money in enumerate(money):
        sheet.set_column(column, column, 12 if is_money else 22)
    for number, row in enumerate(_rows(names, lines)):
        for column, (value, is_money) in enumerate(zip(row, money, strict=True)):
            if number == 0:
                sheet.write_string(number, column, value, header)
            elif is_money:
                # A spreadsheet number, so finance can add columns up; the yuan text converts exactly.
                sheet.write_number(number, column, float(fen_to_yuan(value)), money_format)
            else:
                sheet.write_string(number, column, value)
    workbook.close()
