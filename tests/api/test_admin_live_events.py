"""`GET /api/admin/v1/events/stream` on an in-process app whose streams are short (a 1 s heartbeat, ending after
1 s), fed with events published to the session's Redis as the use cases publish them: each user hears only their
clinics' events of their role's kinds, resumes exactly after the `Last-Event-ID` they send, and a process holds
no more streams than it may."""
from __future__ import annotations

import dataclasses
import json
import secrets

import pytest

from app import live_events
from app.db.models import Clinic
from app.factory import create_app
from tests.api.admin_helpers import ADMIN, label, make_user, sign_in
from tests.api.test_admin_role_matrix import Call, Case

STREAM = f"{ADMIN}/events/stream"
# Every role may open its stream; there is no other clinic's stream to ask for (the user's clinics are the scope).
ROLE_MATRIX_CASES = {"admin_live_events.events_stream": Case(lambda w: Call("GET", "/events/stream"), None)}


@pytest.fixture()
def feed_app(settings):
    app = create_app(dataclasses.replace(settings, LIVE_HEARTBEAT_S=1, LIVE_STREAM_MAX_S=1, LIVE_STREAMS_PER_PROCESS=2,
                                         QUEUE_PREFIX=f"feed{secrets.token_hex(4)}"))
    yield app
    app.extensions["hpay_runtime"].close()


@pytest.fixture()
def feed_client(feed_app):
    return feed_app.test_client()


@pytest.fixture()
def clinics(rt) -> dict[str, tuple[int, str]]:
    """Two clinics of the test's own: {"a": (id, code), "b": (id, code)}."""
    made = {}
    for name in ("a", "b"):
        code = label(f"live{name}")[:32]
        with rt.db.session() as session:
            clinic = Clinic(code=code, name=f"直播诊所 {name}", his_base_url="http://127.0.0.1:1/his/",
                            his_key_id=f"key-{code}", his_secret="not-used-but-long-enough")
            session.add(clinic)
            session.flush()
            made[name] = (clinic.id, code)
    return made


def publish(app, clinic_id: int, type_: str, **data) -> None:
    rt = app.extensions["hpay_runtime"]
    live_events.Publisher(lambda: rt.redis, rt.settings.QUEUE_PREFIX).publish(
        [live_events.LiveEvent(clinic_id, type_, data)])


def parse(body: str) -> list[dict]:
    """The SSE messages of a body: [{event, id, data}] (comment lines kept as {"comment": …})."""
    found = []
    for block in body.split("\n\n"):
        if not block.strip():
            continue
        if block.startswith(":"):
            found.append({"comment": block[1:].strip()})
            continue
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            found.append({"event": fields["event"], "id": fields.get("id"), "data": json.loads(fields["data"])})
    return found


def read_stream(client, headers: dict, last_event_id: str | None = None) -> list[dict]:
    resp = client.get(STREAM, headers={**headers, **({"Last-Event-ID": last_event_id} if last_event_id else {})},
                      buffered=False)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.mimetype == "text/event-stream" and resp.headers["Cache-Control"] == "no-store"
    try:
        return parse(resp.get_data(as_text=True))
    finally:
        resp.close()


def events_of(messages: list[dict]) -> list[tuple[str, str]]:
    return [(m["event"], m["data"].get("order_no")) for m in messages if m.get("event") not in (None, "ready")]


def test_staff_hear_of_paid_bookings_of_their_clinic_only(feed_app, feed_client, rt, clinics):
    (a_id, a_code), (b_id, _b_code) = clinics["a"], clinics["b"]
    staff = sign_in(feed_client, *make_user(rt, "staff", (a_code,)))
    ready = read_stream(feed_client, staff)
    [start] = [m for m in ready if m.get("event") == "ready"]
    assert start["data"]["clinic_codes"] == [a_code] and start["data"]["types"] == ["booking_paid"]

    publish(feed_app, a_id, "booking_paid", order_no="B-A-1", item="洁牙套餐")
    publish(feed_app, b_id, "booking_paid", order_no="B-B-1")
    publish(feed_app, a_id, "discrepancy_found", run_id=7)  # finance's, not the front desk's
    got = read_stream(feed_client, staff, start["id"])
    assert events_of(got) == [("booking_paid", "B-A-1")]
    paid = next(m for m in got if m.get("event") == "booking_paid")
    assert paid["data"]["clinic_code"] == a_code and paid["data"]["item"] == "洁牙套餐" and paid["data"]["at"]


def test_finance_hears_of_money_trouble_and_admins_of_everything(feed_app, feed_client, rt, clinics):
    (a_id, a_code) = clinics["a"]
    finance = sign_in(feed_client, *make_user(rt, "finance", (a_code,)))
    admin = sign_in(feed_client, *make_user(rt, "admin", (a_code,)))
    starts = {who: next(m["id"] for m in read_stream(feed_client, headers) if m.get("event") == "ready")
              for who, headers in (("finance", finance), ("admin", admin))}
    for type_, order_no in (("booking_paid", "B1"), ("late_payment", "B2"), ("discrepancy_found", None),
                            ("his_write_flagged", "B3")):
        publish(feed_app, a_id, type_, **({"order_no": order_no} if order_no else {}))
    assert [e for e, _ in events_of(read_stream(feed_client, finance, starts["finance"]))] == [
        "late_payment", "discrepancy_found", "his_write_flagged"]
    assert [e for e, _ in events_of(read_stream(feed_client, admin, starts["admin"]))] == [
        "booking_paid", "late_payment", "discrepancy_found", "his_write_flagged"]


def test_a_reconnecting_console_resumes_exactly_after_its_last_event_across_clinics(feed_app, feed_client, rt,
                                                                                     clinics):
    (a_id, a_code), (b_id, b_code) = clinics["a"], clinics["b"]
    staff = sign_in(feed_client, *make_user(rt, "staff", (a_code, b_code)))
    start = next(m["id"] for m in read_stream(feed_client, staff) if m.get("event") == "ready")
    for n, clinic in enumerate((a_id, b_id, a_id, b_id), 1):
        publish(feed_app, clinic, "booking_paid", order_no=f"B{n}")
    first = [m for m in read_stream(feed_client, staff, start) if m.get("event") == "booking_paid"]
    # Each clinic's events in the order they happened (one clinic's stream after the other's).
    assert [m["data"]["order_no"] for m in first] == ["B1", "B3", "B2", "B4"]
    # The console saw the first two it was sent, then lost the connection; two more happen meanwhile.
    seen = first[1]["id"]
    publish(feed_app, a_id, "booking_paid", order_no="B5")
    publish(feed_app, b_id, "booking_paid", order_no="B6")
    resumed = [m["data"]["order_no"] for m in read_stream(feed_client, staff, seen)
               if m.get("event") == "booking_paid"]
    assert sorted(resumed) == sorted({m["data"]["order_no"] for m in first[2:]} | {"B5", "B6"})
    assert {m["data"]["order_no"] for m in first[:2]}.isdisjoint(resumed)


@pytest.mark.parametrize("forged", ["garbage", "9" * 3000, "{other}:0-0", "{mine}:0-0,{other}:0-0"])
def test_a_forged_last_event_id_never_opens_another_clinics_stream(feed_app, feed_client, rt, clinics, forged):
    (a_id, a_code), (b_id, _) = clinics["a"], clinics["b"]
    publish(feed_app, b_id, "booking_paid", order_no="SECRET-OF-B")
    publish(feed_app, a_id, "booking_paid", order_no="MINE")
    staff = sign_in(feed_client, *make_user(rt, "staff", (a_code,)))
    got = read_stream(feed_client, staff, forged.format(mine=a_id, other=b_id))
    orders = [order_no for _, order_no in events_of(got)]
    assert "SECRET-OF-B" not in orders
    # Its own stream from the start when the cursor names it (0-0), else only what is new.
    assert orders == (["MINE"] if "{mine}" in forged else [])


def test_an_idle_stream_sends_heartbeats_and_ends_for_the_console_to_reconnect(feed_client, rt, clinics):
    staff = sign_in(feed_client, *make_user(rt, "staff", (clinics["a"][1],)))
    resp = feed_client.get(STREAM, headers=staff, buffered=False)
    body = resp.get_data(as_text=True)
    resp.close()
    assert body.startswith("retry: 3000\n\n")
    comments = [m["comment"] for m in parse(body) if "comment" in m]
    assert "heartbeat" in comments and comments[-1].startswith("this stream ends here")


def test_a_process_holds_only_so_many_streams_and_answers_the_next_one_503(feed_client, rt, clinics):
    staff = sign_in(feed_client, *make_user(rt, "staff", (clinics["a"][1],)))
    held = [feed_client.get(STREAM, headers=staff, buffered=False) for _ in range(2)]
    assert [r.status_code for r in held] == [200, 200]
    refused = feed_client.get(STREAM, headers=staff)
    assert refused.status_code == 503 and refused.get_json()["error"] == "too_many_streams"
    assert int(refused.headers["Retry-After"]) > 0
    held[0].close()  # a console went away (never read its stream): its slot is free again
    again = feed_client.get(STREAM, headers=staff, buffered=False)
    assert again.status_code == 200
    for resp in (again, held[1]):
        resp.close()


def test_the_stream_is_for_signed_in_staff_only(feed_client, client, sandbox, demo_clinic):
    from tests.api.order_helpers import user

    assert feed_client.get(STREAM).status_code == 401
    assert feed_client.get(STREAM, headers={"Authorization": "Bearer not-a-token"}).status_code == 401
    patient = user(client, sandbox, label("sse"))
    assert feed_client.get(STREAM, headers=patient).status_code == 401


def test_with_redis_down_the_stream_is_refused_503(settings, rt, clinics):
    app = create_app(dataclasses.replace(settings, REDIS_URL="redis://127.0.0.1:1/0", RATE_LIMITS_ENABLED=False))
    try:
        client = app.test_client()
        staff = sign_in(client, *make_user(rt, "staff", (clinics["a"][1],)))
        resp = client.get(STREAM, headers=staff)
        assert resp.status_code == 503 and resp.get_json()["error"] == "live_events_unavailable"
    finally:
        app.extensions["hpay_runtime"].close()
