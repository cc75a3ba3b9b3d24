"""The daily trade bill (downloadbill): WeChat's backtick CSV, built from the ledger.

Rows of day D are the payments and the settled refunds whose time falls on D in
Asia/Shanghai. Amounts are yuan with 2 decimals; the fee is 0.6% half-up to the fen,
negative on refund rows.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal

from ..world import SHANGHAI, World
from . import ledger, refunds, wire

BILL_TYPES = ("ALL", "SUCCESS", "REFUND", "REVOKED")
FEE_RATE_PER_MILLE = 6
FEE_RATE_TEXT = "0.60%"

_ALL_COLUMNS = ("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,"
                "付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,"
                "退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注").split(",")
_SUCCESS_COLUMNS = ("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,"
                    "付款银行,货币种类,应结订单金额,代金券金额,商品名称,商户数据包,手续费,费率,订单金额,费率备注").split(",")
_REFUND_COLUMNS = _ALL_COLUMNS[:14] + ["退款申请时间", "退款成功时间"] + _ALL_COLUMNS[14:]
COLUMNS = {"ALL": _ALL_COLUMNS, "SUCCESS": _SUCCESS_COLUMNS, "REFUND": _REFUND_COLUMNS, "REVOKED": _ALL_COLUMNS}
TRAILER_COLUMNS = ("总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,"
                   "申请退款总金额").split(",")


def fee_fen(amount_fen: int) -> int:
    return (amount_fen * FEE_RATE_PER_MILLE + 500) // 1000


def yuan(fen: int) -> str:
    return f"{Decimal(fen) / 100:.2f}"


def _trade_columns(trade: dict) -> dict:
    return {
        "公众账号ID": trade["appid"], "商户号": trade["mch_id"], "特约商户号": "0", "设备号": "",
        "微信订单号": trade["transaction_id"], "商户订单号": trade["out_trade_no"], "用户标识": trade["openid"],
        "交易类型": trade["trade_type"], "付款银行": trade["bank_type"], "货币种类": trade["fee_type"],
        "代金券金额": yuan(0), "充值券退款金额": yuan(0), "商品名称": trade["body"], "商户数据包": trade["attach"],
        "费率": FEE_RATE_TEXT, "费率备注": "",
    }


def _payment_row(trade: dict) -> dict:
    """A row as column -> text, plus the signed fen amounts the trailer sums."""
    fee = fee_fen(trade["total_fee"])
    text = {
        **_trade_columns(trade), "交易时间": wire.dashed_time(trade["paid_at"]), "交易状态": "SUCCESS",
        "应结订单金额": yuan(trade["total_fee"]), "微信退款单号": "0", "商户退款单号": "0", "退款金额": yuan(0),
        "退款类型": "", "退款状态": "", "手续费": yuan(fee), "订单金额": yuan(trade["total_fee"]),
        "申请退款金额": yuan(0), "退款申请时间": "", "退款成功时间": "",
    }
    return {"text": text, "settled": trade["total_fee"], "refunded": 0, "fee": fee, "ordered": trade["total_fee"]}


def _refund_row(trade: dict, refund: dict) -> dict:
    fee = -fee_fen(refund["refund_fee"])
    success_time = wire.dashed_time(refund["success_at"])
    text = {
        **_trade_columns(trade), "交易时间": success_time, "交易状态": "REFUND", "应结订单金额": yuan(0),
        "微信退款单号": refund["refund_id"], "商户退款单号": refund["out_refund_no"],
        "退款金额": yuan(refund["refund_fee"]), "退款类型": "ORIGINAL", "退款状态": "SUCCESS", "手续费": yuan(fee),
        "订单金额": yuan(0), "申请退款金额": yuan(refund["refund_fee"]),
        "退款申请时间": wire.dashed_time(refund["created_at"]), "退款成功时间": success_time,
    }
    return {"text": text, "settled": 0, "refunded": refund["refund_fee"], "fee": fee, "ordered": 0}


def _day_bounds(day: date) -> tuple[float, float]:
    start = datetime.combine(day, time(0), SHANGHAI)
    return start.timestamp(), (start + timedelta(days=1)).timestamp()


def bill_rows(world: World, mch_id: str, day: date, bill_type: str) -> list[dict]:
    start, end = _day_bounds(day)
    rows: list[tuple[str, dict]] = []
    if bill_type in ("ALL", "SUCCESS"):
        rows += [(t["time_end"], _payment_row(t)) for t in ledger.payments_between(world, mch_id, start, end)]
    if bill_type in ("ALL", "REFUND"):
        trades: dict[int, dict] = {}
        for refund in refunds.refunds_succeeded_between(world, mch_id, start, end):
            trade = trades.setdefault(refund["trade_id"], ledger.trade_by_id(world, refund["trade_id"]))
            rows.append((wire.compact_time(refund["success_at"]), _refund_row(trade, refund)))
    rows.sort(key=lambda pair: pair[0])
    return [row for _, row in rows]


def _line(values: list[str]) -> str:
    return ",".join("`" + value for value in values)


def render(world: World, merchant: dict, day: date, bill_type: str) -> str | None:
    """The bill text with \\r\\n line endings, or None when the day has no rows (No Bill Exist)."""
    rows = bill_rows(world, merchant["mch_id"], day, bill_type)
    if not rows:
        return None
    columns = COLUMNS[bill_type]
    lines = [",".join(columns)]
    lines += [_line([row["text"][c] or "" for c in columns]) for row in rows]
    lines.append(",".join(TRAILER_COLUMNS))
    lines.append(_line([
        str(len(rows)),
        yuan(sum(r["settled"] for r in rows)),
        yuan(sum(r["refunded"] for r in rows)),
        yuan(0),
        yuan(sum(r["fee"] for r in rows)),
        yuan(sum(r["ordered"] for r in rows)),
        yuan(sum(r["refunded"] for r in rows)),
    ]))
    return "\r\n".join(lines) + "\r\n"
