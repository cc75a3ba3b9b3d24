"""The transaction search as a file: CSV (UTF-8 with BOM, so Excel reads the Chinese) or XLSX, streamed.

The rows are counted first (up to the cap, `HPAY_TRANSACTION_EXPORT_MAX_ROWS`): a filter that matches more
is refused with 422 `export_too_large` before anything is sent, so a download is never cut short by the cap.
CSV goes out as the rows come from the database, in batches; XLSX is written by XlsxWriter in constant_memory
mode (each row flushed to its temporary file), then the finished workbook is sent in chunks. Memory stays
bounded either way. As in statement exports, every text cell is neutralised against formula injection,
patients' names and phones are masked, and money is yuan (text in CSV, a number in XLSX).
"""
from __future__ import annotations

import csv
import io
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

import xlsxwriter
from sqlalchemy import select

from app.db.models import Clinic, Patient
from app.domain.errors import InvalidInput
from app.domain.export_safety import mask_person_name, neutralise_cell
from app.domain.money import fen_to_yuan
from app.runtime import Runtime
from app.services.common.staff_scope import SHANGHAI, clinic_ids_in_scope
from app.services.support.transactions import TransactionQuery, branches, count_up_to, newest_first
from config.logging import mask_phone

CSV, XLSX = "csv", "xlsx"
FORMATS = {CSV: "text/csv; charset=utf-8",
           XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
READ_BATCH = 1000
CHUNK_BYTES = 64 * 1024
KIND_NAMES = {"payment": "支付", "refund": "退款"}
CHANNEL_NAMES = {"wechat": "微信支付", "alipay": "支付宝"}
ORDER_TYPE_NAMES = {"booking": "预约", "topup": "就诊卡充值", "visit_bill": "门诊缴费"}


def _time(value: datetime | None) -> str:
    return value.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S") if value else ""


@dataclass(frozen=True)
class Column:
    header: str
    value: Callable[[dict], str | int]
    money: bool = False


COLUMNS = (
    Column("类型", lambda r: KIND_NAMES.get(r["kind"], r["kind"])),
    Column("诊所", lambda r: r["clinic_code"]),
    Column("平台订单号", lambda r: r["order_no"]),
    Column("订单类型", lambda r: ORDER_TYPE_NAMES.get(r["order_type"], r["order_type"])),
    Column("商户订单号", lambda r: r["out_trade_no"] or ""),
    Column("退款单号", lambda r: r["refund_no"] or ""),
    Column("支付渠道", lambda r: CHANNEL_NAMES.get(r["channel"], r["channel"])),
    Column("渠道交易号", lambda r: r["channel_trade_no"] or ""),
    Column("渠道退款单号", lambda r: r["channel_refund_id"] or ""),
    Column("金额", lambda r: r["amount_fen"], money=True),
    Column("状态", lambda r: r["status"]),
    Column("创建时间", lambda r: _time(r["created_at"])),
    Column("完成时间", lambda r: _time(r["settled_at"])),
    Column("就诊卡号", lambda r: r["card_no"] or ""),
    Column("患者", lambda r: r["patient_name"]),
    Column("患者手机号", lambda r: r["patient_phone"]),
)


@dataclass
class TransactionFile:
    """A file to send: its name, type and the chunks of its content (a generator: it holds a database session
    until it is exhausted or closed)."""

    filename: str
    mimetype: str
    chunks: Iterator[bytes]


def export_transactions(rt: Runtime, scope: tuple[int, ...], file_format: str, *, clinic_code: str | None = None,
                        **filters) -> TransactionFile:
    if file_format not in FORMATS:
        raise InvalidInput(f"format must be one of {', '.join(FORMATS)}", "invalid_format")
    cap = rt.settings.TRANSACTION_EXPORT_MAX_ROWS
    with rt.db.session() as session:
        query = TransactionQuery(clinic_ids_in_scope(session, scope, clinic_code), **filters)
        selects = branches(query)
        if selects and count_up_to(session, selects, cap) > cap:
            raise InvalidInput(f"more than {cap} rows match: narrow the export (dates, kind, status, q)",
                               "export_too_large", details={"max_rows": cap})
    stamp = datetime.now(SHANGHAI).strftime("%Y%m%d-%H%M%S")
    safe_code = re.sub(r"[^A-Za-z0-9_-]", "_", clinic_code or "all")
    filename = f"transactions-{safe_code}-{stamp}.{file_format}"
    rows = _rows(rt, selects)
    chunks = _csv_chunks(rows) if file_format == CSV else _xlsx_chunks(rows)
    return TransactionFile(filename, FORMATS[file_format], chunks)


def _rows(rt: Runtime, selects) -> Iterator[list[str | int]]:
    """The header, then each transaction as cells (text neutralised, names and phones masked, money in fen)."""
    yield [column.header for column in COLUMNS]
    if not selects:
        return
    with rt.db.session() as session:
        names: dict[int, tuple[str, str]] = {}
        codes = dict(session.execute(select(Clinic.id, Clinic.code)).all())
        result = session.execute(newest_first(selects).execution_options(yield_per=READ_BATCH))
        for batch in result.partitions():
            wanted = {row.patient_id for row in batch if row.patient_id and row.patient_id not in names}
            if wanted:
                names.update({p.id: (mask_person_name(p.name), mask_phone(p.phone) or "")
                              for p in session.scalars(select(Patient).where(Patient.id.in_(wanted)))})
            for row in batch:
                name, phone = names.get(row.patient_id, ("", ""))
                record = {**row._asdict(), "clinic_code": codes.get(row.clinic_id, ""), "patient_name": name,
                          "patient_phone": phone}
                yield [column.value(record) if column.money else neutralise_cell(str(column.value(record)))
                       for column in COLUMNS]


def _csv_chunks(rows: Iterator[list]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    money = [column.money for column in COLUMNS]
    yield "\ufeff".encode()
    for number, row in enumerate(rows):
        writer.writerow([fen_to_yuan(value) if number and is_money else value
                         for value, is_money in zip(row, money, strict=True)])
        if buffer.tell() >= CHUNK_BYTES:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")


def _xlsx_chunks(rows: Iterator[list]) -> Iterator[bytes]:
    with tempfile.TemporaryFile() as out:
        workbook = xlsxwriter.Workbook(out, {"constant_memory": True, "strings_to_formulas": False,
                                             "strings_to_urls": False, "strings_to_numbers": False})
        sheet = workbook.add_worksheet("交易明细")
        header = workbook.add_format({"bold": True})
        money_format = workbook.add_format({"num_format": "0.00"})
        for index, column in enumerate(COLUMNS):
            sheet.set_column(index, index, 12 if column.money else 22)
        for number, row in enumerate(rows):
            for index, (value, column) in enumerate(zip(row, COLUMNS, strict=True)):
                if number == 0:
                    sheet.write_string(number, index, value, header)
                elif column.money:
                    sheet.write_number(number, index, float(fen_to_yuan(value)), money_format)
                else:
                    sheet.write_string(number, index, value)
        workbook.close()
        out.seek(0)
        while chunk := out.read(CHUNK_BYTES):
            yield chunk
