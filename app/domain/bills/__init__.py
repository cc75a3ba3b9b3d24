"""Streaming parsers of the channels' daily bills, yielding our own BillRow and checking the bills' totals.

Pure Python (csv, zipfile, io only): the caller opens the downloaded file and hands it over.

    bill = WeChatBill(open(path, encoding="utf-8", newline=""))
    for row in bill: ...
    bill.totals  # checked against the rows once the iteration has ended

    bill = AlipayBill(path_to_zip)
"""
from .alipay import AlipayBill
from .model import AlipayBillTotals, BillError, BillFormatError, BillIntegrityError, BillKind, BillRow, BillTotals
from .wechat import WeChatBill

__all__ = [
    "AlipayBill", "AlipayBillTotals", "BillError", "BillFormatError", "BillIntegrityError", "BillKind", "BillRow",
    "BillTotals", "WeChatBill",
]
