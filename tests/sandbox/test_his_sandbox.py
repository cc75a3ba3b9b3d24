"""The sandbox HIS over raw HTTP: auth, idempotency, concurrency, export, faults, restart."""
from __future__ import annotations

import json
import secrets
import threading
import time
import uuid

import pytest
import requests

from tests.his_auth import HisHmac, his_headers, sandbox_his_auth
from tests.processes import SandboxProcess


def _headers(proc: SandboxProcess) -> HisHmac:
    """Signs each request with the sandbox's HIS key (HMAC, a fresh nonce every time)."""
    return sandbox_his_auth(proc)


def _phone() -> str:
    return "139" + f"{secrets.randbelow(10**8):08d}"


def _key(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex}"


def _new_card(url: str, balance_fen: int = 10_000, phone: str | None = None) -> dict:
    resp = requests.post(f"{url}/sandbox/his/cards",
                         json={"name": "测试患者", "phone": phone or _phone(), "balance_fen": balance_fen}, timeout=5)
    assert resp.status_code == 201, resp.text
    return resp.json()


def _balance(url: str, card_no: str) -> int:
    return requests.get(f"{url}/sandbox/cards/{card_no}", timeout=5).json()["balance_fen"]


def _records(url: str, day: str) -> list[dict]:
    resp = requests.get(f"{url}/sandbox/his/records", params={"date": day}, timeout=5)
    assert resp.status_code == 200, resp.text
    return resp.json()


def _records_with_key(url: str, day: str, key: str) -> list[dict]:
    return [r for r in _records(url, day) if r["idempotency_key"] == key]


def _today(url: str) -> str:
    return requests.get(f"{url}/sandbox/clock", timeout=5).json()["now"][:10]


@pytest.fixture(scope="module")
def his(sandbox):
    return sandbox.url, _headers(sandbox)


@pytest.fixture(scope="module")
def faulty():
    """A sandbox of our own for faults and clock shifts, so the shared one never sees them."""
    proc = SandboxProcess().start()
    yield proc
    proc.stop()


@pytest.fixture
def faulty_his(faulty):
    yield faulty.url, _headers(faulty)
    requests.delete(f"{faulty.url}/sandbox/faults", timeout=5)
    requests.post(f"{faulty.url}/sandbox/clock", json={"offset_s": 0}, timeout=5)


def test_calls_without_a_valid_signature_are_401_and_write_nothing(his):
    url, auth = his
    card = _new_card(url)
    body = {"card_no": card["card_no"], "amount_fen": 100, "order_no": "T-AUTH", "idempotency_key": _key("auth")}
    raw = json.dumps(body).encode()
    path, now = "/his/recharges", int(time.time())

    def signed(key_id=auth.key_id, secret=auth.secret, signed_path=path, signed_body=raw, **kwargs):
        return his_headers(key_id, secret, "POST", signed_path, signed_body, **kwargs)

    bad = {
        "unsigned": {},
        "bearer secret only (the old scheme)": {"X-HIS-Client": auth.key_id, "Authorization": f"Bearer {auth.secret}"},
        "wrong secret": signed(secret="not-the-secret-at-all"),
        "unknown key": signed(key_id="his-unknown"),
        "signed for another path": signed(signed_path="/his/refund-holds"),
        "signed for another body": signed(signed_body=raw.replace(b"100", b"900")),
        "stale timestamp": signed(timestamp=now - 301),
        "timestamp 60 s ahead": signed(timestamp=now + 60),
        "superscript timestamp": {**signed(), "X-HIS-Timestamp": "\u00b2"},
        "no nonce": {k: v for k, v in signed().items() if k != "X-HIS-Nonce"},
    }
    for name, candidate in bad.items():
        resp = requests.post(f"{url}{path}", data=raw, headers={"Content-Type": "application/json", **{
            k: v.encode("utf-8") if isinstance(v, str) else v for k, v in candidate.items()}}, timeout=5)
        assert resp.status_code == 401, (name, resp.text)
        assert resp.json()["error"] == "unauthorized", name
    assert requests.get(f"{url}/his/cards/{card['card_no']}", timeout=5).status_code == 401
    assert _balance(url, card["card_no"]) == 10_000
    assert _records_with_key(url, _today(url), body["idempotency_key"]) == []


def test_a_signed_request_sent_again_with_its_nonce_is_refused_as_a_replay(his):
    url, auth = his
    card = _new_card(url)
    body = {"card_no": card["card_no"], "amount_fen": 100, "order_no": "T-REPLAY", "idempotency_key": _key("rp")}
    raw = json.dumps(body).encode()
    headers = {"Content-Type": "application/json",
               **his_headers(auth.key_id, auth.secret, "POST", "/his/recharges", raw)}
    first = requests.post(f"{url}/his/recharges", data=raw, headers=headers, timeout=5)
    assert first.status_code == 201, first.text

    replay = requests.post(f"{url}/his/recharges", data=raw, headers=headers, timeout=5)

    assert replay.status_code == 401 and replay.json()["error"] == "replayed_request"
    assert _balance(url, card["card_no"]) == 10_100
    # Signed again with a new nonce, the same write is the HIS's ordinary idempotent replay.
    again = requests.post(f"{url}/his/recharges", json=body, auth=auth, timeout=5)
    assert again.status_code == 200 and _balance(url, card["card_no"]) == 10_100


def test_card_lookup_and_patients_sharing_a_phone(his):
    url, headers = his
    phone = _phone()
    first, second = _new_card(url, phone=phone), _new_card(url, phone=phone)
    card = requests.get(f"{url}/his/cards/{first['card_no']}", auth=headers, timeout=5)
    assert card.status_code == 200
    assert card.json()["patient"]["phone"] == phone
    found = requests.post(f"{url}/his/patients/search", json={"phone": phone}, auth=headers, timeout=5).json()
    assert [p["card_nos"] for p in found["patients"]] == [[first["card_no"]], [second["card_no"]]]
    nothing_to_match = requests.post(f"{url}/his/patients/search", json={}, auth=headers, timeout=5)
    assert nothing_to_match.status_code == 422
    missing = requests.get(f"{url}/his/cards/X404", auth=headers, timeout=5)
    assert missing.status_code == 404 and missing.json()["error"] == "card_not_found"


def test_log_masks_phone_and_id_numbers(his):
    url, headers = his
    phone, id_number = _phone(), f"{secrets.randbelow(10**17):017d}X"
    created = requests.post(f"{url}/his/patients", json={"name": "脱敏", "phone": phone, "id_number": id_number},
                            auth=headers, timeout=5)
    assert created.status_code == 201
    requests.post(f"{url}/his/patients/search", json={"phone": phone}, auth=headers, timeout=5).raise_for_status()
    _new_card(url, phone=phone)
    logged = requests.get(f"{url}/sandbox/log", params={"limit": 2000}, timeout=5).text
    assert phone not in logged and id_number not in logged
    assert logged.count(f"{phone[:3]}****{phone[-4:]}") >= 3
    assert f"{id_number[:3]}***********{id_number[-4:]}" in logged


def test_repeat_with_the_same_key_returns_the_first_result_and_writes_once(his):
    url, headers = his
    card = _new_card(url)
    body = {"card_no": card["card_no"], "amount_fen": 2_345, "order_no": "T-REPEAT", "idempotency_key": _key("rep")}
    first = requests.post(f"{url}/his/recharges", json=body, auth=headers, timeout=5)
    again = requests.post(f"{url}/his/recharges", json=body, auth=headers, timeout=5)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert first.json()["balance_fen"] == 12_345
    assert _balance(url, card["card_no"]) == 12_345
    assert len(_records_with_key(url, first.json()["recorded_at"][:10], body["idempotency_key"])) == 1


def test_same_key_with_another_body_is_409_idempotency_conflict(his):
    url, headers = his
    card = _new_card(url)
    key = _key("conflict")
    body = {"card_no": card["card_no"], "amount_fen": 500, "order_no": "T-CONFLICT", "idempotency_key": key}
    assert requests.post(f"{url}/his/recharges", json=body, auth=headers, timeout=5).status_code == 201
    other_amount = requests.post(f"{url}/his/recharges", json={**body, "amount_fen": 501}, auth=headers, timeout=5)
    other_kind = requests.post(f"{url}/his/refund-holds", json=body, auth=headers, timeout=5)
    for resp in (other_amount, other_kind):
        assert resp.status_code == 409
        assert resp.json()["error"] == "idempotency_conflict"
    assert _balance(url, card["card_no"]) == 10_500


def test_ten_concurrent_duplicates_write_once(his):
    url, headers = his
    card = _new_card(url)
    body = {"card_no": card["card_no"], "amount_fen": 700, "order_no": "T-CONCURRENT", "idempotency_key": _key("cc")}
    barrier = threading.Barrier(10)
    answers: list[requests.Response] = []
    lock = threading.Lock()

    def send():
        barrier.wait()
        resp = requests.post(f"{url}/his/recharges", json=body, auth=headers, timeout=30)
        with lock:
            answers.append(resp)

    threads = [threading.Thread(target=send) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.status_code for r in answers) == [200] * 9 + [201]
    assert len({r.json()["record_id"] for r in answers}) == 1
    assert _balance(url, card["card_no"]) == 10_700
    day = answers[0].json()["recorded_at"][:10]
    assert len(_records_with_key(url, day, body["idempotency_key"])) == 1


def test_export_lists_exactly_the_writes_of_the_day(his):
    url, headers = his
    card = _new_card(url)["card_no"]
    bill = requests.post(f"{url}/sandbox/his/bills", json={"card_no": card, "kind": "lab", "title": "血常规",
                                                            "amount_fen": 2_500}, timeout=5).json()
    order = f"T-EXPORT-{uuid.uuid4().hex[:8]}"
    writes = [
        ("recharges", {"card_no": card, "amount_fen": 1_000, "order_no": order}),
        ("bill-settlements", {"card_no": card, "bill_ids": [bill["bill_id"]], "amount_fen": 2_500, "order_no": order}),
        ("registrations", {"card_no": card, "item_code": "CHK01", "appointment_at": "2030-01-02T09:30:00+08:00",
                           "order_no": order, "amount_fen": 19_900}),
        ("registrations/" + order + "/revert", {}),
        ("charges", {"card_no": card, "amount_fen": 19_900, "settlement_type": "wechat", "order_no": order}),
        ("refund-holds", {"card_no": card, "amount_fen": 300, "order_no": order}),
        ("refund-restores", {"card_no": card, "amount_fen": 300, "order_no": order}),
    ]
    results = []
    for path, body in writes:
        resp = requests.post(f"{url}/his/{path}", json={**body, "idempotency_key": _key("exp")}, auth=headers,
                             timeout=5)
        assert resp.status_code == 201, resp.text
        results.append(resp.json())
    expected = [{k: r[k] for k in ("idempotency_key", "kind", "card_no", "amount_fen", "order_no", "recorded_at")}
                for r in results]
    assert [r["kind"] for r in expected] == ["recharge", "bill_settlement", "registration", "registration_revert",
                                            "charge", "refund_hold", "refund_restore"]
    day = results[0]["recorded_at"][:10]
    export = requests.get(f"{url}/his/export", params={"date": day}, auth=headers, timeout=5)
    assert export.status_code == 200
    exported_mine = [r for r in export.json()["records"] if r["order_no"] == order]
    assert exported_mine == expected
    assert [r for r in _records(url, day) if r["order_no"] == order] == expected
    assert results[4]["extra"] == {"settlement_type": "wechat"}


def test_bill_settlement_refusals(his):
    url, headers = his
    card = _new_card(url)["card_no"]
    bills = [requests.post(f"{url}/sandbox/his/bills", json={"card_no": card, "kind": kind, "title": kind,
                                                            "amount_fen": fen}, timeout=5).json()
             for kind, fen in (("exam", 8_000), ("prescription", 1_200))]
    ids = [b["bill_id"] for b in bills]
    body = {"card_no": card, "bill_ids": ids, "order_no": "T-BILLS"}
    short = requests.post(f"{url}/his/bill-settlements", json={**body, "amount_fen": 9_000,
                                                               "idempotency_key": _key("b")}, auth=headers, timeout=5)
    assert short.status_code == 422 and short.json()["error"] == "amount_mismatch"
    requests.post(f"{url}/sandbox/his/bills/{ids[1]}/pay-elsewhere", timeout=5).raise_for_status()
    refused = requests.post(f"{url}/his/bill-settlements", json={**body, "amount_fen": 9_200,
                                                                 "idempotency_key": _key("b")}, auth=headers, timeout=5)
    assert refused.status_code == 409 and refused.json()["error"] == "bill_already_paid"
    unpaid = requests.get(f"{url}/his/cards/{card}/bills", auth=headers, timeout=5).json()["bills"]
    assert [b["bill_id"] for b in unpaid] == [ids[0]]
    paid = requests.post(f"{url}/his/bill-settlements", json={**body, "bill_ids": [ids[0]], "amount_fen": 8_000,
                                                              "idempotency_key": _key("b")}, auth=headers, timeout=5)
    assert paid.status_code == 201
    assert requests.get(f"{url}/his/bills/{ids[0]}", auth=headers, timeout=5).json()["paid_by"] == "T-BILLS"


def test_refund_hold_cannot_overdraw_and_restore_cannot_exceed_the_hold(his):
    url, headers = his
    card = _new_card(url, balance_fen=1_000)["card_no"]
    hold = {"card_no": card, "order_no": "T-REFUND"}
    too_much = requests.post(f"{url}/his/refund-holds",
                             json={**hold, "amount_fen": 1_001, "idempotency_key": _key("h")}, auth=headers, timeout=5)
    assert too_much.status_code == 409 and too_much.json()["error"] == "insufficient_balance"
    held = requests.post(f"{url}/his/refund-holds", json={**hold, "amount_fen": 600, "idempotency_key": _key("h")},
                         auth=headers, timeout=5)
    assert held.status_code == 201 and held.json()["balance_fen"] == 400
    over = requests.post(f"{url}/his/refund-restores", json={**hold, "amount_fen": 601, "idempotency_key": _key("r")},
                         auth=headers, timeout=5)
    assert over.status_code == 409 and over.json()["error"] == "restore_exceeds_hold"
    back = requests.post(f"{url}/his/refund-restores", json={**hold, "amount_fen": 600, "idempotency_key": _key("r")},
                         auth=headers, timeout=5)
    assert back.status_code == 201 and _balance(url, card) == 1_000


def test_registration_is_active_once_and_reverted_once(his):
    url, headers = his
    card = _new_card(url)
    order = f"T-REG-{uuid.uuid4().hex[:8]}"
    body = {"patient_id": card["patient"]["id"], "item_code": "CHK01", "order_no": order,
            "appointment_at": "2030-01-02T01:30:00Z"}
    first = requests.post(f"{url}/his/registrations", json={**body, "idempotency_key": _key("reg")},
                          auth=headers, timeout=5)
    assert first.status_code == 201
    assert first.json()["extra"]["appointment_at"] == "2030-01-02T09:30:00+08:00"
    twice = requests.post(f"{url}/his/registrations", json={**body, "idempotency_key": _key("reg")},
                          auth=headers, timeout=5)
    assert twice.status_code == 409 and twice.json()["error"] == "already_registered"
    revert = f"{url}/his/registrations/{order}/revert"
    assert requests.post(revert, json={"idempotency_key": _key("rev")}, auth=headers, timeout=5).status_code == 201
    again = requests.post(revert, json={"idempotency_key": _key("rev")}, auth=headers, timeout=5)
    assert again.status_code == 409 and again.json()["error"] == "registration_not_active"
    state = requests.get(f"{url}/his/registrations/{order}", auth=headers, timeout=5).json()
    assert state["status"] == "reverted" and state["patient_id"] == card["patient"]["id"]


@pytest.mark.parametrize("path, body, status", [
    ("recharges", "not json", 400),
    ("recharges", {"card_no": "D0000001", "amount_fen": "100", "order_no": "x", "idempotency_key": "k"}, 422),
    ("recharges", {"card_no": "D0000001", "amount_fen": 0, "order_no": "x", "idempotency_key": "k"}, 422),
    ("recharges", {"card_no": "D0000001", "amount_fen": 1, "order_no": "x"}, 422),
    ("bill-settlements", {"card_no": "D0000001", "bill_ids": "B1", "amount_fen": 1, "order_no": "x",
                          "idempotency_key": "k"}, 422),
    ("registrations", {"card_no": "D0000001", "item_code": "X", "appointment_at": "2030-01-02 09:00",
                       "order_no": "x", "idempotency_key": "k"}, 422),
    ("registrations", {"item_code": "X", "appointment_at": "2030-01-02T09:00:00+08:00", "order_no": "x",
                       "idempotency_key": "k"}, 422),
    ("patients", {"name": "x", "phone": "12345"}, 422),
    ("patients", {"name": "x", "phone": "13800000000", "id_number": "abc"}, 422),
    ("cards/D0000001/bills", {"kind": "food", "title": "x", "amount_fen": 1}, 422),
    ("recharges", {"card_no": "NOPE", "amount_fen": 1, "order_no": "x", "idempotency_key": _key("nf")}, 404),
])
def test_bad_input_gets_a_clear_4xx(his, path, body, status):
    url, headers = his
    if isinstance(body, str):
        resp = requests.post(f"{url}/his/{path}", data=body, headers={"Content-Type": "application/json"}, auth=headers,
                             timeout=5)
    else:
        resp = requests.post(f"{url}/his/{path}", json=body, auth=headers, timeout=5)
    assert resp.status_code == status
    assert resp.json()["error"]


def test_open_card_needs_no_body(his):
    url, headers = his
    patient = _new_card(url)["patient"]
    resp = requests.post(f"{url}/his/patients/{patient['id']}/cards", auth=headers, timeout=5)
    assert resp.status_code == 201
    assert resp.json()["balance_fen"] == 0 and resp.json()["patient"]["card_nos"][-1] == resp.json()["card_no"]


@pytest.mark.parametrize("path, body, status", [
    ("his/cards", {"phone": "13800000000"}, 422),
    ("his/cards", {"name": "x", "phone": "13800000000", "balance_fen": -1}, 422),
    ("his/bills", {"card_no": "NOPE", "kind": "lab", "title": "x", "amount_fen": 1}, 404),
    ("his/bills", {"card_no": "D0000001", "kind": "lab", "title": "x", "amount_fen": 0}, 422),
    ("his/bills/B99999999/pay-elsewhere", {}, 404),
])
def test_control_routes_refuse_bad_input(his, path, body, status):
    url, _ = his
    resp = requests.post(f"{url}/sandbox/{path}", json=body, timeout=5)
    assert resp.status_code == status and resp.json()["error"]
    assert requests.get(f"{url}/sandbox/cards/NOPE", timeout=5).status_code == 404


def test_export_needs_a_valid_date(his):
    url, headers = his
    for bad in ("", "2024-13-01", "20240709"):
        resp = requests.get(f"{url}/his/export", params={"date": bad}, auth=headers, timeout=5)
        assert resp.status_code == 422
    assert requests.get(f"{url}/sandbox/his/records", params={"date": "x"}, timeout=5).status_code == 422


def test_export_uses_the_shanghai_date_of_the_sandbox_clock(faulty_his):
    url, headers = faulty_his
    today = _today(url)
    requests.post(f"{url}/sandbox/clock", json={"offset_s": 3 * 86_400}, timeout=5).raise_for_status()
    later = _today(url)
    card = _new_card(url)["card_no"]
    key = _key("clock")
    resp = requests.post(f"{url}/his/recharges", json={"card_no": card, "amount_fen": 1, "order_no": "T-CLOCK",
                                                       "idempotency_key": key}, auth=headers, timeout=5)
    assert resp.json()["recorded_at"].startswith(later) and resp.json()["recorded_at"].endswith("+08:00")
    assert _records_with_key(url, later, key) and not _records_with_key(url, today, key)


def test_error_fault_answers_503_without_writing(faulty_his):
    url, headers = faulty_his
    card = _new_card(url)["card_no"]
    body = {"card_no": card, "amount_fen": 100, "order_no": "T-503", "idempotency_key": _key("503")}
    requests.post(f"{url}/sandbox/faults", json={"his_error_rate": 1}, timeout=5).raise_for_status()
    resp = requests.post(f"{url}/his/recharges", json=body, auth=headers, timeout=5)
    assert resp.status_code == 503 and resp.json()["error"] == "his_unavailable"
    assert requests.get(f"{url}/his/cards/{card}", auth=headers, timeout=5).status_code == 503
    assert _balance(url, card) == 10_000
    assert _records_with_key(url, _today(url), body["idempotency_key"]) == []
    requests.delete(f"{url}/sandbox/faults", timeout=5).raise_for_status()
    assert requests.post(f"{url}/his/recharges", json=body, auth=headers, timeout=5).status_code == 201


def test_timeout_fault_writes_then_answers_too_late(faulty_his):
    url, headers = faulty_his
    card = _new_card(url)["card_no"]
    body = {"card_no": card, "amount_fen": 100, "order_no": "T-TIMEOUT", "idempotency_key": _key("to")}
    requests.post(f"{url}/sandbox/faults", json={"his_timeout_rate": 1}, timeout=5).raise_for_status()
    with pytest.raises(requests.ReadTimeout):
        requests.post(f"{url}/his/recharges", json=body, auth=headers, timeout=1)
    assert _balance(url, card) == 10_100
    assert len(_records_with_key(url, _today(url), body["idempotency_key"])) == 1
    requests.delete(f"{url}/sandbox/faults", timeout=5).raise_for_status()
    retry = requests.post(f"{url}/his/recharges", json=body, auth=headers, timeout=5)
    assert retry.status_code == 200 and retry.json()["balance_fen"] == 10_100
    assert _balance(url, card) == 10_100


def test_a_counted_fault_fails_exactly_the_next_calls_to_one_path(faulty_his):
    url, auth = faulty_his
    card = _new_card(url)["card_no"]
    balance, other = f"/his/cards/{card}/balance", f"/his/cards/{card}"
    for bad in ({"path": "/sandbox/log", "count": 1}, {"path": balance, "count": 101}, {"path": balance, "count": "2"}):
        assert requests.post(f"{url}/sandbox/his/fail-next", json=bad, timeout=5).status_code == 422
    try:
        requests.post(f"{url}/sandbox/his/fail-next", json={"path": balance, "count": 2}, timeout=5).raise_for_status()
        assert requests.get(f"{url}{other}", auth=auth, timeout=5).status_code == 200
        assert [requests.get(f"{url}{balance}", auth=auth, timeout=5).status_code for _ in range(3)] == [503, 503, 200]
    finally:
        requests.delete(f"{url}/sandbox/his/fail-next", timeout=5).raise_for_status()


def test_latency_fault_delays_every_his_call(faulty_his):
    url, headers = faulty_his
    requests.post(f"{url}/sandbox/faults", json={"his_latency_ms": 400}, timeout=5).raise_for_status()
    started = time.monotonic()
    assert requests.get(f"{url}/his/cards/D0000004", auth=headers, timeout=5).status_code == 200
    assert time.monotonic() - started >= 0.4


def test_first_start_seeds_the_demo_cards_and_bills():
    proc = SandboxProcess().start()
    try:
        headers = _headers(proc)
        for n in range(1, 11):
            card = requests.get(f"{proc.url}/his/cards/D{n:07d}", auth=headers, timeout=5).json()
            assert card["balance_fen"] == 50_000 and card["patient"]["id"] == f"P{n:06d}"
        shared = requests.post(f"{proc.url}/his/patients/search", json={"phone": "13800000001"}, auth=headers,
                               timeout=5).json()["patients"]
        assert [p["card_nos"] for p in shared] == [["D0000001"], ["D0000002"]]
        bills = requests.get(f"{proc.url}/his/cards/D0000001/bills", auth=headers, timeout=5).json()["bills"]
        assert [(b["bill_id"], b["kind"], b["amount_fen"]) for b in bills] == [
            ("B00000001", "exam", 12_000), ("B00000002", "lab", 2_500), ("B00000003", "prescription", 3_680)]
    finally:
        proc.stop()


def test_restart_keeps_records_balances_and_idempotency():
    first = SandboxProcess().start()
    try:
        headers = _headers(first)
        body = {"card_no": "D0000005", "amount_fen": 1_500, "order_no": "T-RESTART", "idempotency_key": _key("rs")}
        written = requests.post(f"{first.url}/his/recharges", json=body, auth=headers, timeout=5)
        assert written.status_code == 201
    finally:
        first.stop()
    second = SandboxProcess(data_dir=first.data_dir).start()
    try:
        assert _headers(second) == headers
        assert _balance(second.url, "D0000005") == 51_500
        day = written.json()["recorded_at"][:10]
        assert len(_records_with_key(second.url, day, body["idempotency_key"])) == 1
        replay = requests.post(f"{second.url}/his/recharges", json=body, auth=headers, timeout=5)
        assert replay.status_code == 200 and replay.json() == written.json()
        assert requests.get(f"{second.url}/his/cards/D0000011", auth=headers, timeout=5).status_code == 404
    finally:
        second.stop()
