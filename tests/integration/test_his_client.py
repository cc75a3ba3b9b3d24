"""HttpHisClient against the real sandbox HIS: every method and the mapping of every failure."""
from __future__ import annotations

import secrets
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import requests

from app.his import (
    HisAuthFailed,
    HisBill,
    HisCard,
    HisNotFound,
    HisPatient,
    HisRecord,
    HisRejected,
    HisUnavailable,
    HisWriteResult,
    HttpHisClient,
)
from tests.processes import SandboxProcess
from tests.servers import free_port

SHANGHAI = timezone(timedelta(hours=8))


def _client(proc: SandboxProcess, timeout: float = 5.0, secret: str | None = None) -> HttpHisClient:
    account = proc.merchants()["his"][0]
    return HttpHisClient(f"{proc.url}/his", account["key_id"], secret or account["secret"], timeout=timeout)


def _key() -> str:
    return uuid.uuid4().hex


def _order() -> str:
    return f"IT{uuid.uuid4().hex[:12]}"


def _phone() -> str:
    return "137" + f"{secrets.randbelow(10**8):08d}"


def _new_card(url: str, balance_fen: int = 20_000, phone: str | None = None) -> str:
    resp = requests.post(f"{url}/sandbox/his/cards", json={"name": "集成测试", "phone": phone or _phone(),
                                                            "balance_fen": balance_fen}, timeout=5)
    resp.raise_for_status()
    return resp.json()["card_no"]


def _sandbox_balance(url: str, card_no: str) -> int:
    return requests.get(f"{url}/sandbox/cards/{card_no}", timeout=5).json()["balance_fen"]


@pytest.fixture(scope="module")
def his(sandbox):
    client = _client(sandbox)
    yield client
    client.close()


@pytest.fixture(scope="module")
def faulty():
    """Our own sandbox for faults, so the shared one never sees them."""
    proc = SandboxProcess().start()
    yield proc
    proc.stop()


@pytest.fixture
def faults(faulty):
    def set_faults(**values):
        requests.post(f"{faulty.url}/sandbox/faults", json=values, timeout=5).raise_for_status()
    yield set_faults
    requests.delete(f"{faulty.url}/sandbox/faults", timeout=5).raise_for_status()


def test_patients_and_cards(his, sandbox):
    phone, id_number = _phone(), f"{secrets.randbelow(10**17):017d}x"
    created = his.create_patient("王小明", phone, id_number, idempotency_key=_key())
    assert isinstance(created, HisPatient) and created.id_number == id_number.upper()
    assert phone not in repr(created)
    card = his.open_card(created.id, idempotency_key=_key())
    assert isinstance(card, HisCard) and card.balance_fen == 0 and card.patient.id == created.id
    sibling_card = _new_card(sandbox.url, phone=phone)
    found = his.find_patients(phone)
    assert [p.card_nos for p in found] == [(card.card_no,), (sibling_card,)]
    assert his.find_patients(id_number=id_number.upper()) == [his.get_patient(created.id)]
    assert his.get_patient(created.id).card_nos == (card.card_no,)
    assert his.get_card(card.card_no).patient.phone == phone
    assert his.get_balance(sibling_card) == 20_000


def test_create_patient_with_a_key_is_idempotent(his):
    key, phone = _key(), _phone()
    first = his.create_patient("李四", phone, idempotency_key=key)
    assert his.create_patient("李四", phone, idempotency_key=key) == first
    assert len(his.find_patients(phone)) == 1
    with pytest.raises(HisRejected) as refused:
        his.create_patient("李五", phone, idempotency_key=key)
    assert refused.value.code == "idempotency_conflict" and refused.value.status == 409


def test_unknown_things_raise_his_not_found(his):
    for call in (lambda: his.get_card("NOPE"), lambda: his.get_balance("NOPE"), lambda: his.get_patient("P999999"),
                 lambda: his.get_bill("B99999999"), lambda: his.get_registration("NO-SUCH-ORDER"),
                 lambda: his.recharge("NOPE", 1, _order(), _key())):
        with pytest.raises(HisNotFound) as missing:
            call()
        assert missing.value.code.endswith("_not_found") and missing.value.status == 404


def test_bills_settle_once(his, sandbox):
    card = _new_card(sandbox.url)
    extra = his.create_bill(card, "charge", "额外材料费", 3_300, idempotency_key=_key())
    lab = his.create_bill(card, "lab", "血常规", 2_500)
    assert isinstance(extra, HisBill) and extra.status == "unpaid" and extra.paid_by is None
    assert [b.bill_id for b in his.unpaid_bills(card)] == [extra.bill_id, lab.bill_id]
    order, key = _order(), _key()
    settled = his.settle_bills(card, [extra.bill_id, lab.bill_id], 5_800, order, key)
    assert isinstance(settled, HisWriteResult)
    assert (settled.kind, settled.amount_fen, settled.order_no, settled.replayed) == ("bill_settlement", 5_800, order,
                                                                                       False)
    assert settled.extra["bill_ids"] == [extra.bill_id, lab.bill_id]
    replay = his.settle_bills(card, [extra.bill_id, lab.bill_id], 5_800, order, key)
    assert replay.replayed and replay.record_id == settled.record_id
    assert his.unpaid_bills(card) == [] and his.get_bill(lab.bill_id).paid_by == order
    with pytest.raises(HisRejected) as refused:
        his.settle_bills(card, [lab.bill_id], 2_500, _order(), _key())
    assert refused.value.code == "bill_already_paid" and refused.value.status == 409


def test_bill_paid_at_the_window_is_refused(his, sandbox):
    card = _new_card(sandbox.url)
    bill = his.create_bill(card, "exam", "CT", 30_000)
    requests.post(f"{sandbox.url}/sandbox/his/bills/{bill.bill_id}/pay-elsewhere", timeout=5).raise_for_status()
    with pytest.raises(HisRejected) as refused:
        his.settle_bills(card, [bill.bill_id], 30_000, _order(), _key())
    assert refused.value.code == "bill_already_paid"


def test_recharge_and_refund_hold_and_restore(his, sandbox):
    card = _new_card(sandbox.url, balance_fen=1_000)
    order = _order()
    topped = his.recharge(card, 4_000, order, _key())
    assert (topped.kind, topped.balance_fen, topped.card_no) == ("recharge", 5_000, card)
    assert topped.recorded_at.tzinfo is not None
    with pytest.raises(HisRejected) as refused:
        his.refund_hold(card, 5_001, order, _key())
    assert refused.value.code == "insufficient_balance"
    held = his.refund_hold(card, 4_000, order, _key())
    assert (held.kind, held.balance_fen) == ("refund_hold", 1_000)
    restored = his.refund_restore(card, 4_000, order, _key())
    assert (restored.kind, restored.balance_fen) == ("refund_restore", 5_000)
    assert _sandbox_balance(sandbox.url, card) == 5_000


def test_registration_and_revert(his, sandbox):
    card = _new_card(sandbox.url)
    patient_id = his.get_card(card).patient.id
    order = _order()
    at = datetime(2030, 5, 6, 9, 30, tzinfo=SHANGHAI)
    registered = his.register(order, "CHK01", at, _key(), card_no=card, amount_fen=19_900)
    assert (registered.kind, registered.amount_fen, registered.extra["patient_id"]) == ("registration", 19_900,
                                                                                         patient_id)
    registration = his.get_registration(order)
    assert (registration.status, registration.appointment_at, registration.card_no) == ("active", at, card)
    with pytest.raises(HisRejected) as refused:
        his.register(order, "CHK01", at, _key(), patient_id=patient_id)
    assert refused.value.code == "already_registered"
    reverted = his.revert_registration(order, _key())
    assert (reverted.kind, reverted.amount_fen, reverted.card_no) == ("registration_revert", 19_900, card)
    assert his.get_registration(order).status == "reverted"
    by_patient = his.register(_order(), "CHK02", at, _key(), patient_id=patient_id)
    assert by_patient.card_no is None and by_patient.amount_fen == 0


def test_charge_carries_its_settlement_type(his, sandbox):
    card = _new_card(sandbox.url)
    charged = his.charge(_order(), card, 12_800, "alipay", _key())
    assert (charged.kind, charged.amount_fen, charged.extra) == ("charge", 12_800, {"settlement_type": "alipay"})
    assert charged.balance_fen == 20_000


def test_export_returns_the_days_records(his, sandbox):
    card = _new_card(sandbox.url)
    order = _order()
    written = [his.recharge(card, 100, order, _key()), his.charge(order, card, 0, "wechat", _key())]
    day = written[0].recorded_at.astimezone(SHANGHAI).date()
    mine = [r for r in his.export(day) if r.order_no == order]
    assert mine == [HisRecord(w.idempotency_key, w.kind, card, w.amount_fen, order, w.recorded_at) for w in written]
    assert [r for r in his.export(day + timedelta(days=1)) if r.order_no == order] == []


def test_invalid_request_is_rejected_with_its_code(his):
    with pytest.raises(HisRejected) as refused:
        his.create_bill("D0000001", "food", "x", 100)
    assert refused.value.code == "invalid_request" and refused.value.status == 422


def _his_calls(url: str, path: str) -> int:
    log = requests.get(f"{url}/sandbox/log", params={"limit": 2000}, timeout=5).json()
    return sum(1 for entry in log if entry.get("kind") == "his" and entry.get("path") == path)


def test_wrong_secret_raises_his_auth_failed(sandbox):
    client = _client(sandbox, secret="not-the-secret-of-this-key")
    with pytest.raises(HisAuthFailed):
        client.get_card("D0000001")
    assert issubclass(HisAuthFailed, HisUnavailable)


@pytest.mark.parametrize("secret", ["", "short-secret"])
def test_an_empty_or_short_secret_is_never_used_to_sign(sandbox, secret):
    card = _new_card(sandbox.url)
    client = HttpHisClient(f"{sandbox.url}/his", sandbox.merchants()["his"][0]["key_id"], secret)
    with pytest.raises(HisAuthFailed, match="refusing to sign"):
        client.get_balance(card)
    assert _his_calls(sandbox.url, f"/his/cards/{card}/balance") == 0


def test_calls_are_hmac_signed_and_carry_no_bearer_secret(sandbox, his):
    sent = []
    his._session.hooks["response"].append(lambda response, *args, **kwargs: sent.append(response.request.headers))
    try:
        his.get_balance("D0000001")
    finally:
        his._session.hooks["response"].clear()
    [headers] = sent
    assert "Authorization" not in headers
    assert sandbox.merchants()["his"][0]["secret"] not in " ".join(headers.values())
    assert {"X-HIS-Key-Id", "X-HIS-Timestamp", "X-HIS-Nonce", "X-HIS-Signature"} <= set(headers)


@pytest.fixture
def fail_next(faulty):
    def fail(path: str, count: int):
        requests.post(f"{faulty.url}/sandbox/his/fail-next", json={"path": path, "count": count},
                      timeout=5).raise_for_status()
    yield fail
    requests.delete(f"{faulty.url}/sandbox/his/fail-next", timeout=5).raise_for_status()


def test_a_read_failing_twice_is_tried_again_within_the_call(faulty, fail_next):
    client, card = _client(faulty), _new_card(faulty.url, balance_fen=4_321)
    path = f"/his/cards/{card}/balance"
    fail_next(path, 2)
    assert client.get_balance(card) == 4_321
    assert _his_calls(faulty.url, path) == 3


def test_a_read_gives_up_after_three_tries(faulty, fail_next):
    client, card = _client(faulty), _new_card(faulty.url)
    path = f"/his/cards/{card}/bills"
    fail_next(path, 5)
    with pytest.raises(HisUnavailable):
        client.unpaid_bills(card)
    assert _his_calls(faulty.url, path) == 3


def test_a_write_is_not_retried_by_the_client(faulty, fail_next):
    """Writes are retried by their outbox with the same idempotency key, not inside the call."""
    client, card = _client(faulty), _new_card(faulty.url)
    fail_next("/his/recharges", 1)
    before = _his_calls(faulty.url, "/his/recharges")
    with pytest.raises(HisUnavailable):
        client.recharge(card, 100, _order(), _key())
    assert _his_calls(faulty.url, "/his/recharges") == before + 1
    assert _sandbox_balance(faulty.url, card) == 20_000


def test_a_slow_his_read_stays_within_its_time_budget(faulty, faults):
    client, card = _client(faulty, timeout=0.5), _new_card(faulty.url)
    faults(his_latency_ms=2_000)
    started = time.monotonic()
    with pytest.raises(HisUnavailable):
        client.get_balance(card)
    assert time.monotonic() - started < 0.5 * 1.5 + 0.5


def test_unreachable_his_raises_his_unavailable():
    client = HttpHisClient(f"http://127.0.0.1:{free_port()}/his", "k", "s" * 32, timeout=1)
    with pytest.raises(HisUnavailable):
        client.get_balance("D0000001")


def test_a_404_that_is_not_the_his_verdict_raises_his_unavailable(sandbox):
    account = sandbox.merchants()["his"][0]
    misconfigured = HttpHisClient(f"{sandbox.url}/not-the-his", account["key_id"], account["secret"])
    with pytest.raises(HisUnavailable) as unavailable:
        misconfigured.recharge("D0000001", 100, _order(), _key())
    assert not isinstance(unavailable.value, HisNotFound)


def test_503_raises_his_unavailable_and_writes_nothing(faulty, faults):
    client, card, key = _client(faulty), _new_card(faulty.url), _key()
    faults(his_error_rate=1)
    with pytest.raises(HisUnavailable) as unavailable:
        client.recharge(card, 700, "IT-503", key)
    assert not isinstance(unavailable.value, HisAuthFailed)
    assert _sandbox_balance(faulty.url, card) == 20_000
    faults(his_error_rate=0)
    assert client.recharge(card, 700, "IT-503", key).replayed is False


def test_timeout_raises_his_unavailable_and_the_retry_replays(faulty, faults):
    client, card, key = _client(faulty, timeout=0.5), _new_card(faulty.url), _key()
    faults(his_timeout_rate=1)
    with pytest.raises(HisUnavailable):
        client.recharge(card, 900, "IT-TIMEOUT", key)
    faults(his_timeout_rate=0)
    retry = client.recharge(card, 900, "IT-TIMEOUT", key)
    assert retry.replayed and retry.balance_fen == 20_900
    assert _sandbox_balance(faulty.url, card) == 20_900
    today = retry.recorded_at.astimezone(SHANGHAI).date()
    assert [r.idempotency_key for r in client.export(today)].count(key) == 1

