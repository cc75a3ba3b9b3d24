"""The WeChat and Alipay bill parsers over small hand-made bills in the channels' formats."""
from __future__ import annotations

import csv
import io
import zipfile
from datetime import datetime, timedelta, timezone

import pytest

from app.domain.bills import (
    AlipayBill,
    AlipayBillTotals,
    BillFormatError,
    BillIntegrityError,
    BillKind,
    BillRow,
    BillTotals,
    WeChatBill,
)

SHANGHAI = timezone(timedelta(hours=8))

# --- WeChat -------------------------------------------------------------------
WX_COLUMNS = ("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,"
              "交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,"
              "充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注").split(",")
WX_TRAILER = "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"


def wx_row(time, trade, out, state, settle, refund_id="0", out_refund="0", refund="0.00", refund_state="",
           fee="0.00", order="0.00", body="挂号费") -> dict:
    return {
        "交易时间": time, "公众账号ID": "wx2421b1c4370ec43b", "商户号": "10000100", "特约商户号": "0", "设备号": "",
        "微信订单号": trade, "商户订单号": out, "用户标识": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "交易类型": "JSAPI",
        "交易状态": state, "付款银行": "OTHERS", "货币种类": "CNY", "应结订单金额": settle, "代金券金额": "0.00",
        "微信退款单号": refund_id, "商户退款单号": out_refund, "退款金额": refund, "充值券退款金额": "0.00",
        "退款类型": "ORIGINAL" if state == "REFUND" else "", "退款状态": refund_state, "商品名称": body,
        "商户数据包": "", "手续费": fee, "费率": "0.60%", "订单金额": order,
        "申请退款金额": refund, "费率备注": "",
    }


PAY_1 = wx_row("2024-07-09 10:06:33", "4200001", "P1", "SUCCESS", "100.00", fee="0.60", order="100.00")
PAY_2 = wx_row("2024-07-09 11:00:00", "4200002", "P2", "SUCCESS", "0.01", order="0.01", body="体检套餐,含抽血")
REFUND_1 = wx_row("2024-07-09 12:30:05", "4200001", "P1", "REFUND", "0.00", refund_id="5030001", out_refund="R1",
                  refund="30.00", refund_state="SUCCESS", fee="-0.18")
WX_TOTALS = ["3", "100.01", "30.00", "0.00", "0.42", "100.01", "30.00"]


def wx_bill(rows, totals, columns=WX_COLUMNS) -> list[str]:
    lines = [",".join(columns)]
    lines += [",".join("`" + row[c] for c in columns) for row in rows]
    lines += [WX_TRAILER, ",".join("`" + v for v in totals)]
    return [line + "\r\n" for line in lines]


def test_wechat_bill_rows_and_totals():
    bill = WeChatBill(wx_bill([PAY_1, PAY_2, REFUND_1], WX_TOTALS))
    rows = list(bill)
    assert rows == [
        BillRow(BillKind.PAYMENT, "4200001", "P1", None, None, 10000, 60, "SUCCESS",
                datetime(2024, 7, 9, 10, 6, 33, tzinfo=SHANGHAI)),
        BillRow(BillKind.PAYMENT, "4200002", "P2", None, None, 1, 0, "SUCCESS",
                datetime(2024, 7, 9, 11, 0, 0, tzinfo=SHANGHAI)),
        BillRow(BillKind.REFUND, "4200001", "P1", "5030001", "R1", 3000, -18, "SUCCESS",
                datetime(2024, 7, 9, 12, 30, 5, tzinfo=SHANGHAI)),
    ]
    assert rows[0].occurred_at.utcoffset() == timedelta(hours=8)
    assert bill.totals == BillTotals(count=3, settlement_total_fen=10001, refund_total_fen=3000, fee_total_fen=42,
                                     order_total_fen=10001)


def test_wechat_columns_are_found_by_name_not_position():
    shuffled = list(reversed(WX_COLUMNS))
    rows = list(WeChatBill(wx_bill([PAY_1, REFUND_1], ["2", "100.00", "30.00", "0.00", "0.42", "100.00", "30.00"],
                                   columns=shuffled)))
    assert [(r.kind, r.out_trade_no, r.amount_fen, r.fee_fen) for r in rows] == [
        (BillKind.PAYMENT, "P1", 10000, 60), (BillKind.REFUND, "P1", 3000, -18)]


def test_wechat_lines_without_endings_and_with_bom():
    lines = [line.rstrip("\r\n") for line in wx_bill([PAY_1], ["1", "100.00", "0.00", "0.00", "0.60", "100.00",
                                                               "0.00"])]
    lines[0] = "\ufeff" + lines[0]
    assert [r.out_trade_no for r in WeChatBill(lines)] == ["P1"]


@pytest.mark.parametrize("index, value, named", [
    (0, "4", "总交易单数"), (1, "100.02", "应结订单总金额"), (2, "29.99", "退款总金额"), (4, "0.43", "手续费总金额")])
def test_wechat_trailer_that_does_not_add_up(index, value, named):
    totals = list(WX_TOTALS)
    totals[index] = value
    with pytest.raises(BillIntegrityError, match=named):
        list(WeChatBill(wx_bill([PAY_1, PAY_2, REFUND_1], totals)))


def test_wechat_truncated_bill_is_refused():
    lines = wx_bill([PAY_1, PAY_2, REFUND_1], WX_TOTALS)[:-2]
    bill = WeChatBill(lines)
    with pytest.raises(BillIntegrityError, match="truncated"):
        list(bill)
    assert bill.totals is None


def test_wechat_empty_bill():
    bill = WeChatBill(wx_bill([], ["0", "0.00", "0.00", "0.00", "0.00", "0.00", "0.00"]))
    assert list(bill) == []
    assert bill.totals == BillTotals(0, 0, 0, 0, 0)
    with pytest.raises(BillIntegrityError, match="empty"):
        list(WeChatBill([]))


def test_wechat_malformed_rows_are_refused_with_their_line():
    lines = wx_bill([PAY_1, PAY_2], ["2", "100.01", "0.00", "0.00", "0.60", "100.01", "0.00"])
    short = list(lines)
    short[2] = short[2].replace(",`0.60%", "")
    with pytest.raises(BillFormatError, match="line 3: 26 fields"):
        list(WeChatBill(short))
    sub_fen = list(lines)
    sub_fen[1] = sub_fen[1].replace("`100.00", "`100.001", 1)
    with pytest.raises(BillFormatError, match="line 2: more than two decimals"):
        list(WeChatBill(sub_fen))
    with pytest.raises(BillFormatError, match="lacks 手续费"):
        list(WeChatBill([lines[0].replace("手续费", "fee")] + lines[1:]))


# --- Alipay -------------------------------------------------------------------
ALI_HEADER = ("支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,"
              "对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,"
              "商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注").split(",")


def ali_row(trade_no, out, kind, subject, created, done, amount, request_no, fee) -> list[str]:
    t = "\t"
    return [trade_no + t, out + t, kind + t, subject + t, created, done, t, t, t, t, "2088102122524333" + t, amount,
            amount, "0.00", "0.00", "0.00", "0.00", "0.00", t, "0.00", "0.00", request_no + t, fee, "0.00", t]


ALI_ROWS = [
    ali_row("2024070922001", "A1", "交易", "检验费", "2024-07-09 09:00:00", "2024-07-09 09:00:10", "200.00", "",
            "-1.20"),
    ali_row("2024070922002", "A2", "交易", "药费,中药", "2024-07-09 09:10:00", "2024-07-09 09:10:10", "0.50", "",
            "0.00"),
    ali_row("2024070922001", "A1", "退款", "检验费", "2024-07-09 09:00:00", "2024-07-09 15:00:00", "-50.00", "RF1",
            "0.30"),
]


def ali_detail(rows, trade_line, refund_line, end=True) -> str:
    out = io.StringIO()
    out.write("#支付宝业务明细查询\r\n#账号：[20881234567890120156]\r\n"
              "#起始日期：[2024年07月09日 00:00:00]   终止日期：[2024年07月10日 00:00:00]\r\n"
              "#-----------------------------------------业务明细列表----------------------------------------\r\n")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(ALI_HEADER)
    writer.writerows(rows)
    if end:
        out.write("#-----------------------------------------业务明细列表结束------------------------------------\r\n"
                  f"{trade_line}\r\n{refund_line}\r\n#导出时间：[2024年07月10日 09:45:07]\r\n")
    return out.getvalue()


class GbkNamed(zipfile.ZipInfo):
    """A GBK-named entry without the UTF-8 flag, as in Alipay's zips."""

    def _encodeFilenameFlags(self):  # noqa: N802 (zipfile's hook)
        return self.filename.encode("gbk"), self.flag_bits & ~0x800


def ali_zip(detail: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        # The summary comes first so that picking the entry by name is what makes the test pass.
        for name, text in (("20881234567890120156_20240709_业务明细(汇总).csv", "#支付宝业务汇总查询\r\n"),
                           ("20881234567890120156_20240709_业务明细.csv", detail)):
            archive.writestr(GbkNamed(name), text.encode("gbk"))
    return buf.getvalue()


GOOD_TRADE_LINE = "#交易合计：2笔，商家实收共200.50元，商家优惠共0.00元"
GOOD_REFUND_LINE = "#退款合计：1笔，商家实收共-50.00元，商家优惠共0.00元"


def test_alipay_zip_entry_names_are_gbk_without_the_utf8_flag():
    infos = zipfile.ZipFile(io.BytesIO(ali_zip(ali_detail([], "", "")))).infolist()
    assert all(not info.flag_bits & 0x800 for info in infos)
    assert "业务明细" not in infos[1].filename  # zipfile shows them as cp437 mojibake


def test_alipay_bill_rows_and_totals(tmp_path):
    path = tmp_path / "bill.csv.zip"
    path.write_bytes(ali_zip(ali_detail(ALI_ROWS, GOOD_TRADE_LINE, GOOD_REFUND_LINE)))
    bill = AlipayBill(path)
    assert list(bill) == [
        BillRow(BillKind.PAYMENT, "2024070922001", "A1", None, None, 20000, 120, "TRADE_SUCCESS",
                datetime(2024, 7, 9, 9, 0, 10, tzinfo=SHANGHAI)),
        BillRow(BillKind.PAYMENT, "2024070922002", "A2", None, None, 50, 0, "TRADE_SUCCESS",
                datetime(2024, 7, 9, 9, 10, 10, tzinfo=SHANGHAI)),
        BillRow(BillKind.REFUND, "2024070922001", "A1", None, "RF1", 5000, -30, "REFUND_SUCCESS",
                datetime(2024, 7, 9, 15, 0, 0, tzinfo=SHANGHAI)),
    ]
    assert bill.totals == AlipayBillTotals(trade_count=2, trade_total_fen=20050, refund_count=1,
                                           refund_total_fen=-5000)


def test_alipay_bill_from_a_binary_file_object():
    bill = AlipayBill(io.BytesIO(ali_zip(ali_detail(ALI_ROWS, GOOD_TRADE_LINE, GOOD_REFUND_LINE))))
    assert [r.out_trade_no for r in bill] == ["A1", "A2", "A1"]


@pytest.mark.parametrize("trade_line, refund_line, named", [
    ("#交易合计：3笔，商家实收共200.50元，商家优惠共0.00元", GOOD_REFUND_LINE, "交易合计 笔数"),
    ("#交易合计：2笔，商家实收共200.51元，商家优惠共0.00元", GOOD_REFUND_LINE, "交易合计 商家实收"),
    (GOOD_TRADE_LINE, "#退款合计：1笔，商家实收共-40.00元，商家优惠共0.00元", "退款合计 商家实收"),
    (GOOD_TRADE_LINE, "#退款合计：0笔，商家实收共-50.00元，商家优惠共0.00元", "退款合计 笔数"),
])
def test_alipay_totals_that_do_not_add_up(trade_line, refund_line, named):
    bill = AlipayBill(io.BytesIO(ali_zip(ali_detail(ALI_ROWS, trade_line, refund_line))))
    with pytest.raises(BillIntegrityError, match=named):
        list(bill)
    assert bill.totals is None


def test_alipay_truncated_bill_is_refused():
    with pytest.raises(BillIntegrityError, match="truncated"):
        list(AlipayBill(io.BytesIO(ali_zip(ali_detail(ALI_ROWS, "", "", end=False)))))
    with pytest.raises(BillIntegrityError, match="#退款合计"):
        list(AlipayBill(io.BytesIO(ali_zip(ali_detail(ALI_ROWS, GOOD_TRADE_LINE, "#导出时间：[]")))))


def test_alipay_empty_bill():
    bill = AlipayBill(io.BytesIO(ali_zip(ali_detail([], "#交易合计：0笔，商家实收共0.00元，商家优惠共0.00元",
                                                    "#退款合计：0笔，商家实收共0.00元，商家优惠共0.00元"))))
    assert list(bill) == []
    assert bill.totals == AlipayBillTotals(0, 0, 0, 0)


def test_alipay_zip_without_a_detail_entry():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr(GbkNamed("2088_20240709_业务明细(汇总).csv"), b"#")
    with pytest.raises(BillFormatError, match="no 业务明细 detail entry"):
        list(AlipayBill(buf))


def test_alipay_malformed_amount_names_its_line():
    rows = [list(ALI_ROWS[0])]
    rows[0][12] = "2OO.00"
    with pytest.raises(BillFormatError, match="line 6: not an amount of yuan"):
        list(AlipayBill(io.BytesIO(ali_zip(ali_detail(rows, GOOD_TRADE_LINE, GOOD_REFUND_LINE)))))
