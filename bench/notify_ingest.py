"""Notification ingestion: requests/s and p99 of WeChat payment notifications at 32 connections.

Three variants behind the same gunicorn settings, measured in turn within one run (a, b, c, a, b,
c, …): (a) a bare Flask endpoint, the framework's ceiling; (b) bench/naive_app.py, the naive
handler; (c) the platform's `wsgi:app`. Every request carries a different validly signed body
whose out_trade_no exists with that amount, so (b) and (c) store every one; afterwards the inbox
rows are counted against the SUCCESS answers.

    .venv/bin/python -m bench.notify_ingest [--rounds 5] [--duration 10]
"""
from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from bench.common import (
    BenchStack,
    Series,
    add_server_args,
    describe_machine,
    ensure_wrk,
    load_average,
    lua_script,
    ratio_line,
    results_table,
    run_wrk,
    seed_demo_clinic,
)

NOTIFY_PATH = "/notify/wechat/demo/pay"
TARGET_RATIO, TARGET_P99_MS = 1.5, 50.0
SHANGHAI = timezone(timedelta(hours=8))


@dataclass
class Variant:
    key: str
    label: str
    app_spec: str
    ready_path: str
    stores: bool


VARIANTS = [
    Variant("a", "a bare Flask", "bench.bare_app:app", "/", stores=False),
    Variant("b", "b naive handler", "bench.naive_app:app", "/", stores=True),
    Variant("c", "c platform", "wsgi:app", "/readyz", stores=True),
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds of a, b, c (default 5)")
    parser.add_argument("--duration", type=float, default=10, help="seconds measured per run (default 10)")
    parser.add_argument("--warmup", type=float, default=2, help="unmeasured seconds before each run (default 2)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--bodies", type=int, default=40_000,
                        help="distinct payment attempts and signed bodies (more than one run sends; default 40000)")
    add_server_args(parser)
    return parser.parse_args(argv)


# --- seeding ---------------------------------------------------------------------------------------

def seed_attempts(rt, count: int):
    """`count` open top-up orders of the demo clinic, one pending WeChat attempt each; returns the wechat
    merchant account and the attempts' (out_trade_no, amount_fen)."""
    from sqlalchemy import insert, select

    from app.db.models import Clinic, MerchantAccount, Order, PaymentAttempt

    seed_demo_clinic(rt)
    now = datetime.now(UTC)
    with rt.db.session() as session:
        clinic = session.scalar(select(Clinic).where(Clinic.code == "demo"))
        account = session.scalar(select(MerchantAccount).where(
            MerchantAccount.clinic_id == clinic.id, MerchantAccount.channel == "wechat",
            MerchantAccount.active.is_(True)))
        session.expunge(account)
        attempts = [(f"BENCHWX{i:012d}", 100 + (i * 37) % 50_000) for i in range(count)]
        order_ids = session.scalars(insert(Order).returning(Order.id, sort_by_parameter_order=True), [
            dict(order_no=f"BENCHT{i:012d}", clinic_id=clinic.id, type="topup", status="created", channel="wechat",
                 amount_fen=amount, refunded_fen=0, card_no="D0000001", description="bench top-up",
                 expires_at=now + timedelta(days=1), created_at=now, updated_at=now)
            for i, (_, amount) in enumerate(attempts)]).all()
        session.execute(insert(PaymentAttempt), [
            dict(order_id=order_id, merchant_account_id=account.id, channel="wechat", out_trade_no=out_trade_no,
                 amount_fen=amount, status="pending", created_at=now, updated_at=now)
            for order_id, (out_trade_no, amount) in zip(order_ids, attempts, strict=True)])
    return account, attempts


def _xml(fields: dict[str, str]) -> str:
    parts = [f"<{k}>{v}</{k}>" if v.isdigit() else f"<{k}><![CDATA[{v}]]></{k}>" for k, v in fields.items()]
    return "<xml>" + "".join(parts) + "</xml>"


def notification_body(account, out_trade_no: str, amount_fen: int, serial: int) -> str:
    """A WeChat Pay v2 payment notification as the channel sends it (PROTOCOLS.md), on one line."""
    from app.channels.wechat_sign import MD5, sign

    fields = {
        "appid": account.app_id, "bank_type": "CMC", "cash_fee": str(amount_fen), "fee_type": "CNY",
        "is_subscribe": "N", "mch_id": account.mch_id, "nonce_str": secrets.token_hex(16),
        "openid": f"obench{serial % 997:08d}", "out_trade_no": out_trade_no, "result_code": "SUCCESS",
        "return_code": "SUCCESS", "time_end": datetime.now(SHANGHAI).strftime("%Y%m%d%H%M%S"),
        "total_fee": str(amount_fen), "trade_type": "JSAPI", "transaction_id": f"4200{serial:024d}",
    }
    if account.sign_type != MD5:
        fields["sign_type"] = account.sign_type
    fields["sign"] = sign(fields, account.api_key, account.sign_type)
    return _xml(fields)


def write_bodies(path: Path, account, attempts: list[tuple[str, int]]) -> None:
    with path.open("w", encoding="utf-8") as out:
        for serial, (out_trade_no, amount) in enumerate(attempts):
            out.write(notification_body(account, out_trade_no, amount, serial) + "\n")


# --- the honesty check -----------------------------------------------------------------------------

def settled_inbox_count(engine) -> int:
    """The inbox row count once requests still in flight after wrk stopped have finished."""
    from sqlalchemy import func, select

    from app.db.models import NotificationInbox

    last = -1
    while True:
        with engine.connect() as conn:
            current = conn.scalar(select(func.count()).select_from(NotificationInbox))
        if current == last:
            return current
        last = current
        time.sleep(0.3)


@dataclass
class StoreCheck:
    """Per variant: every SUCCESS answer is an inbox row (the rows a variant added while wrk ran, counted
    once the requests still in flight when wrk stopped have finished: up to one per connection, per run)."""

    in_flight_bound: int
    answered_success: int = 0
    rows_added: int = 0
    refused: int = 0
    bad_rounds: int = 0

    def add(self, success: int, rows: int, refused: int) -> None:
        self.answered_success += success
        self.rows_added += rows
        self.refused += refused
        self.bad_rounds += not success <= rows <= success + self.in_flight_bound

    @property
    def ok(self) -> bool:
        return self.bad_rounds == 0 and self.refused == 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    ensure_wrk()
    from app.runtime import Runtime

    with BenchStack(args) as stack:
        script = lua_script("notify.lua", stack.workdir)
        bodies_file = stack.workdir / "bodies.txt"
        rt = Runtime(stack.settings())
        started = time.monotonic()
        account, attempts = seed_attempts(rt, args.bodies)
        write_bodies(bodies_file, account, attempts)
        print(f"seeded {len(attempts)} payment attempts and signed bodies in {time.monotonic() - started:.1f}s",
              flush=True)
        servers = {v.key: stack.gunicorn(v.app_spec, v.key, v.ready_path) for v in VARIANTS}
        series = {v.key: Series(v.label) for v in VARIANTS}
        checks = {v.key: StoreCheck(in_flight_bound=2 * args.connections) for v in VARIANTS if v.stores}
        positions = {v.key: 0 for v in VARIANTS}
        print(describe_machine(stack), flush=True)
        print(f"wrk: {args.connections} connections, {args.threads} threads, {args.warmup:g}s warm-up + "
              f"{args.duration:g}s measured per run, {args.rounds} rounds of a, b, c", flush=True)

        for round_no in range(1, args.rounds + 1):
            for v in VARIANTS:
                url = servers[v.key].url + NOTIFY_PATH
                before = settled_inbox_count(rt.db.engine) if v.stores else 0
                runs = []
                for seconds in (args.warmup, args.duration):
                    run = run_wrk(url, script, [str(bodies_file), str(args.threads), str(positions[v.key])],
                                  seconds, args.connections, args.threads)
                    servers[v.key].drain()
                    positions[v.key] = run.furthest_position + 1
                    runs.append(run)
                measured = runs[-1]
                series[v.key].runs.append(measured)
                success = sum(r.counts.get("success", 0) for r in runs)
                refused = sum(n for r in runs for k, n in r.counts.items() if k != "success")
                note = ""
                if v.stores:
                    added = settled_inbox_count(rt.db.engine) - before
                    checks[v.key].add(success, added, refused)
                    note = f", {success} SUCCESS answers -> {added} inbox rows"
                if v.stores and measured.requests > args.bodies:
                    note += f" (WARNING: {measured.requests} requests > {args.bodies} bodies: some repeated)"
                if measured.socket_errors:
                    note += f" (socket errors {measured.errors})"
                print(f"round {round_no}/{args.rounds} {v.label:<16} {measured.rps:7.0f} req/s  "
                      f"p99 {measured.p99_ms:6.1f} ms  ({measured.requests} requests{note})", flush=True)

        print()
        print(results_table([series[v.key] for v in VARIANTS]))
        print(ratio_line("c/b", series["c"], series["b"]))
        print(ratio_line("c/a", series["c"], series["a"]))
        honest = True
        for key, check in checks.items():
            honest &= check.ok
            print(f"stored check {key}: {check.answered_success} SUCCESS answers, {check.rows_added} inbox rows added "
                  f"(requests in flight when wrk stops add up to {check.in_flight_bound} a round), {check.refused} "
                  f"refused: {'OK' if check.ok else 'FAILED: a SUCCESS without its row, or refusals measured'}")
        ratio = statistics.median(series["c"].rps) / statistics.median(series["b"].rps)
        p99 = statistics.median(series["c"].p99)
        met = ratio >= TARGET_RATIO and p99 < TARGET_P99_MS
        print(f"target (c >= {TARGET_RATIO}x b, c p99 < {TARGET_P99_MS:g} ms): {'met' if met else 'NOT met'} "
              f"({ratio:.2f}x, p99 {p99:.1f} ms); {load_average()} at the end")
        rt.close()
    return 0 if honest else 1


if __name__ == "__main__":
    sys.exit(main())
