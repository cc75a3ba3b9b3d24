"""Alipay's daily trade bill: `{pid}_{yyyyMMdd}.csv.zip` holding a detail and a summary CSV, GBK throughout.

Layout of the detail file (业务明细): `#` comment lines, a 业务明细列表 marker, the
25-column header, data rows, the 业务明细列表结束 marker and the 交易合计 /
退款合计 / 导出时间 trailer. Id and text fields carry a trailing tab, as
Alipay writes them so that spreadsheets keep long numbers as text.

Sign convention: 订单金额 and 商家实收 are positive on 交易 rows and negative on
退款 rows. 服务费 is 0.6% of the row's own amount rounded half-up to the fen,
shown negative on 交易 rows (the fee Alipay takes) and positive on 退款 rows
(the fee it gives back), so a trade refunded in parts may get back a fen more
or less than it paid. The summary's 实收净额 is 商家实收 plus 服务费.
"""
from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from .protocol import fen_to_yuan

PAYMENT = "交易"
REFUND = "退款"

DETAIL_HEADER = (
    "支付宝交易号", "商户订单号", "业务类型", "商品名称", "创建时间", "完成时间", "门店编号", "门店名称", "操作员",
    "终端号", "对方账户", "订单金额（元）", "商家实收（元）", "支付宝红包（元）", "集分宝（元）", "支付宝优惠（元）",
    "商家优惠（元）", "券核销金额（元）", "券名称", "商家红包消费金额（元）", "卡消费金额（元）", "退款批次号/请求号",
    "服务费（元）", "分润（元）", "备注",
)
SUMMARY_HEADER = (
    "日期", "交易订单总笔数", "退款订单总笔数", "订单金额（元）", "商家实收（元）", "支付宝优惠（元）",
    "商家优惠（元）",
    "卡消费金额（元）", "服务费（元）", "分润（元）", "实收净额（元）",
)
DETAIL_MARKER = "#-----------------------------------------业务明细列表----------------------------------------"
DETAIL_END_MARKER = "#-----------------------------------------业务明细列表结束------------------------------------"
SUMMARY_MARKER = "#-----------------------------------------业务汇总列表----------------------------------------"
SUMMARY_END_MARKER = "#-----------------------------------------业务汇总列表结束------------------------------------"
ZERO = "0.00"


@dataclass(frozen=True)
class BillEntry:
    """One bill row; amounts in signed fen as they appear (refunds negative, fees per the module's convention)."""
    trade_no: str
    out_trade_no: str
    business_type: str
    subject: str
    created_at: str
    finished_at: str
    counterparty: str
    amount_fen: int
    out_request_no: str
    fee_fen: int


def _text(value: str) -> str:
    return f"{value}\t"


def _cn_time(moment: datetime) -> str:
    return moment.strftime("%Y年%m月%d日 %H:%M:%S")


def _period_lines(pid: str, day: date) -> list[str]:
    start = datetime(day.year, day.month, day.day)
    return [f"#账号：[{pid}]",
            f"#起始日期：[{_cn_time(start)}]   终止日期：[{_cn_time(start + timedelta(days=1))}]"]


def _detail_row(entry: BillEntry) -> list[str]:
    amount = fen_to_yuan(entry.amount_fen)
    return [
        _text(entry.trade_no), _text(entry.out_trade_no), _text(entry.business_type), _text(entry.subject),
        entry.created_at, entry.finished_at, _text(""), _text(""), _text(""), _text(""), _text(entry.counterparty),
        amount, amount, ZERO, ZERO, ZERO, ZERO, ZERO, _text(""), ZERO, ZERO, _text(entry.out_request_no),
        fen_to_yuan(entry.fee_fen), ZERO, _text(""),
    ]


def _csv_text(comment_top: list[str], header: tuple[str, ...], rows: list[list[str]], comment_bottom: list[str]) -> str:
    out = io.StringIO()
    out.write("".join(line + "\r\n" for line in comment_top))
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    out.write("".join(line + "\r\n" for line in comment_bottom))
    return out.getvalue()


def detail_csv(pid: str, day: date, entries: list[BillEntry], exported_at: datetime) -> str:
    payments = [e for e in entries if e.business_type == PAYMENT]
    refunds = [e for e in entries if e.business_type == REFUND]
    trailer = [
        DETAIL_END_MARKER,
        f"#交易合计：{len(payments)}笔，商家实收共{fen_to_yuan(sum(e.amount_fen for e in payments))}元，"
        "商家优惠共0.00元",
        f"#退款合计：{len(refunds)}笔，商家实收共{fen_to_yuan(sum(e.amount_fen for e in refunds))}元，"
        "商家优惠共0.00元",
        f"#导出时间：[{_cn_time(exported_at)}]",
    ]
    return _csv_text(["#支付宝业务明细查询", *_period_lines(pid, day), DETAIL_MARKER], DETAIL_HEADER,
                     [_detail_row(e) for e in entries], trailer)


def summary_csv(pid: str, day: date, entries: list[BillEntry], exported_at: datetime) -> str:
    received = sum(e.amount_fen for e in entries)
    fees = sum(e.fee_fen for e in entries)
    totals = [
        str(sum(e.business_type == PAYMENT for e in entries)), str(sum(e.business_type == REFUND for e in entries)),
        fen_to_yuan(received), fen_to_yuan(received), ZERO, ZERO, ZERO, fen_to_yuan(fees), ZERO,
        fen_to_yuan(received + fees),
    ]
    rows = [[_text(day.isoformat()), *totals], [_text("合计"), *totals]]
    return _csv_text(["#支付宝业务汇总查询", *_period_lines(pid, day), SUMMARY_MARKER], SUMMARY_HEADER, rows,
                     [SUMMARY_END_MARKER, f"#导出时间：[{_cn_time(exported_at)}]"])


class _GbkNamedEntry(zipfile.ZipInfo):
    """An entry whose name is stored in GBK without the UTF-8 flag, as Alipay's bill zips are.

    zipfile writes any non-ASCII name as UTF-8 and sets flag bit 11; readers of
    Alipay bills decode the names as GBK, so the name bytes must be GBK.
    """

    def _encodeFilenameFlags(self):  # noqa: N802 (zipfile's own hook name)
        return self.filename.encode("gbk"), self.flag_bits & ~0x800


def bill_archive(pid: str, day: date, entries: list[BillEntry], exported_at: datetime) -> tuple[str, bytes]:
    """(file name, zip bytes) of the day's bill."""
    stem = f"{pid}_{day.strftime('%Y%m%d')}"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for suffix, text in (("业务明细", detail_csv(pid, day, entries, exported_at)),
                             ("业务明细(汇总)", summary_csv(pid, day, entries, exported_at))):
            info = _GbkNamedEntry(f"{stem}_{suffix}.csv", date_time=exported_at.timetuple()[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, text.encode("gbk", errors="replace"))
    return f"{stem}.csv.zip", buf.getvalue()
