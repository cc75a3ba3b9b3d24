"""Slot release (放号): a crowd of patients at the moment a day's appointments open, against reading the catalogue.

Each round releases fresh slots (--slots x --places, 10 x 10 by default: 100 places) of a fresh item and sends
the crowd at them: --users users, each one request, up to --connections at once, all opened first and sent at
the same moment (tests/crowd.py, an asyncio client; wrk's fixed-duration loop does not fit a crowd that arrives
once). Four variants, interleaved in every round, on the same PostgreSQL and Redis:

  floor      GET /healthz by the same crowd, on the gate-on server: what HTTP, gunicorn, Flask and the crowd's
             own client cost with no work at all behind them (no token, no database, no Redis)
  catalogue  GET /api/mp/v1/items by the same crowd (the read-only yardstick), on the gate-on server
  gate on    POST /api/mp/v1/orders through the admission gate (the platform as it runs)
  gate off   the same on a second server with HPAY_BOOKING_GATE_ENABLED=false (the database path alone)

After each booking run: exactly the places there were were sold (201 == places), every other answer is 409
slot_sold_out, no 5xx and no failed connection, and in the database no slot holds more than its capacity and
the orders holding a place equal the places reserved. Per variant: p50, p99 and throughput (requests / the
crowd's wall time), then the ratios against the catalogue and against the gate-off path in the same run. Exits 1
when a check failed.

    .venv/bin/python -m bench.booking_flash [--users 1000] [--connections 1000] [--rounds 5]
"""
from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bench.common import BenchStack, add_server_args, describe_machine, load_average, seed_demo_clinic
from tests.crowd import Call, CrowdRun, run_crowd

SLOT_SPACING = timedelta(minutes=20)
FLOOR, CATALOGUE, GATE_ON, GATE_OFF = "floor", "catalogue", "gate on", "gate off"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the three variants (default 5)")
    parser.add_argument("--users", type=int, default=1000, help="users in the crowd, one request each (default 1000)")
    parser.add_argument("--connections", type=int, default=1000, help="connections at once (default 1000)")
    parser.add_argument("--slots", type=int, default=10, help="slots released per round (default 10)")
    parser.add_argument("--places", type=int, default=10, help="places per slot (default 10)")
    add_server_args(parser)
    # The platform's own server setting (config/gunicorn.conf.py, make run, the tests' PlatformStack): gthread.
    parser.set_defaults(worker_threads=8)
    args = parser.parse_args(argv)
    if args.users <= args.slots * args.places:
        parser.error("--users must exceed the places released (--slots x --places), or nobody is told sold out")
    return args


@dataclass
class Variant:
    label: str
    runs: list[CrowdRun] = field(default_factory=list)

    def p50(self) -> list[float]:
        return [_percentile(run, 50) for run in self.runs]

    def p99(self) -> list[float]:
        return [_percentile(run, 99) for run in self.runs]

    def throughput(self) -> list[float]:
        return [len(run.answers) / run.wall_s for run in self.runs]


def _percentile(run: CrowdRun, pct: int) -> float:
    latencies = sorted(a.latency_s for a in run.answers)
    return latencies[min(len(latencies) - 1, round(pct / 100 * (len(latencies) - 1)))] * 1000


def seed_crowd(rt, users: int) -> tuple[int, list[tuple[str, int]]]:
    """The demo clinic and `users` WeChat users with one patient each: (clinic id, [(token, patient id)])."""
    from sqlalchemy import insert, select

    from app.db.models import Clinic, MerchantAccount, MpUser, Patient
    from app.services.people.mp_auth import MP_AUDIENCE
    from app.services.people.tokens import issue_token

    seed_demo_clinic(rt)
    with rt.db.session() as session:
        clinic = session.scalar(select(Clinic).where(Clinic.code == "demo"))
        account = session.scalar(select(MerchantAccount.id).where(
            MerchantAccount.clinic_id == clinic.id, MerchantAccount.channel == "wechat",
            MerchantAccount.active.is_(True)))
        user_ids = session.scalars(insert(MpUser).returning(MpUser.id, sort_by_parameter_order=True), [
            dict(clinic_id=clinic.id, merchant_account_id=account, channel="wechat", openid=f"obenchcrowd{i:06d}")
            for i in range(users)]).all()
        patient_ids = session.scalars(insert(Patient).returning(Patient.id, sort_by_parameter_order=True), [
            dict(clinic_id=clinic.id, user_id=user_id, name=f"Bench Patient {n}", phone=f"139{n:08d}")
            for n, user_id in enumerate(user_ids)]).all()
        clinic_id = clinic.id
    # A new user's token version is 0 (app.services.people.mp_auth).
    return clinic_id, [(issue_token(rt.settings.SECRET_KEY, MP_AUDIENCE,
                                    {"uid": u, "cid": clinic_id, "ch": "wechat", "ver": 0}), p)
                       for u, p in zip(user_ids, patient_ids, strict=True)]


class Release:
    """Fresh slots of a fresh item (so no patient's earlier booking of the item counts against them), released
    a moment ago, each at a time no earlier slot used."""

    def __init__(self, rt, clinic_id: int, slots: int, places: int) -> None:
        self.rt, self.clinic_id, self.slots, self.places = rt, clinic_id, slots, places
        self.next_start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=2)
        self.made = 0

    def make(self) -> tuple[int, list[int]]:
        from app.db.models import Item, ItemInventory, Slot

        self.made += 1
        with self.rt.db.session() as session:
            item = Item(clinic_id=self.clinic_id, code=f"FLASH{self.made:04d}", name="专家门诊 Flash release",
                        price_fen=9900)
            session.add(item)
            session.flush()
            session.add(ItemInventory(item_id=item.id, channel="wechat", quantity=1_000_000, reserved=0))
            released = datetime.now(UTC) - timedelta(seconds=1)
            slots = []
            for _ in range(self.slots):
                slots.append(Slot(item_id=item.id, starts_at=self.next_start, ends_at=self.next_start + SLOT_SPACING,
                                  capacity=self.places, reserved=0, release_at=released))
                self.next_start += SLOT_SPACING
            session.add_all(slots)
            session.flush()
            return item.id, [slot.id for slot in slots]


@dataclass
class Check:
    places: int
    booked: int
    sold_out: int
    other: dict[str, int]
    reserved: int
    holding: int
    over_capacity: int

    @property
    def ok(self) -> bool:
        return (self.booked == self.places == self.reserved == self.holding and self.over_capacity == 0
                and not self.other)

    def __str__(self) -> str:
        return (f"places {self.places}, 201 {self.booked}, 409 slot_sold_out {self.sold_out}, other {self.other or 0}; "
                f"reserved {self.reserved}, orders holding one {self.holding}, slots over capacity "
                f"{self.over_capacity}: {'OK' if self.ok else 'FAILED'}")


def check_release(rt, run: CrowdRun, slot_ids: list[int], places: int) -> Check:
    from sqlalchemy import func, select

    from app.db.models import Order, Slot
    from app.domain.orders import HOLDS_PLACE

    outcomes = run.outcomes()
    booked, sold_out = outcomes.pop("201", 0), outcomes.pop("409 slot_sold_out", 0)
    with rt.db.session() as session:
        slots = session.scalars(select(Slot).where(Slot.id.in_(slot_ids))).all()
        holding = session.scalar(select(func.count()).select_from(Order).where(
            Order.slot_id.in_(slot_ids), Order.status.in_(HOLDS_PLACE)))
    return Check(places, booked, sold_out, outcomes, sum(s.reserved for s in slots), holding,
                 sum(s.reserved > s.capacity for s in slots))


def server_errors(log_path, limit: int = 40) -> str:
    """What a server logged at ERROR (its unhandled errors with their tracebacks), to explain a failed check."""
    found = [line for line in log_path.read_text(errors="replace").splitlines()
             if '"level": "ERROR"' in line or "Traceback" in line]
    return "server errors:\n" + ("\n".join(found[-limit:]) if found else "(none logged)")


def spread(values: list[float], digits: int = 0) -> str:
    fmt = f"{{:.{digits}f}}"
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def table(variants: list[Variant]) -> str:
    rows = [("variant", "req/s median (min-max)", "p50 ms median (min-max)", "p99 ms median (min-max)", "rounds")]
    rows += [(v.label, spread(v.throughput()), spread(v.p50(), 1), spread(v.p99(), 1), str(len(v.runs)))
             for v in variants]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def ratios(name: str, top: list[float], bottom: list[float]) -> str:
    """Ratio of the medians, and the median of the per-round ratios (neighbouring runs see the same machine)."""
    per_round = [t / b for t, b in zip(top, bottom, strict=True)]
    return (f"{name} = {statistics.median(top) / statistics.median(bottom):.2f}x (ratio of medians); per round "
            f"{statistics.median(per_round):.2f}x median, {min(per_round):.2f}-{max(per_round):.2f}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from app.runtime import Runtime

    with BenchStack(args) as stack:
        rt = Runtime(stack.settings())
        clinic_id, crowd = seed_crowd(rt, args.users)
        release = Release(rt, clinic_id, args.slots, args.places)
        # Every user books at most once a round; the daily cap stays on (its cost is part of the path), above
        # what the rounds add up to.
        common = {"HPAY_BOOKINGS_PER_USER_PER_DAY": str(4 * args.rounds + 10)}
        gate_on = stack.gunicorn("wsgi:app", "gate-on", "/readyz", env=common, platform_config=True)
        gate_off = stack.gunicorn("wsgi:app", "gate-off", "/readyz",
                                  env={**common, "HPAY_BOOKING_GATE_ENABLED": "false"}, platform_config=True)
        places = args.slots * args.places
        print(describe_machine(stack), flush=True)
        print(f"crowd: {args.users} users, one request each, {args.connections} connections at once; each booking "
              f"round: a fresh item with {args.slots} slots x {args.places} places released together "
              f"({places} places); {args.rounds} rounds", flush=True)
        floor, catalogue, on, off = Variant(FLOOR), Variant(CATALOGUE), Variant(GATE_ON), Variant(GATE_OFF)
        headers = [{"Authorization": f"Bearer {token}"} for token, _ in crowd]

        def bookings(item_id: int, slot_ids: list[int]) -> list[Call]:
            return [Call("POST", "/api/mp/v1/orders", headers[n],
                         {"type": "booking", "channel": "wechat", "item_id": item_id,
                          "slot_id": slot_ids[n % len(slot_ids)], "patient_id": patient})
                    for n, (_token, patient) in enumerate(crowd)]

        def book(server, variant: Variant, round_no: int) -> bool:
            item_id, slot_ids = release.make()
            run = run_crowd(server.url, bookings(item_id, slot_ids), args.connections)
            variant.runs.append(run)
            check = check_release(rt, run, slot_ids, places)
            print(f"round {round_no}/{args.rounds} {variant.label:<9} {len(run.answers) / run.wall_s:6.0f} req/s  "
                  f"p50 {_percentile(run, 50):7.1f} ms  p99 {_percentile(run, 99):7.1f} ms  {check}", flush=True)
            if not check.ok:
                print(server_errors(server.process.log_path), flush=True)
            return check.ok

        # Warm-up, not counted: each server's connection pools, the gate built, the imports of the first requests.
        warm = max(10, args.users // 10)
        run_crowd(gate_on.url, [Call("GET", "/api/mp/v1/items", h) for h in headers[:warm]], warm)
        for server in (gate_on, gate_off):
            item_id, slot_ids = release.make()
            run_crowd(server.url, bookings(item_id, slot_ids)[:warm], warm)

        def read(variant: Variant, calls: list[Call], round_no: int) -> bool:
            run = run_crowd(gate_on.url, calls, args.connections)
            variant.runs.append(run)
            failed = {k: n for k, n in run.outcomes().items() if k != "200"}
            print(f"round {round_no}/{args.rounds} {variant.label:<9} {len(run.answers) / run.wall_s:6.0f} req/s  "
                  f"p50 {_percentile(run, 50):7.1f} ms  p99 {_percentile(run, 99):7.1f} ms  "
                  f"{'all 200' if not failed else f'FAILED {failed}'}", flush=True)
            return not failed

        honest = True
        for round_no in range(1, args.rounds + 1):
            honest &= read(floor, [Call("GET", "/healthz", {}) for _ in headers], round_no)
            honest &= read(catalogue, [Call("GET", "/api/mp/v1/items", h) for h in headers], round_no)
            honest &= book(gate_on, on, round_no)
            honest &= book(gate_off, off, round_no)

        print()
        print(table([floor, catalogue, on, off]))
        print(ratios("gate on p99 / catalogue p99", on.p99(), catalogue.p99()) + "   (target <= 1.5x)")
        print(ratios("gate on req/s / gate off req/s", on.throughput(), off.throughput()) + "   (target >= 3x)")
        print(ratios("gate on req/s / catalogue req/s", on.throughput(), catalogue.throughput()))
        print(ratios("gate on req/s / floor req/s", on.throughput(), floor.throughput()))
        print(f"checks (exactly {places} sold a round, the rest slot_sold_out, no 5xx, no oversell): "
              f"{'OK' if honest else 'FAILED'}; {load_average()} at the end")
        rt.close()
    return 0 if honest else 1


if __name__ == "__main__":
    sys.exit(main())
