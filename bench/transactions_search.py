"""The transaction search on a year of a busy hospital: every search shape, before and after migration 0012.

    .venv/bin/python -m bench.transactions_search                 # 2,000,000 payments, ~10 min
    .venv/bin/python -m bench.transactions_search --payments 300000 --rounds 3   # a quick look

A throwaway PostgreSQL gets a database migrated to 0009 (before this search existed) and, through COPY, one
year of two clinics: a busy one (95% of the rows) and a small one, `--payments` orders with one payment
attempt each (5% with a second, closed attempt), `--refund-share` of them refunded, patients sharing phones'
last 4 digits as real ones do, and cards. Each search shape is the SQL the service runs
(app.services.support.transactions, compiled with its values), a page of 50 and the count behind it, each
timed by EXPLAIN (ANALYZE, BUFFERS) `--rounds` times (median of the execution times, warm cache). Then the
database is migrated to the head (0012 holds the indexes and patients.phone_last4), ANALYZEd, and every shape is
timed again. "Before", the phone shape runs as the front desk's search did (`phone LIKE '%1234'`), since
phone_last4 does not exist yet. The plans of the slowest shapes are printed, before and after.
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, select, text  # noqa: E402
from sqlalchemy.dialects import postgresql  # noqa: E402

from bench.common import BenchPostgresServer, load_average, revision  # noqa: E402

YEAR_S = 365 * 24 * 3600
NOW = datetime(2026, 12, 1, 4, 0, tzinfo=UTC)
PAGE = 50


def _ts(moment: datetime) -> str:
    return moment.isoformat()


class Data:
    """What was loaded, and sample values of each shape to search for."""

    def __init__(self) -> None:
        self.samples: dict[str, str] = {}
        self.busy_clinic = 0
        self.small_clinic = 0


def _clinics(url: str) -> tuple[int, int, dict[int, dict[str, int]]]:
    """The two clinics and their apps, by plain SQL naming only the columns of revision 0009 (the models hold
    the later ones). The secrets are placeholders nobody reads here."""
    engine = create_engine(url)
    accounts: dict[int, dict[str, int]] = {}
    ids = []
    account = text("INSERT INTO merchant_accounts (clinic_id, channel, app_id, mch_id, api_key, sign_type, "
                   "app_private_key, alipay_public_key, api_base_url, refund_window_days, active, created_at) "
                   "VALUES (:clinic_id, :channel, :app_id, :mch_id, :api_key, :sign_type, :app_private_key, "
                   ":alipay_public_key, :api_base_url, 365, true, now()) RETURNING id")
    with engine.begin() as conn:
        for code in ("busy", "small"):
            clinic_id = conn.execute(text(
                "INSERT INTO clinics (code, name, his_base_url, his_key_id, his_secret, created_at) "
                "VALUES (:code, :name, 'https://his.example.test/', :key_id, :secret, now()) RETURNING id"),
                {"code": code, "name": f"{code} hospital", "key_id": f"key-{code}", "secret": "x" * 100}).scalar()
            wechat = conn.execute(account, {
                "clinic_id": clinic_id, "channel": "wechat", "app_id": f"wx{code}", "mch_id": "1900000109",
                "api_key": "x" * 100, "sign_type": "MD5", "app_private_key": None, "alipay_public_key": None,
                "api_base_url": "https://api.mch.weixin.qq.com/"}).scalar()
            alipay = conn.execute(account, {
                "clinic_id": clinic_id, "channel": "alipay", "app_id": f"ali{code}", "mch_id": None,
                "api_key": None, "sign_type": "RSA2", "app_private_key": "x" * 100, "alipay_public_key": "x" * 100,
                "api_base_url": "https://openapi.alipay.com/gateway.do"}).scalar()
            accounts[clinic_id] = {"wechat": wechat, "alipay": alipay}
            ids.append(clinic_id)
    engine.dispose()
    return ids[0], ids[1], accounts


class _Copy:
    """Rows written as COPY text to a temporary file, then sent with COPY (one table at a time: a connection
    carries one COPY at once, and the foreign keys want the orders before their payments)."""

    def __init__(self, table: str, columns: tuple[str, ...]) -> None:
        self.statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
        self.file = tempfile.TemporaryFile("w+", encoding="utf-8")

    def row(self, *values) -> None:
        self.file.write("\t".join("\\N" if v is None else str(v) for v in values))
        self.file.write("\n")

    def send(self, cursor) -> None:
        self.file.seek(0)
        with cursor.copy(self.statement) as copy:
            while chunk := self.file.read(4 << 20):
                copy.write(chunk)
        self.file.close()


def load(url: str, payments: int, refund_share: float, seed: int) -> Data:
    import psycopg

    rnd = random.Random(seed)
    data = Data()
    busy, small, accounts = _clinics(url)
    data.busy_clinic, data.small_clinic = busy, small
    patients = max(1000, payments // 8)
    started = time.monotonic()
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        patient_clinic, phones = [], []
        out = _Copy("patients", ("id", "clinic_id", "name", "phone", "created_at"))
        for pid in range(1, patients + 1):
            clinic = busy if rnd.random() < 0.95 else small
            phone = f"1{rnd.choice('3456789')}{rnd.randrange(10**9):09d}"
            patient_clinic.append(clinic)
            phones.append(phone)
            out.row(pid, clinic, "患者", phone, _ts(NOW - timedelta(days=400)))
        out.send(cur)
        out = _Copy("cards", ("id", "clinic_id", "patient_id", "card_no", "created_at", "verified_at"))
        card_of = {}
        for pid in range(1, patients + 1):
            if pid % 3:  # two in three patients hold a card
                card_of[pid] = f"D{pid:09d}"
                out.row(pid, patient_clinic[pid - 1], pid, card_of[pid], _ts(NOW), _ts(NOW))
        out.send(cur)
        orders = _Copy("orders", ("id", "order_no", "clinic_id", "type", "status", "channel", "amount_fen",
                                       "refunded_fen", "patient_id", "card_no", "description", "expires_at",
                                       "paid_at", "paid_attempt_id", "created_at", "updated_at"))
        attempts = _Copy("payment_attempts", ("id", "order_id", "merchant_account_id", "channel", "out_trade_no",
                                                   "amount_fen", "status", "channel_trade_no", "paid_at", "late",
                                                   "query_count", "created_at", "updated_at"))
        requests_ = _Copy("refund_requests", ("id", "refund_request_no", "clinic_id", "origin", "order_id",
                                                   "amount_fen", "status", "created_at", "updated_at"))
        refunds = _Copy("refunds", ("id", "refund_no", "refund_request_id", "payment_attempt_id", "order_id",
                                         "amount_fen", "status", "channel_refund_id", "query_count", "succeeded_at",
                                         "created_at", "updated_at"))
        attempt_id = refund_id = 0
        for oid in range(1, payments + 1):
            created = NOW - timedelta(seconds=YEAR_S * (payments - oid) / payments + rnd.random())
            pid = rnd.randrange(1, patients + 1)
            clinic = patient_clinic[pid - 1]
            kind = rnd.choices(("booking", "topup", "visit_bill"), (3, 4, 3))[0]
            channel = "wechat" if rnd.random() < 0.6 else "alipay"
            amount = rnd.randrange(100, 100_000)
            order_no = f"{kind[0].upper()}{(created + timedelta(hours=8)).strftime('%Y%m%d%H%M%S')}{oid % 10**6:06d}"
            card = card_of.get(pid) if kind != "booking" else None
            unpaid = rnd.random() < 0.03
            status = "created" if unpaid else {"booking": "redeemed", "topup": "completed",
                                               "visit_bill": "completed"}[kind]
            if rnd.random() < 0.05:  # a first attempt, abandoned and closed
                attempt_id += 1
                attempts.row(attempt_id, oid, accounts[clinic][channel], channel, f"{order_no}P01", amount, "closed",
                             None, None, "f", 3, _ts(created), _ts(created))
                seq = 2
            else:
                seq = 1
            attempt_id += 1
            trade_no = (f"42000{rnd.randrange(10**23):023d}" if channel == "wechat"
                        else f"{created.strftime('%Y%m%d')}2200{rnd.randrange(10**16):016d}")
            paid = None if unpaid else created + timedelta(seconds=20)
            attempts.row(attempt_id, oid, accounts[clinic][channel], channel, f"{order_no}P{seq:02d}", amount,
                         "pending" if unpaid else "paid", None if unpaid else trade_no,
                         _ts(paid) if paid else None, "f", 0, _ts(created), _ts(created))
            refunded = 0
            if not unpaid and rnd.random() < refund_share:
                refund_id += 1
                refunded = amount if rnd.random() < 0.5 else amount // 2
                at = created + timedelta(days=1)
                stamp = (at + timedelta(hours=8)).strftime("%Y%m%d%H%M%S")
                requests_.row(refund_id, f"R{stamp}{refund_id % 10**6:06d}", clinic, "patient", oid, refunded,
                              "succeeded", _ts(at), _ts(at))
                refund_channel_id = (f"5030{rnd.randrange(10**25):025d}" if channel == "wechat" else None)
                refunds.row(refund_id, f"{order_no}P{seq:02d}R01", refund_id, attempt_id, oid, refunded,
                            "succeeded", refund_channel_id, 0, _ts(at), _ts(at), _ts(at))
                if oid >= payments // 2 and "refund_no" not in data.samples:
                    data.samples["refund_no"] = f"{order_no}P{seq:02d}R01"
            orders.row(oid, order_no, clinic, kind, status, channel, amount, refunded, pid, card,
                       "bench", _ts(created + timedelta(minutes=15)), _ts(paid) if paid else None,
                       None if unpaid else attempt_id, _ts(created), _ts(created))
            if oid == payments // 2 and not unpaid:
                data.samples.update(order_no=order_no, out_trade_no=f"{order_no}P{seq:02d}", channel_trade_no=trade_no,
                                    phone_last4=phones[pid - 1][-4:], phone=phones[pid - 1],
                                    card_no=card_of.get(pid) or f"D{3 * (pid // 3 + 1) - 2:09d}",
                                    day=(created + timedelta(hours=8)).date().isoformat())
        for table in (orders, attempts, requests_, refunds):
            table.send(cur)
        for table in ("patients", "cards", "orders", "payment_attempts", "refund_requests", "refunds"):
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        conn.commit()
    print(f"loaded {payments:,} orders, {attempt_id:,} payment attempts, {refund_id:,} refunds, {patients:,} "
          f"patients in {time.monotonic() - started:.0f} s", flush=True)
    return data


def _shapes(data: Data) -> dict[str, dict]:
    day = date.fromisoformat(data.samples["day"])
    return {
        "newest page, no q": {},
        "one day": {"date_from": day, "date_to": day},
        "pending payments (rare status)": {"kind": "payment", "status": "pending"},
        "order number": {"q": data.samples["order_no"]},
        "out_trade_no": {"q": data.samples["out_trade_no"]},
        "channel trade number": {"q": data.samples["channel_trade_no"]},
        "refund number": {"q": data.samples["refund_no"]},
        "card number": {"q": data.samples["card_no"]},
        "phone's last 4": {"q": data.samples["phone_last4"]},
        "whole phone": {"q": data.samples["phone"]},
        "page 199 of the newest (offset 9900)": {"offset": 9900},
    }


def _sql(statement) -> str:
    return str(statement.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))


def _statements(clinic_ids: tuple[int, ...], filters: dict, before: bool) -> tuple[str, str]:
    """(the page, the count) as the service runs them; before 0012 the phone's last 4 as the front desk did."""
    from app.db.models import Order, Patient
    from app.services.support import transactions as t

    filters = dict(filters)
    offset = filters.pop("offset", 0)
    query = t.TransactionQuery(clinic_ids, **filters)
    selects = t.branches(query)
    if before and query.q and query.term().shape == "phone_last4":
        suffix = select(Patient.id).where(Patient.clinic_id.in_(clinic_ids), Patient.phone.like(f"%{query.q}"))
        orders = select(Order.id).where(Order.patient_id.in_(suffix))
        anchors = t._Anchors(orders=orders)
        selects = [b for b in (t._payments(query, anchors), t._refunds(query, anchors)) if b is not None]
    page = t.newest_first(selects, offset + PAGE).offset(offset).limit(PAGE)
    count = " + ".join(f"(SELECT count(*) FROM ({_sql(b.with_only_columns(text('1')).limit(t.MAX_PAGE_DEPTH + 1))})"
                       f" AS c{i})" for i, b in enumerate(selects))
    return _sql(page), f"SELECT {count}"


def _time(conn, sql: str, rounds: int) -> tuple[float, list[str], int]:
    """Median execution time in ms over `rounds`, the last plan, and the rows of the first run."""
    timings, plan = [], []
    rows = len(conn.exec_driver_sql(sql).all())
    for _ in range(rounds):
        plan = [line for (line,) in conn.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")]
        timings.append(float(next(line for line in plan if line.startswith("Execution Time")).split()[2]))
    return statistics.median(timings), plan, rows


def measure(url: str, data: Data, rounds: int, before: bool) -> dict[str, tuple[float, float, int, list[str]]]:
    engine = create_engine(url)
    results = {}
    with engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        for name, filters in _shapes(data).items():
            page_sql, count_sql = _statements((data.busy_clinic,), filters, before)
            page_ms, plan, rows = _time(conn, page_sql, rounds)
            count_ms, _, _ = _time(conn, count_sql, rounds)
            total = conn.exec_driver_sql(count_sql).scalar()
            results[name] = (page_ms, count_ms, min(rows, PAGE) if rows else total, plan)
            print(f"  {'before' if before else 'after '} {name:<38} page {page_ms:9.1f} ms  count {count_ms:9.1f} ms"
                  f"  ({rows} rows, {total} counted)", flush=True)
    engine.dispose()
    return results


def main(argv: list[str] | None = None) -> int:
    from app.db.migrate import upgrade

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--payments", type=int, default=2_000_000, help="orders in the year (default 2,000,000)")
    parser.add_argument("--refund-share", type=float, default=0.05, help="share of paid orders refunded (0.05)")
    parser.add_argument("--rounds", type=int, default=5, help="timed runs of each query (median; default 5)")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--plans", action="store_true", help="print every plan, not only the slowest shapes'")
    args = parser.parse_args(argv)

    print(f"transaction search bench at {revision()}; {load_average()}", flush=True)
    postgres = BenchPostgresServer(fsync=False)
    admin_url = postgres.start()
    try:
        engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text('CREATE DATABASE "hpay_search"'))
            version = conn.execute(text("SHOW server_version")).scalar()
        engine.dispose()
        url = admin_url.rsplit("/", 1)[0] + "/hpay_search"
        upgrade(url, "0009")
        data = load(url, args.payments, args.refund_share, args.seed)
        print(f"PostgreSQL {version} (defaults: shared_buffers 128MB, fsync off: reads only here)", flush=True)
        before = measure(url, data, args.rounds, before=True)
        started = time.monotonic()
        upgrade(url)
        print(f"migrated to the head (0012: indexes, phone_last4 filled in) in {time.monotonic() - started:.0f} s",
              flush=True)
        after = measure(url, data, args.rounds, before=False)
    finally:
        postgres.stop()

    print(f"\n| search ({args.payments:,} orders, busy clinic) | before 0012: page + count | after 0012: page + count "
          "| speed-up |\n|---|---|---|---|")
    for name in before:
        b, a = before[name][0] + before[name][1], after[name][0] + after[name][1]
        print(f"| {name} | {b:,.1f} ms | {a:,.1f} ms | {b / a:,.0f}x |")
    worst = sorted(before, key=lambda name: before[name][0] + before[name][1], reverse=True)
    for name in (worst if args.plans else worst[:3]):
        for label, results in (("before", before), ("after", after)):
            print(f"\n--- {label}: {name} (page query)\n" + "\n".join(results[name][3]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
