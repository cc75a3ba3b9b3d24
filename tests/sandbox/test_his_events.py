"""The sandbox HIS announcing bills to the platform: signed, retried, never holding up the bill.

A sandbox of its own (started with SANDBOX_HIS_EVENTS_URL, as `make run` wires it) announces to a small
local HTTP server standing in for the platform's `/api/his/v1/events`; the test checks each signature
from the documented scheme, not from the sandbox's code.
"""
from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from tests.his_auth import his_headers, sandbox_his_auth
from tests.processes import SandboxProcess
from tests.sandbox.message_helpers import log_entries
from tests.sandbox.wechat_helpers import wait_until

EVENTS_PATH = "/api/his/v1/events?clinic=demo"


class EventsReceiver:
    """Records every POST (path, headers, raw body) and answers with `statuses` in turn, then 200."""

    def __init__(self):
        self.requests: list[dict] = []
        self.statuses: list[int] = []
        self.delay_s = 0.0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's hook name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                time.sleep(receiver.delay_s)
                with receiver._lock:
                    receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                payload = json.dumps({"ok": status == 200}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def reset(self, statuses: list[int] | None = None, delay_s: float = 0.0) -> None:
        with self._lock:
            self.requests.clear()
            self.statuses = list(statuses or [])
            self.delay_s = delay_s

    def of_bill(self, bill_id: str) -> list[dict]:
        with self._lock:
            return [r for r in self.requests if json.loads(r["body"])["bill_id"] == bill_id]

    def wait_for(self, bill_id: str, count: int, timeout: float = 15.0) -> list[dict]:
        return wait_until(lambda: self.of_bill(bill_id) if len(self.of_bill(bill_id)) >= count else None, timeout)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def receiver():
    rec = EventsReceiver()
    yield rec
    rec.close()


@pytest.fixture(scope="module")
def his_world(receiver):
    proc = SandboxProcess()
    proc.env["SANDBOX_HIS_EVENTS_URL"] = receiver.url + EVENTS_PATH
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def events(his_world, receiver):
    receiver.reset()
    yield receiver
    requests.post(f"{his_world.url}/sandbox/his/events", json={"url": receiver.url + EVENTS_PATH}, timeout=5)


def _open_bill(proc, card_no: str = "D0000004", title: str = "心电图检查", amount_fen: int = 4_000) -> dict:
    resp = requests.post(f"{proc.url}/sandbox/his/bills",
                         json={"card_no": card_no, "kind": "exam", "title": title, "amount_fen": amount_fen}, timeout=5)
    assert resp.status_code == 201, resp.text
    return resp.json()


def _assert_signed_by_the_his(proc, request: dict) -> None:
    """Check the announcement from the documented scheme with the HIS key of GET /sandbox/merchants."""
    account = proc.merchants()["his"][0]
    headers = request["headers"]
    assert headers["X-HIS-Key-Id"] == account["key_id"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{16,64}", headers["X-HIS-Nonce"])
    assert abs(int(headers["X-HIS-Timestamp"]) - time.time()) < 60
    expected = his_headers(account["key_id"], account["secret"], "POST", request["path"], request["body"],
                           timestamp=headers["X-HIS-Timestamp"], nonce=headers["X-HIS-Nonce"])
    assert headers["X-HIS-Signature"] == expected["X-HIS-Signature"]
    assert headers["Content-Type"] == "application/json"


def test_the_events_url_comes_from_the_environment(his_world, receiver):
    config = requests.get(f"{his_world.url}/sandbox/his/events", timeout=5).json()
    assert config == {"url": receiver.url + EVENTS_PATH, "key_id": his_world.merchants()["his"][0]["key_id"]}


def test_a_new_bill_is_announced_signed_as_the_his_signs(his_world, events):
    bill = _open_bill(his_world)
    [announced] = events.wait_for(bill["bill_id"], 1)
    assert json.loads(announced["body"]) == {"type": "bill_created", "card_no": "D0000004", "bill_id": bill["bill_id"]}
    assert announced["path"] == EVENTS_PATH
    _assert_signed_by_the_his(his_world, announced)
    # A signature over another path (the query left out) would not match: the query is part of it.
    account = his_world.merchants()["his"][0]
    h = announced["headers"]
    without_query = his_headers(account["key_id"], account["secret"], "POST", EVENTS_PATH.split("?")[0],
                                announced["body"], timestamp=h["X-HIS-Timestamp"], nonce=h["X-HIS-Nonce"])
    assert without_query["X-HIS-Signature"] != h["X-HIS-Signature"]


def test_an_announcement_is_retried_until_the_platform_answers_2xx(his_world, events):
    events.reset(statuses=[500, 503])
    bill = _open_bill(his_world)
    tries = events.wait_for(bill["bill_id"], 3)
    time.sleep(0.3)
    assert len(events.of_bill(bill["bill_id"])) == 3, "a 200 ends the retries"
    for attempt in tries:
        _assert_signed_by_the_his(his_world, attempt)
    assert len({t["headers"]["X-HIS-Nonce"] for t in tries}) == 3, "each retry is signed afresh"
    logged = [e for e in log_entries(his_world.url, "notify_attempt") if e["ref"] == bill["bill_id"]]
    assert [(e["channel"], e["attempt"], e["http_status"], e["acked"]) for e in logged] == [
        ("his", 1, 500, False), ("his", 2, 503, False), ("his", 3, 200, True)]


def test_opening_a_bill_never_waits_for_the_announcement(his_world, events):
    events.reset(delay_s=3.0)
    started = time.monotonic()
    bill = _open_bill(his_world)
    assert time.monotonic() - started < 1.5
    events.wait_for(bill["bill_id"], 1, timeout=10)


def test_a_cancelled_bill_is_announced_and_can_no_longer_be_paid(his_world, events):
    bill = _open_bill(his_world, card_no="D0000005", amount_fen=1_200)
    events.wait_for(bill["bill_id"], 1)
    cancelled = requests.post(f"{his_world.url}/sandbox/his/bills/{bill['bill_id']}/cancel", timeout=5)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["cancelled_at"]
    announced = events.wait_for(bill["bill_id"], 2)[1]
    assert json.loads(announced["body"]) == {"type": "bill_cancelled", "card_no": "D0000005",
                                             "bill_id": bill["bill_id"]}
    _assert_signed_by_the_his(his_world, announced)

    auth = sandbox_his_auth(his_world)
    unpaid = requests.get(f"{his_world.url}/his/cards/D0000005/bills", auth=auth, timeout=5).json()["bills"]
    assert bill["bill_id"] not in {b["bill_id"] for b in unpaid}
    settle = requests.post(f"{his_world.url}/his/bill-settlements", auth=auth, timeout=5, json={
        "card_no": "D0000005", "bill_ids": [bill["bill_id"]], "amount_fen": 1_200, "order_no": "T-CANCELLED",
        "idempotency_key": f"settle-{bill['bill_id']}"})
    assert settle.status_code == 409 and settle.json()["error"] == "bill_cancelled"
    again = requests.post(f"{his_world.url}/sandbox/his/bills/{bill['bill_id']}/cancel", timeout=5)
    assert again.status_code == 409 and again.json()["error"] == "bill_cancelled"
    window = requests.post(f"{his_world.url}/sandbox/his/bills/{bill['bill_id']}/pay-elsewhere", timeout=5)
    assert window.status_code == 409 and window.json()["error"] == "bill_cancelled"
    time.sleep(0.3)
    assert len(events.of_bill(bill["bill_id"])) == 2, "a refused cancellation announces nothing"


def test_a_paid_bill_cannot_be_cancelled(his_world, events):
    bill = _open_bill(his_world)
    requests.post(f"{his_world.url}/sandbox/his/bills/{bill['bill_id']}/pay-elsewhere", timeout=5).raise_for_status()
    refused = requests.post(f"{his_world.url}/sandbox/his/bills/{bill['bill_id']}/cancel", timeout=5)
    assert refused.status_code == 409 and refused.json()["error"] == "bill_already_paid"
    assert requests.post(f"{his_world.url}/sandbox/his/bills/B99999999/cancel", timeout=5).status_code == 404


def test_without_an_events_url_nothing_is_announced(his_world, events):
    cleared = requests.delete(f"{his_world.url}/sandbox/his/events", timeout=5)
    assert cleared.json() == {"url": None, "key_id": None}
    bill = _open_bill(his_world)
    time.sleep(0.5)
    assert events.of_bill(bill["bill_id"]) == []
    assert any(e["bill_id"] == bill["bill_id"] for e in log_entries(his_world.url, "his_event_not_announced"))


def test_events_configuration_is_validated_and_can_name_another_his_key(his_world, events):
    url = f"{his_world.url}/sandbox/his/events"
    for body in ({"url": "ftp://example.com/events"}, {"url": "not a url"}, {},
                 {"url": events.url + EVENTS_PATH, "key_id": "his-unknown"}):
        refused = requests.post(url, json=body, timeout=5)
        assert refused.status_code == 422 and refused.json()["error"] == "invalid_request", body
    other = requests.post(f"{his_world.url}/sandbox/merchants", json={"channel": "his"}, timeout=5).json()
    configured = requests.post(url, json={"url": events.url + EVENTS_PATH, "key_id": other["key_id"]}, timeout=5)
    assert configured.json() == {"url": events.url + EVENTS_PATH, "key_id": other["key_id"]}
    bill = _open_bill(his_world)
    [announced] = events.wait_for(bill["bill_id"], 1)
    h = announced["headers"]
    assert h["X-HIS-Key-Id"] == other["key_id"]
    expected = his_headers(other["key_id"], other["secret"], "POST", announced["path"], announced["body"],
                           timestamp=h["X-HIS-Timestamp"], nonce=h["X-HIS-Nonce"])
    assert expected["X-HIS-Signature"] == h["X-HIS-Signature"]


def test_a_data_directory_from_before_gets_templates_cancellable_bills_and_announcements(receiver, tmp_path):
    """Merchants without templates, the old his_bills table and the old outbound table are upgraded in place."""
    db = sqlite3.connect(tmp_path / "sandbox.db")
    db.executescript("""
        CREATE TABLE merchants (channel TEXT NOT NULL, account_id TEXT NOT NULL, data TEXT NOT NULL,
                                PRIMARY KEY (channel, account_id));
        CREATE TABLE his_bills (bill_id TEXT PRIMARY KEY, seq INTEGER NOT NULL UNIQUE,
            card_no TEXT NOT NULL REFERENCES his_cards(card_no), kind TEXT NOT NULL, title TEXT NOT NULL,
            amount_fen INTEGER NOT NULL CHECK (amount_fen > 0),
            status TEXT NOT NULL DEFAULT 'unpaid' CHECK (status IN ('unpaid', 'paid')),
            paid_by TEXT, paid_at TEXT, created_at TEXT NOT NULL);
        CREATE TABLE outbound_notifications (id INTEGER PRIMARY KEY AUTOINCREMENT, channel TEXT NOT NULL,
            kind TEXT NOT NULL, ref TEXT NOT NULL, url TEXT NOT NULL, body TEXT NOT NULL, content_type TEXT NOT NULL,
            schedule TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at REAL NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending', last_reply TEXT);
    """)
    old_wechat = {"clinic_code": "demo", "appid": "wx00000000000000aa", "app_secret": "s" * 32,
                  "mch_id": "1900000001", "api_key": "k" * 32, "sign_type": "MD5"}
    db.execute("INSERT INTO merchants VALUES ('wechat', ?, ?)", (old_wechat["appid"], json.dumps(old_wechat)))
    db.execute("INSERT INTO merchants VALUES ('his', 'his-old', ?)",
               (json.dumps({"key_id": "his-old", "secret": "x" * 64}),))
    db.execute("INSERT INTO his_bills(bill_id, seq, card_no, kind, title, amount_fen, created_at)"
               " VALUES ('B00000001', 1, 'D0000001', 'lab', '血常规', 2500, '2024-07-09T10:00:00+08:00')")
    db.commit()
    db.close()

    proc = SandboxProcess(data_dir=tmp_path)
    proc.env["SANDBOX_HIS_EVENTS_URL"] = receiver.url + EVENTS_PATH
    proc.start()
    try:
        [wechat] = proc.merchants()["wechat"]
        assert wechat["appid"] == old_wechat["appid"] and len(wechat["message_templates"]) == 3
        assert wechat["pages"]
        receiver.reset()
        cancelled = requests.post(f"{proc.url}/sandbox/his/bills/B00000001/cancel", timeout=5)
        assert cancelled.status_code == 200 and cancelled.json()["title"] == "血常规"
        [announced] = receiver.wait_for("B00000001", 1)
        assert announced["headers"]["X-HIS-Key-Id"] == "his-old"
        assert json.loads(announced["body"])["type"] == "bill_cancelled"
    finally:
        proc.stop()
