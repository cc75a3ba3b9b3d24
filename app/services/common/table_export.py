"""A table as a file to download: CSV (UTF-8 with BOM, so Excel reads the Chinese) or XLSX, in chunks.

Rows come in as an iterator of cells (text or integer fen for money columns) and go out as they come: CSV in
64 KB chunks, XLSX written by XlsxWriter in constant_memory mode to a temporary file and then sent in chunks,
so memory stays bounded for a file of any length. Every text cell is neutralised against formula injection.
"""
from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import xlsxwriter

from app.domain.errors import InvalidInput
from app.domain.export_safety import neutralise_cell
from app.domain.money import fen_to_yuan

CSV, XLSX = "csv", "xlsx"
FORMATS = {CSV: "text/csv; charset=utf-8",
           XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
CHUNK_BYTES = 64 * 1024


@dataclass
class TableFile:
    """A file to send: its name, type and the chunks of its content (a generator: whatever it reads from the
    database, it reads while it is consumed)."""

    filename: str
    mimetype: str
    chunks: Iterator[bytes]


def require_format(file_format: str) -> None:
    if file_format not in FORMATS:
        raise InvalidInput(f"format must be one of {', '.join(FORMATS)}", "invalid_format")


def table_file(filename: str, file_format: str, headers: list[str], money: list[bool],
               rows: Iterable[list]) -> TableFile:
    require_format(file_format)
    chunks = _csv(headers, money, rows) if file_format == CSV else _xlsx(headers, money, rows)
    return TableFile(f"{filename}.{file_format}", FORMATS[file_format], chunks)


def _cells(money: list[bool], row: list) -> list:
    return [value if is_money else neutralise_cell("" if value is None else str(value))
            for value, is_money in zip(row, money, strict=True)]


def _csv(headers: list[str], money: list[bool], rows: Iterable[list]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    yield "\ufeff".encode()
    writer.writerow(headers)
    for row in rows:
        writer.writerow([("" if value is None else fen_to_yuan(value)) if is_money else value
                         for value, is_money in zip(_cells(money, row), money, strict=True)])
        if buffer.tell() >= CHUNK_BYTES:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")


def _xlsx(headers: list[str], money: list[bool], rows: Iterable[list]) -> Iterator[bytes]:
    with tempfile.TemporaryFile() as out:
        workbook = xlsxwriter.Workbook(out, {"constant_memory": True, "strings_to_formulas": False,
                                             "strings_to_urls": False, "strings_to_numbers": False})
        sheet = workbook.add_worksheet()
        bold = workbook.add_format({"bold": True})
        money_format = workbook.add_format({"num_format": "0.00"})
        for index, (header, is_money) in enumerate(zip(headers, money, strict=True)):
            sheet.set_column(index, index, 12 if is_money else 22)
            sheet.write_string(0, index, header, bold)
        for number, row in enumerate(rows, start=1):
            for index, (value, is_money) in enumerate(zip(_cells(money, row), money, strict=True)):
                if is_money:
                    if value is not None:
                        sheet.write_number(number, index, float(fen_to_yuan(value)), money_format)
                else:
                    sheet.write_string(number, index, value)
        workbook.close()
        out.seek(0)
        while chunk := out.read(CHUNK_BYTES):
            yield chunk
