"""Reconciliation: a day's WeChat ALL bill against our records, the platform's matcher beside pandas.

Generates (once, cached) a WeChat ALL bill of --rows rows (about 270 bytes each: 1,000,000 rows is about 260 MiB)
and the platform's records of the same day as `out_trade_no amount` lines: every bill row but 0.1% (missing on
our side), 0.1% records the bill does not hold (missing at the channel), 0.1% with another amount, a refund
every 50th row. Each contender runs in a fresh process, rounds interleaved, and reports its wall time (the whole
process: imports, our records loaded, the bill read and matched; and the bill's part alone) and peak RSS:

- read:     a plain read of the bill file in 4 MiB blocks (the floor);
- matcher:  app.domain.reconciliation: the records into dicts, the bill streamed through the hash join;
- pandas:   the straightforward baseline: the records and the bill (as text) by read_csv, two outer merges
            with an indicator, the trailer checked against the column sums;
- pandas-7: the same reading only the seven bill columns it uses (pandas at its best).

Then the same at --small rows (the cost is linear), and the whole day end to end: a throwaway PostgreSQL with the
day's orders, payment attempts and refunds, and `reconciliation.reconcile()` timed from start to stored result
(records read from PostgreSQL, the bill parsed and matched, the discrepancies written; the download is a link).

    .venv/bin/python -m bench.reconcile_bench [--rows 1000000] [--small 100000] [--rounds 3] [--no-e2e]

pandas is not a platform dependency: `pip install pandas` first (the `bench` extra).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.reconcile_data import APPID, DAY, MCH_ID, SHANGHAI, day_files, platform_payments, platform_refunds  # noqa: E402

TARGET_SPEEDUP, TARGET_MEMORY_SHARE, TARGET_E2E_S = 4.0, 1 / 3, 15.0


class _Amounts(dict):
    """Amount text -> int: a day's amounts repeat a few prices."""

    def __missing__(self, text: bytes) -> int:
        value = self[text] = int(text)
        return value


def read_records(path: Path, block_bytes: int = 256 << 10) -> dict[bytes, int]:
    """Our side into the matcher's dict, streamed as from a database cursor."""
    records: dict[bytes, int] = {}
    amount = _Amounts().__getitem__
    with open(path, "rb") as stream:
        while block := stream.read(block_bytes):
            block += stream.readline()
            tokens = block.split()
            records.update(zip(tokens[0::2], map(amount, tokens[1::2]), strict=True))
    return records


# --- contenders (each in its own process) -------------------------------------------------------------

def contender_read(path: Path, rows: int) -> dict:
    total = 0
    with open(path, "rb") as stream:
        while block := stream.read(4 << 20):
            total += len(block)
    return {"bytes": total, "records_s": 0.0}


def contender_matcher(path: Path, rows: int) -> dict:
    started = time.perf_counter()
    from app.domain.reconciliation import AMOUNT, UNKNOWN, Book, match_wechat_bill

    book = Book(read_records(path.with_suffix(".payments")), read_records(path.with_suffix(".refunds")))
    records_s = time.perf_counter() - started
    with open(path, "rb") as stream:
        result = match_wechat_bill(stream, book)
    return {"matched": result.matched, "missing_ours": sum(u.reason == UNKNOWN for u in result.unmatched),
            "amount": sum(u.reason == AMOUNT for u in result.unmatched), "missing_channel": len(book),
            "records_s": records_s}


def contender_pandas(path: Path, rows: int, usecols: bool = False) -> dict:
    """The straightforward pandas reconciliation: the records, the whole bill as text, two outer merges."""
    started = time.perf_counter()
    import pandas as pd

    platform = {name: pd.read_csv(path.with_suffix(f".{name}"), sep=" ", header=None, names=["ref", "our_amount"],
                                  dtype={"ref": str, "our_amount": "int64"}) for name in ("payments", "refunds")}
    records_s = time.perf_counter() - started
    columns = ["交易状态", "商户订单号", "商户退款单号", "应结订单金额", "退款金额", "手续费", "订单金额"]
    bill = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8", usecols=columns if usecols else None)
    # The trailer's header and its 7 values land in the first seven columns: only real rows have a 交易状态.
    bill = bill[bill["交易状态"] != ""]
    for column in columns:
        bill[column] = bill[column].str.slice(1)
    for column in columns[3:]:
        bill[column] = (pd.to_numeric(bill[column]) * 100).round().astype("int64")
    with open(path, "rb") as stream:
        stream.seek(max(0, os.path.getsize(path) - 4096))
        said = stream.read().decode("utf-8", errors="replace").splitlines()[-1][1:].split(",`")
    sums = (len(bill), bill["应结订单金额"].sum(), bill["退款金额"].sum(), bill["手续费"].sum())
    if (int(said[0]), round(float(said[1]) * 100), round(float(said[2]) * 100), round(float(said[4]) * 100)) != sums:
        raise SystemExit("the trailer does not match the rows")
    refunds = bill["交易状态"] == "REFUND"
    counts = {"matched": 0, "missing_ours": 0, "amount": 0, "missing_channel": 0}
    for rows_of, key, amount, ours in ((bill[~refunds], "商户订单号", "订单金额", platform["payments"]),
                                       (bill[refunds], "商户退款单号", "退款金额", platform["refunds"])):
        merged = rows_of[[key, amount]].merge(ours, left_on=key, right_on="ref", how="outer", indicator=True)
        both = merged["_merge"] == "both"
        counts["matched"] += int((both & (merged[amount] == merged["our_amount"])).sum())
        counts["amount"] += int((both & (merged[amount] != merged["our_amount"])).sum())
        counts["missing_ours"] += int((merged["_merge"] == "left_only").sum())
        counts["missing_channel"] += int((merged["_merge"] == "right_only").sum())
    return {**counts, "records_s": records_s}


def contender_pandas_usecols(path: Path, rows: int) -> dict:
    """The same, reading only the seven columns it uses: pandas' best showing."""
    return contender_pandas(path, rows, usecols=True)


def contender_e2e(path: Path, rows: int, database_url: str, clinic_id: int, account_id: int) -> dict:
    from app.runtime import Runtime
    from app.services import reconciliation
    from config.settings import DevelopmentSettings

    rt = Runtime(DevelopmentSettings(DATABASE_URL=database_url, LOG_LEVEL="WARNING"))

    def fetch(day: date, dest: Path) -> Path | None:
        if day != DAY:
            return None  # the next day's bill: nothing late was billed
        os.symlink(path, dest)
        return dest

    run = reconciliation.reconcile(rt, DAY, "wechat", clinic_id, account_id, fetch=fetch)
    return {"status": run["status"], **run["counts"]}


CONTENDERS = {"read": contender_read, "matcher": contender_matcher, "pandas": contender_pandas,
              "pandas-7": contender_pandas_usecols}


def peak_rss_mb() -> float:
    """This process image's high-water mark (ru_maxrss would carry the parent's over fork and exec)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_main(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    if args.contender == "e2e":
        extra = contender_e2e(Path(args.bill), args.rows, args.database_url, args.clinic_id, args.account_id)
    else:
        extra = CONTENDERS[args.contender](Path(args.bill), args.rows)
    seconds = time.perf_counter() - started
    cpu = sum(os.times()[:2])  # the whole process's CPU: steadier than wall time on a shared machine
    print("RESULT " + json.dumps({"seconds": seconds, "cpu_s": cpu, "peak_mb": peak_rss_mb(), **extra}), flush=True)


def measure(contender: str, bill: Path, rows: int, *extra: str) -> dict:
    argv = [sys.executable, "-m", "bench.reconcile_bench", "--contender", contender, "--bill", str(bill),
            "--rows", str(rows), *extra]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    line = next((raw for raw in done.stdout.splitlines() if raw.startswith("RESULT ")), None)
    if done.returncode != 0 or line is None:
        raise SystemExit(f"{contender} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return json.loads(line[len("RESULT "):])


# --- the end-to-end day ----------------------------------------------------------------------------

def seed_day(database_url: str, rows: int) -> tuple[int, int]:
    """A clinic, a WeChat merchant account and the day's orders, attempts and refunds, by COPY."""
    import psycopg

    from app.db.models import Clinic, MerchantAccount
    from app.runtime import Runtime
    from config.settings import DevelopmentSettings

    rt = Runtime(DevelopmentSettings(DATABASE_URL=database_url))
    with rt.db.session() as session:
        clinic = Clinic(code="bench", name="Bench", his_base_url="http://127.0.0.1:1/his/", his_key_id="bench",
                        his_secret="bench-" + "x" * 32)
        session.add(clinic)
        session.flush()
        account = MerchantAccount(clinic_id=clinic.id, channel="wechat", app_id=APPID, mch_id=MCH_ID, api_key="k" * 32,
                                  sign_type="MD5", api_base_url="http://127.0.0.1:1/wxpay/", active=True)
        session.add(account)
        session.flush()
        clinic_id, account_id = clinic.id, account.id
    rt.close()
    start = datetime.combine(DAY, datetime.min.time(), SHANGHAI).astimezone(UTC)
    created = start - timedelta(minutes=5)
    with psycopg.connect(database_url.replace("+psycopg", "")) as conn, conn.cursor() as cur:
        with cur.copy("COPY orders (id, order_no, clinic_id, type, status, channel, amount_fen, refunded_fen,"
                      " description, expires_at, paid_at, created_at, updated_at) FROM STDIN") as copy:
            for n, (ref, amount) in enumerate(platform_payments(rows), 1):
                copy.write_row((n, ref[:-3], clinic_id, "topup", "completed", "wechat", amount, 0, "充值", created,
                                created, created, created))
        with cur.copy("COPY payment_attempts (id, order_id, merchant_account_id, channel, out_trade_no, amount_fen,"
                      " status, paid_at, late, query_count, created_at, updated_at) FROM STDIN") as copy:
            for n, (ref, amount) in enumerate(platform_payments(rows), 1):
                copy.write_row((n, n, account_id, "wechat", ref, amount, "paid",
                                start + timedelta(seconds=n * 86000 // rows), False, 0, created, created))
        attempt_of = {ref: n for n, (ref, _) in enumerate(platform_payments(rows), 1)}
        refunds = [(n, ref, amount, attempt_of[ref[:-3]]) for n, (ref, amount) in enumerate(platform_refunds(rows), 1)]
        with cur.copy("COPY refund_requests (id, refund_request_no, clinic_id, origin, order_id, amount_fen, status,"
                      " created_at, updated_at) FROM STDIN") as copy:
            for n, _ref, amount, attempt in refunds:
                copy.write_row((n, f"R{n:020d}", clinic_id, "patient", attempt, amount, "succeeded", created, created))
        with cur.copy("COPY refunds (id, refund_no, refund_request_id, payment_attempt_id, order_id, amount_fen,"
                      " status, query_count, succeeded_at, created_at, updated_at) FROM STDIN") as copy:
            for n, ref, amount, attempt in refunds:
                copy.write_row((n, ref, n, attempt, attempt, amount, "succeeded", 0,
                                start + timedelta(seconds=n * 86000 // len(refunds)), created, created))
        conn.commit()
    with psycopg.connect(database_url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return clinic_id, account_id


# --- the report ------------------------------------------------------------------------------------

def report(label: str, rows: int, results: dict[str, list[dict]]) -> None:
    """Whole process (imports, our records loaded, the bill read and matched), and the bill's part alone."""
    print(f"\n{label}: {rows:,} bill rows, {len(results['read'])} rounds (median, min-max)")
    print(f"  {'contender':<9} {'whole process s':>20} {'records s':>10} {'bill s':>6} {'bill rows/s':>12} "
          f"{'peak RSS MB':>12} {'CPU s':>6}")

    def bill_s(run: dict) -> float:
        return run["seconds"] - run["records_s"]

    for name, runs in results.items():
        whole = [r["seconds"] for r in runs]
        print(f"  {name:<9} {statistics.median(whole):>8.2f} ({min(whole):.2f}-{max(whole):.2f})"
              f"{statistics.median(r['records_s'] for r in runs):>11.2f}"
              f"{statistics.median(map(bill_s, runs)):>7.2f}{rows / statistics.median(map(bill_s, runs)):>13,.0f}"
              f"{statistics.median(r['peak_mb'] for r in runs):>13.0f}"
              f"{statistics.median(r['cpu_s'] for r in runs):>7.2f}")
    keys = ("matched", "missing_ours", "amount", "missing_channel")
    matcher = results["matcher"]
    for name in ("pandas", "pandas-7"):
        baseline = results[name]
        whole = [b["seconds"] / m["seconds"] for m, b in zip(matcher, baseline, strict=True)]
        bill = [bill_s(b) / bill_s(m) for m, b in zip(matcher, baseline, strict=True)]
        cpu = statistics.median(b["cpu_s"] / m["cpu_s"] for m, b in zip(matcher, baseline, strict=True))
        memory = statistics.median(m["peak_mb"] for m in matcher) / statistics.median(b["peak_mb"] for b in baseline)
        same = all({k: r[k] for k in keys} == {k: baseline[0][k] for k in keys} for r in matcher)
        print(f"  matcher vs {name}: {statistics.median(whole):.1f}x faster whole process (per round "
              f"{min(whole):.1f}-{max(whole):.1f}x), {statistics.median(bill):.1f}x on the bill "
              f"({min(bill):.1f}-{max(bill):.1f}x), {cpu:.1f}x in CPU time; peak memory {memory:.0%} of its; "
              f"same counts: {same}")
    print(f"  targets: {TARGET_SPEEDUP:.0f}x faster than pandas at <= {TARGET_MEMORY_SHARE:.0%} of its peak memory; "
          f"counts { {k: matcher[0][k] for k in keys} }")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=100_000, help="the second size, to show linear cost (0: skip)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data-dir", default="/tmp/hpay-bench-reconcile", help="where generated bills are kept")
    parser.add_argument("--no-e2e", action="store_true", help="skip the end-to-end day on PostgreSQL")
    parser.add_argument("--contender", help=argparse.SUPPRESS)
    parser.add_argument("--bill", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--clinic-id", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--account-id", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.contender:
        return child_main(args)
    if importlib.util.find_spec("pandas") is None:
        raise SystemExit("the baseline needs pandas: .venv/bin/pip install pandas")
    from bench.common import BenchStack, load_average

    print(f"{os.cpu_count()} cores, Python {sys.version.split()[0]}; {load_average()}")
    for rows in [args.rows] + ([args.small] if args.small else []):
        bill = day_files(Path(args.data_dir), rows)
        results: dict[str, list[dict]] = {name: [] for name in CONTENDERS}
        for _ in range(args.rounds):
            for name in CONTENDERS:
                results[name].append(measure(name, bill, rows))
        report(f"{bill.stat().st_size / 2**20:.0f} MiB WeChat ALL bill", rows, results)
    if args.no_e2e:
        return
    bill = day_files(Path(args.data_dir), args.rows)
    with BenchStack() as stack:
        print(f"\nseeding {args.rows:,} payments into PostgreSQL …", flush=True)
        clinic_id, account_id = seed_day(stack.database_url, args.rows)
        runs = [measure("e2e", bill, args.rows, "--database-url", stack.database_url, "--clinic-id", str(clinic_id),
                        "--account-id", str(account_id)) for _ in range(args.rounds)]
    seconds = [r["seconds"] for r in runs]
    print(f"end to end, {args.rows:,} payments (PostgreSQL read, bill matched, discrepancies stored): "
          f"{statistics.median(seconds):.1f} s median ({min(seconds):.1f}-{max(seconds):.1f}; target "
          f"< {TARGET_E2E_S:.0f} s), peak RSS {statistics.median(r['peak_mb'] for r in runs):.0f} MB; {runs[-1]}; "
          f"{load_average()}")


if __name__ == "__main__":
    main()
