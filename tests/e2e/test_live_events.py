"""Staff's live events end to end on real processes (gunicorn with gthread workers, rq workers, cron): a booking
paid in the mini-program is announced on the stream of its clinic's staff within seconds, never on another clinic's;
a console that reconnects with Last-Event-ID gets what it missed; and open streams never keep gunicorn from
answering everything else."""
from __future__ import annotations

import json
import queue
import secrets
import statistics
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests

from app.db.models import Item, ItemInventory, Slot
from app.services.people.staff_auth import create_user
from mini_program_mock.patient import MiniProgramClient
from tests.api.mp_helpers import channel_user_id
from tests.integration.reconciliation_support import OwnClinic, own_clinic

ADMIN = "/api/admin/v1"
STREAM = f"{ADMIN}/events/stream"


def staff_token(platform, rt, clinic_code: str, role: str = "staff") -> str:
    username, password = f"live-{secrets.token_hex(4)}", secrets.token_hex(12)
    with rt.db.session() as session:
        create_user(session, username, password, role, [clinic_code], created_by="test")
    resp = requests.post(f"{platform.url}{ADMIN}/auth/login", json={"username": username, "password": password},
                         timeout=30)
    assert resp.status_code == 200, resp.text
    return resp.json()["token"]


class Listener:
    """A console's stream, read in a thread: each SSE message as {event, id, data}, in order."""

    def __init__(self, platform, token: str, last_event_id: str | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}", **({"Last-Event-ID": last_event_id} if last_event_id else {})}
        self.response = requests.get(f"{platform.url}{STREAM}", headers=headers, stream=True, timeout=(5, 30))
        assert self.response.status_code == 200, self.response.text
        self.messages: queue.Queue[dict] = queue.Queue()
        self.seen: list[dict] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        fields: dict[str, str] = {}
        try:
            for line in self.response.iter_lines(decode_unicode=True):
                if line:
                    if not line.startswith(":") and ": " in line:
                        name, value = line.split(": ", 1)
                        fields[name] = value
                    continue
                if "event" in fields:
                    self.messages.put({"event": fields["event"], "id": fields.get("id"),
                                       "data": json.loads(fields.get("data") or "{}")})
                fields = {}
        except (requests.RequestException, ValueError, AttributeError):
            pass  # closed by the test

    def next(self, event: str, timeout: float = 30.0, **match) -> dict:
        """The next message of this kind (matching `match` in its data); the ones before it are kept in `seen`."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                message = self.messages.get(timeout=left)
            except queue.Empty:
                break
            self.seen.append(message)
            if message["event"] == event and all(message["data"].get(k) == v for k, v in match.items()):
                return message
        raise AssertionError(f"no {event} {match} within {timeout}s; saw {self.seen}")

    def close(self) -> None:
        self.response.close()


def book_and_pay(platform, sandbox, rt, clinic_id: int, clinic_code: str, channel: str = "wechat") -> str:
    with rt.db.session() as session:
        item = Item(clinic_id=clinic_id, code=f"LE{secrets.token_hex(3)}", name="口腔检查", price_fen=5000)
        session.add(item)
        session.flush()
        session.add(ItemInventory(item_id=item.id, channel=channel, quantity=10, reserved=0))
        starts = (datetime.now(UTC) + timedelta(days=4)).replace(second=0, microsecond=0)
        slot = Slot(item_id=item.id, starts_at=starts, ends_at=starts + timedelta(hours=1), capacity=3, reserved=0)
        session.add(slot)
        session.flush()
        item_id, slot_id = item.id, slot.id
    mp = MiniProgramClient(platform.url, sandbox.url, channel, clinic_code=clinic_code, say=lambda _line: None)
    mp.login(channel_user_id(channel, f"live-{secrets.token_hex(4)}"))
    patient = mp.call("POST", "/patients", json={"name": "周敏", "phone": "13755556666", "relation": "self"})
    order = mp.call("POST", "/orders", json={"type": "booking", "item_id": item_id, "slot_id": slot_id,
                                             "patient_id": patient["id"], "channel": channel})
    mp.pay(order["order_no"])
    return order["order_no"]


@pytest.fixture()
def clinics(rt, sandbox) -> tuple[OwnClinic, OwnClinic]:
    return own_clinic(rt, sandbox.url), own_clinic(rt, sandbox.url)


def test_a_paid_booking_is_announced_to_its_clinics_staff_only_and_a_reconnect_gets_what_it_missed(
        platform, sandbox, rt, clinics):
    ours, theirs = clinics
    desk = Listener(platform, staff_token(platform, rt, ours.code))
    elsewhere = Listener(platform, staff_token(platform, rt, theirs.code))
    try:
        desk.next("ready")
        elsewhere.next("ready")
        started = time.monotonic()
        first = book_and_pay(platform, sandbox, rt, ours.id, ours.code)
        heard = desk.next("booking_paid", order_no=first)
        took = time.monotonic() - started
        assert heard["data"]["clinic_code"] == ours.code and heard["data"]["item"] == "口腔检查"
        assert heard["data"]["amount_fen"] == 5000 and heard["data"]["channel"] == "wechat"
        print(f"paid booking -> staff's stream in {took:.2f} s (booking, payment and notification included)")

        # The other clinic hears of its own booking, paid after ours, and never of ours.
        theirs_paid = book_and_pay(platform, sandbox, rt, theirs.id, theirs.code, "alipay")
        elsewhere.next("booking_paid", order_no=theirs_paid)
        assert all(m["data"].get("order_no") != first for m in elsewhere.seen)
    finally:
        elsewhere.close()
        desk.close()

    # The desk's connection is gone; a booking is paid meanwhile; the console reconnects from its last event.
    missed = book_and_pay(platform, sandbox, rt, ours.id, ours.code, "alipay")
    back = Listener(platform, staff_token(platform, rt, ours.code), last_event_id=heard["id"])
    try:
        assert back.next("booking_paid")["data"]["order_no"] == missed
        assert all(m["data"].get("order_no") != first for m in back.seen)
    finally:
        back.close()


def _timed_get(url: str, headers: dict) -> float:
    started = time.perf_counter()
    resp = requests.get(url, headers=headers, timeout=30)
    assert resp.status_code == 200, resp.text
    return time.perf_counter() - started


def test_open_streams_never_keep_gunicorn_from_answering_other_requests(platform, rt, clinics):
    """Every web process holds at most HPAY_LIVE_STREAMS_PER_PROCESS streams (4, of 8 gthread threads) and answers
    one more 503 with Retry-After; meanwhile other requests are answered as fast as with no stream open."""
    token = staff_token(platform, rt, clinics[0].code)
    headers = {"Authorization": f"Bearer {token}"}
    list_url = f"{platform.url}{ADMIN}/bookings?status=paid&limit=20"
    for _ in range(5):
        _timed_get(list_url, headers)  # warm
    before = [_timed_get(list_url, headers) for _ in range(30)]

    workers, per_process = int(platform.web_env["HPAY_WEB_WORKERS"]), 4
    opened, refused = [], []
    try:
        for _ in range(workers * per_process * 3):  # far more than the processes may hold
            resp = requests.get(f"{platform.url}{STREAM}", headers=headers, stream=True, timeout=(5, 30))
            (opened if resp.status_code == 200 else refused).append(resp)
        assert len(opened) <= workers * per_process and refused
        assert {r.status_code for r in refused} == {503}
        assert all(r.json()["error"] == "too_many_streams" and int(r.headers["Retry-After"]) > 0 for r in refused)
        during = [_timed_get(list_url, headers) for _ in range(30)]
        health = [_timed_get(f"{platform.url}/healthz", {}) for _ in range(30)]
    finally:
        for resp in opened + refused:
            resp.close()
    median_before, median_during = statistics.median(before), statistics.median(during)
    print(f"{len(opened)} streams open, {len(refused)} refused; GET /bookings median {median_before * 1000:.1f} ms "
          f"before, {median_during * 1000:.1f} ms with the streams open (max {max(during) * 1000:.1f} ms); "
          f"/healthz max {max(health) * 1000:.1f} ms")
    assert max(during) < 2.0 and max(health) < 2.0
    assert median_during < max(0.25, 5 * median_before)
