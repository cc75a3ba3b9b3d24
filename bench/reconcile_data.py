"""The synthetic day bench.reconcile_bench reconciles: a WeChat ALL bill of a hospital's day and our records of
it, with the same share of rows missing on either side, amounts that differ and refunds every run."""
from __future__ import annotations

import os
from datetime import date, timedelta, timezone
from pathlib import Path

DAY = date(2026, 1, 10)
SHANGHAI = timezone(timedelta(hours=8))
APPID, MCH_ID = "wx8888888888888888", "1900000109"
HEADER = ("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,"
          "交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,"
          "充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注")
TRAILER = "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"
# A hospital's prices repeat: registration fees, lab and exam fees, top-ups in round amounts.
PRICES = sorted({p for base in (500, 1000, 1500, 2000, 3500, 5000, 12000, 19900, 29900, 99900)
                 for p in (base, base * 2, base + 80, base + 360, base * 3 + 50)} | {k * 5000 for k in range(1, 41)})

# --- the day's data --------------------------------------------------------------------------------

def out_trade_no(i: int) -> str:
    return f"T{DAY:%Y%m%d}{i:012d}P01"


def amount_of(i: int) -> int:
    return PRICES[(i * 2654435761) % 4294967296 % len(PRICES)]


def is_refund_row(i: int) -> bool:
    return i % 50 == 49  # the refund of row i - 1's payment


def missing_on_our_side(i: int) -> bool:
    return i % 1000 == 17


def mismatched(i: int) -> bool:
    return i % 1000 == 503


def fee(amount_fen: int) -> int:
    return (amount_fen * 6 + 500) // 1000


def yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def platform_payments(rows: int):
    """(out_trade_no, amount fen) of our paid attempts of the day, as read from the database."""
    for i in range(rows):
        if is_refund_row(i):
            continue
        if missing_on_our_side(i):
            yield f"Y{DAY:%Y%m%d}{i:012d}P01", amount_of(i)  # ours alone: missing at the channel
        else:
            yield out_trade_no(i), amount_of(i) + mismatched(i)


def platform_refunds(rows: int):
    for i in range(49, rows, 50):
        yield out_trade_no(i - 1) + "R01", max(1, amount_of(i - 1) // 2)


def write_bill(path: Path, rows: int) -> None:
    partial = path.with_suffix(".part")
    settled = refunded = fees = 0
    with open(partial, "w", encoding="utf-8", newline="") as out:
        out.write(HEADER + "\r\n")
        lines = []
        for i in range(rows):
            second = i * 86400 // rows
            when = f"{DAY} {second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}"
            if is_refund_row(i):
                amount = max(1, amount_of(i - 1) // 2)
                lines.append(f"`{when},`{APPID},`{MCH_ID},`0,`,`4200000{i - 1:021d},`{out_trade_no(i - 1)},"
                             f"`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o,`JSAPI,`REFUND,`OTHERS,`CNY,`0.00,`0.00,`5030000{i:021d},"
                             f"`{out_trade_no(i - 1)}R01,`{yuan(amount)},`0.00,`ORIGINAL,`SUCCESS,"
                             f"`就诊卡充值 Card top-up,`,`{yuan(-fee(amount))},`0.60%,`0.00,`{yuan(amount)},`\r\n")
                refunded, fees = refunded + amount, fees - fee(amount)
            else:
                amount = amount_of(i)
                lines.append(f"`{when},`{APPID},`{MCH_ID},`0,`,`4200000{i:021d},`{out_trade_no(i)},"
                             f"`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o,`JSAPI,`SUCCESS,`OTHERS,`CNY,`{yuan(amount)},`0.00,`0,`0,"
                             f"`0.00,`0.00,`,`,`就诊卡充值 Card top-up,`,`{yuan(fee(amount))},`0.60%,`{yuan(amount)},"
                             f"`0.00,`\r\n")
                settled, fees = settled + amount, fees + fee(amount)
            if len(lines) == 20_000:
                out.write("".join(lines))
                lines.clear()
        out.write("".join(lines))
        out.write(TRAILER + "\r\n" + ",".join("`" + v for v in (str(rows), yuan(settled), yuan(refunded), "0.00",
                                                                 yuan(fees), yuan(settled), yuan(refunded))) + "\r\n")
    os.replace(partial, path)


def write_records(path: Path, records) -> None:
    """Our side as the database would stream it: `out_trade_no amount` lines."""
    partial = path.with_suffix(".part")
    with open(partial, "w", encoding="ascii") as out:
        out.writelines(f"{ref} {amount}\n" for ref, amount in records)
    os.replace(partial, path)


def day_files(data_dir: Path, rows: int) -> Path:
    """The bill; our payments and refunds lie beside it (`.payments`, `.refunds`)."""
    path = data_dir / f"wechat-all-{DAY:%Y%m%d}-{rows}.csv"
    if not path.exists():
        print(f"generating a {rows:,}-row bill and the day's records in {data_dir} …", flush=True)
        data_dir.mkdir(parents=True, exist_ok=True)
        write_records(path.with_suffix(".payments"), platform_payments(rows))
        write_records(path.with_suffix(".refunds"), platform_refunds(rows))
        write_bill(path, rows)
    return path
