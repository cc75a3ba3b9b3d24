"""Booking flash crowd: many users competing for few places, against a read-only baseline.

The platform's `wsgi:app` on gunicorn (2 sync workers) and PostgreSQL. wrk plays the crowd: each
request is a random one of --users mini-program users (tokens issued with the app's secret for
users inserted directly) booking a random one of --slots fresh slots of --places places each
(POST /api/mp/v1/orders), so the places sell out within moments and the rest of the run is the
crowd being told `slot_sold_out`. The baseline is GET /api/mp/v1/items by the same crowd on the
same server in the same round. After each round: no slot holds more than its capacity, and the
orders holding a place are exactly the places taken.

    .venv/bin/python -m bench.booking_flash [--rounds 5] [--duration 10]
"""
from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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
    server_setting,
)

SLOT_SPACING = timedelta(minutes=30)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds of baseline then flash crowd (default 5)")
    parser.add_argument("--duration", type=float, default=10, help="seconds measured per run (default 10)")
    parser.add_argument("--warmup", type=float, default=2, help="unmeasured seconds before each run (default 2)")
    parser.add_argument("--users", type=int, default=200, help="users in the crowd (default 200)")
    parser.add_argument("--connections", type=int, default=200, help="concurrent wrk connections (default 200)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--slots", type=int, default=20, help="fresh slots per flash run (default 20)")
    parser.add_argument("--places", type=int, default=5, help="places per slot (default 5)")
    add_server_args(parser)
    return parser.parse_args(argv)


@dataclass
class Crowd:
    clinic_id: int
    item_id: int
    users_file: Path


def seed_crowd(rt, users: int, users_file: Path) -> Crowd:
    """The demo clinic, an item with ample WeChat stock, and `users` WeChat users with one patient each;
    their bearer tokens go to `users_file` as `token patient_id` lines."""
    from sqlalchemy import insert, select

    from app.db.models import Clinic, Item, ItemInventory, MerchantAccount, MpUser, Patient
    from app.services.people.mp_auth import MP_AUDIENCE
    from app.services.people.tokens import issue_token

    seed_demo_clinic(rt)
    with rt.db.session() as session:
        clinic = session.scalar(select(Clinic).where(Clinic.code == "demo"))
        account = session.scalar(select(MerchantAccount).where(
            MerchantAccount.clinic_id == clinic.id, MerchantAccount.channel == "wechat",
            MerchantAccount.active.is_(True)))
        item = Item(clinic_id=clinic.id, code="FLASH01", name="限时体检 Flash-sale check-up", price_fen=9900)
        session.add(item)
        session.flush()
        session.add(ItemInventory(item_id=item.id, channel="wechat", quantity=1_000_000, reserved=0))
        user_ids = session.scalars(insert(MpUser).returning(MpUser.id, sort_by_parameter_order=True), [
            dict(clinic_id=clinic.id, merchant_account_id=account.id, channel="wechat", openid=f"obenchcrowd{i:06d}")
            for i in range(users)]).all()
        patient_ids = session.scalars(insert(Patient).returning(Patient.id, sort_by_parameter_order=True), [
            dict(clinic_id=clinic.id, user_id=user_id, name=f"Bench Patient {n}", phone=f"139{n:08d}")
            for n, user_id in enumerate(user_ids)]).all()
        crowd = Crowd(clinic.id, item.id, users_file)
    with users_file.open("w") as out:
        for user_id, patient_id in zip(user_ids, patient_ids, strict=True):
            # A new user's token version is 0 (app.services.people.mp_auth).
            token = issue_token(rt.settings.SECRET_KEY, MP_AUDIENCE, {"uid": user_id, "cid": crowd.clinic_id,
                                                                      "ch": "wechat", "ver": 0})
            out.write(f"{token} {patient_id}\n")
    return crowd


class SlotMaker:
    """Fresh slots of the flash item, each at a time no earlier slot used."""

    def __init__(self, rt, item_id: int, places: int) -> None:
        self.rt, self.item_id, self.places = rt, item_id, places
        self.next_start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=2)

    def make(self, count: int) -> list[int]:
        from app.db.models import Slot

        with self.rt.db.session() as session:
            slots = []
            for _ in range(count):
                slots.append(Slot(item_id=self.item_id, starts_at=self.next_start,
                                  ends_at=self.next_start + SLOT_SPACING, capacity=self.places, reserved=0))
                self.next_start += SLOT_SPACING
            session.add_all(slots)
            session.flush()
            return [slot.id for slot in slots]


@dataclass
class OversellCheck:
    capacity: int
    reserved: int
    orders: int
    over_capacity_slots: int
    mismatched_slots: int
    selling_ms: float

    @property
    def ok(self) -> bool:
        return self.over_capacity_slots == 0 and self.mismatched_slots == 0 and self.orders == self.reserved


def check_slots(rt, slot_ids: list[int]) -> OversellCheck:
    """Per slot: places reserved within capacity, and equal to the orders holding a place in it."""
    from sqlalchemy import func, select

    from app.db.models import Order, Slot
    from app.domain.orders import HOLDS_PLACE

    with rt.db.session() as session:
        held = dict(session.execute(select(Order.slot_id, func.count()).where(
            Order.slot_id.in_(slot_ids), Order.status.in_(HOLDS_PLACE)).group_by(Order.slot_id)).all())
        slots = session.scalars(select(Slot).where(Slot.id.in_(slot_ids))).all()
        first, last = session.execute(select(func.min(Order.created_at), func.max(Order.created_at))
                                      .where(Order.slot_id.in_(slot_ids))).one()
    return OversellCheck(
        capacity=sum(s.capacity for s in slots), reserved=sum(s.reserved for s in slots),
        orders=sum(held.values()), over_capacity_slots=sum(s.reserved > s.capacity for s in slots),
        mismatched_slots=sum(s.reserved != held.get(s.id, 0) for s in slots),
        selling_ms=(last - first).total_seconds() * 1000 if first else 0.0)


def check_inventory(rt, item_id: int) -> tuple[int, int]:
    """The item's WeChat stock reserved, and the orders of the item holding a place: equal when nothing leaked."""
    from sqlalchemy import func, select

    from app.db.models import ItemInventory, Order
    from app.domain.orders import HOLDS_PLACE

    with rt.db.session() as session:
        reserved = session.scalar(select(ItemInventory.reserved).where(ItemInventory.item_id == item_id,
                                                                       ItemInventory.channel == "wechat"))
        orders = session.scalar(select(func.count()).select_from(Order).where(
            Order.item_id == item_id, Order.status.in_(HOLDS_PLACE)))
    return reserved, orders


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    ensure_wrk()
    from app.runtime import Runtime

    with BenchStack(args) as stack:
        script = lua_script("booking.lua", stack.workdir)
        rt = Runtime(stack.settings())
        crowd = seed_crowd(rt, args.users, stack.workdir / "users.txt")
        slots = SlotMaker(rt, crowd.item_id, args.places)
        server = stack.gunicorn("wsgi:app", "platform", "/readyz")
        baseline, flash = Series("GET /items (read-only)"), Series("POST /orders flash crowd")
        print(describe_machine(stack), flush=True)
        print(f"wrk: {args.connections} connections, {args.threads} threads, {args.users} users; each flash run: "
              f"{args.slots} fresh slots x {args.places} places; {args.warmup:g}s warm-up + {args.duration:g}s "
              f"measured per run, {args.rounds} rounds", flush=True)
        honest = True

        def crowd_run(mode: str, seconds: float, slot_ids: list[int]):
            run = run_wrk(server.url, script, [str(crowd.users_file), mode, str(crowd.item_id),
                                               ",".join(map(str, slot_ids))], seconds, args.connections, args.threads)
            server.drain()
            return run

        for round_no in range(1, args.rounds + 1):
            crowd_run("items", args.warmup, [])
            measured = crowd_run("items", args.duration, [])
            baseline.runs.append(measured)
            print(f"round {round_no}/{args.rounds} {baseline.label:<24} {measured.rps:6.0f} req/s  "
                  f"p99 {measured.p99_ms:7.1f} ms  {measured.counts}", flush=True)

            crowd_run("book", args.warmup, slots.make(args.slots))
            fresh = slots.make(args.slots)
            measured = crowd_run("book", args.duration, fresh)
            flash.runs.append(measured)
            check = check_slots(rt, fresh)
            booked = measured.counts.get("booked", 0)
            unexpected = {k: n for k, n in measured.counts.items() if k not in ("booked", "sold_out")}
            # Requests in flight when wrk stopped may have booked without wrk seeing the 201.
            ok = check.ok and booked <= check.orders <= booked + args.connections and not unexpected
            honest &= ok
            print(f"round {round_no}/{args.rounds} {flash.label:<24} {measured.rps:6.0f} req/s  "
                  f"p99 {measured.p99_ms:7.1f} ms  {measured.counts}; places {check.capacity}, reserved "
                  f"{check.reserved}, orders holding one {check.orders}, sold in {check.selling_ms:.0f} ms, "
                  f"slots over capacity {check.over_capacity_slots}, mismatched {check.mismatched_slots}: "
                  f"{'OK' if ok else 'FAILED'}", flush=True)

        reserved, orders = check_inventory(rt, crowd.item_id)
        honest &= reserved == orders
        print()
        print(results_table([baseline, flash]))
        print(ratio_line("flash/baseline", flash, baseline))
        print(f"oversell check: {'OK' if honest else 'FAILED'}; item stock reserved {reserved}, orders holding a "
              f"place {orders}, across all runs (warm-ups included); {load_average()} at the end")
        queueing_ms = args.connections / statistics.median(flash.rps) * 1000
        print(f"{args.connections} connections on {server_setting(stack)}: a request mostly waits its turn, so "
              f"latency is about connections / (req/s) = {queueing_ms:.0f} ms for the flash runs")
        rt.close()
    return 0 if honest else 1


if __name__ == "__main__":
    sys.exit(main())
