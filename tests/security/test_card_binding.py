"""Attacks on card binding: taking over someone's card, enumerating card numbers, guessing codes, old
name-only bindings, flooding a phone with texts, and hostile card numbers. Real PostgreSQL, Redis and the
sandbox HIS and SMS provider over HTTP."""
from __future__ import annotations

import dataclasses
import hashlib
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
import requests
from sqlalchemy import select, update

from app.db.models import Card, CardVerification
from tests.api.card_helpers import MP, ask_code, bind, code_in, his_card, send_code, texts, unique_phone
from tests.api.mp_helpers import bearer, login


def _user(client, sandbox, label: str) -> dict:
    return bearer(login(client, sandbox, "wechat", openid=f"card-attack-{label}-{secrets.token_hex(4)}")["token"])


def _patient(client, headers: dict, name: str, phone: str, id_number: str | None = None) -> dict:
    body = {"name": name, "phone": phone, **({"id_number": id_number} if id_number else {})}
    resp = client.post(f"{MP}/patients", json=body, headers=headers)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def _wrong_codes(right: str | None, count: int) -> list[str]:
    codes = [f"{n:06d}" for n in range(100000, 100000 + count + 1) if f"{n:06d}" != right]
    return codes[:count]


def _refund(client, headers: dict, card_no: str, amount_fen: int = 100):
    return client.post(f"{MP}/cards/{card_no}/refunds", json={"amount_fen": amount_fen}, headers=headers)


def _masked(phone: str) -> str:
    return f"{phone[:3]}****{phone[-4:]}"


def _code_asked(client, sandbox, label: str, **card_fields) -> tuple[dict, dict, dict, str]:
    """A new HIS card, a user whose patient has its holder's name and phone, and the code texted after that
    patient asked: (card, headers, patient, code)."""
    card = his_card(sandbox, **card_fields)
    headers = _user(client, sandbox, label)
    patient = _patient(client, headers, card["name"], card["phone"])
    asked = ask_code(client, headers, patient["id"], card["card_no"])
    assert asked.status_code == 202, asked.get_json()
    return card, headers, patient, code_in(texts(sandbox, card["phone"])[-1])


@pytest.fixture()
def app_with(settings):
    """A platform app of its own with some settings changed (limits, code lifetime), on the same database."""
    from app.factory import create_app

    made = []

    def make(**overrides):
        app = create_app(dataclasses.replace(settings, **overrides))
        made.append(app)
        return app.test_client()

    yield make
    for app in made:
        app.extensions["hpay_runtime"].close()


# --- taking over a stranger's card -------------------------------------------------------------------

def test_a_stranger_with_the_holders_name_and_card_number_gets_no_code_and_no_card(client, sandbox, demo_clinic):
    victim = his_card(sandbox, balance_fen=30_000)
    attacker = _user(client, sandbox, "stranger")
    impostor = _patient(client, attacker, victim["name"], unique_phone())

    asked = ask_code(client, attacker, impostor["id"], victim["card_no"])
    assert asked.status_code == 202
    assert asked.get_json()["sent_to"] == impostor["phone"]  # the attacker's own phone, masked
    assert texts(sandbox, victim["phone"]) == []  # the holder is not bothered
    # The attacker can only guess: every guess is wrong, and after the last try nothing is checked at all.
    for tries_left, guess in zip((4, 3, 2, 1, 0), _wrong_codes(None, 5), strict=True):
        resp = send_code(client, attacker, impostor["id"], victim["card_no"], guess)
        assert resp.status_code == 422 and resp.get_json()["error"] == "sms_code_invalid"
        assert resp.get_json()["errors"] == {"tries_left": tries_left}
    more = send_code(client, attacker, impostor["id"], victim["card_no"], "999999")
    assert more.status_code == 422 and more.get_json()["error"] == "sms_code_tries_exceeded"

    for resp in (client.get(f"{MP}/cards/{victim['card_no']}", headers=attacker),
                 client.get(f"{MP}/cards/{victim['card_no']}/bills", headers=attacker),
                 _refund(client, attacker, victim["card_no"])):
        assert resp.status_code == 404 and resp.get_json()["error"] == "card_not_found"
    assert client.get(f"{MP}/patients", headers=attacker).get_json()[0]["cards"] == []


def test_a_stranger_who_also_knows_the_phone_never_sees_the_code(client, sandbox, demo_clinic):
    """Name and phone match, so the holder's phone gets a code; the stranger, without that phone, can only guess."""
    victim = his_card(sandbox)
    attacker = _user(client, sandbox, "knows-phone")
    impostor = _patient(client, attacker, victim["name"], victim["phone"])
    asked = ask_code(client, attacker, impostor["id"], victim["card_no"])
    assert asked.status_code == 202 and asked.get_json()["sent_to"] == _masked(victim["phone"])
    [text] = texts(sandbox, victim["phone"])
    assert code_in(text) not in asked.get_data(as_text=True)

    for guess in _wrong_codes(code_in(text), 5):
        assert send_code(client, attacker, impostor["id"], victim["card_no"], guess).status_code == 422
    # Even the right code is refused once five tries are spent.
    late = send_code(client, attacker, impostor["id"], victim["card_no"], code_in(text))
    assert late.status_code == 422 and late.get_json()["error"] == "sms_code_tries_exceeded"
    assert client.get(f"{MP}/cards/{victim['card_no']}", headers=attacker).status_code == 404


def test_parallel_guesses_get_five_tries_in_all(app, client, sandbox, demo_clinic):
    victim, attacker, impostor, right = _code_asked(client, sandbox, "parallel")

    def guess(code: str) -> str:
        resp = send_code(app.test_client(), attacker, impostor["id"], victim["card_no"], code)
        return resp.get_json()["error"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(guess, _wrong_codes(right, 16)))
    assert answers.count("sms_code_invalid") == 5
    assert answers.count("sms_code_tries_exceeded") == 11
    assert send_code(client, attacker, impostor["id"], victim["card_no"], right).get_json()["error"] \
        == "sms_code_tries_exceeded"


def test_an_expired_code_is_refused(app_with, sandbox, demo_clinic):
    client = app_with(SMS_CODE_TTL_S=1)
    card, headers, patient, code = _code_asked(client, sandbox, "expired")
    time.sleep(1.5)
    late = send_code(client, headers, patient["id"], card["card_no"], code)
    assert late.status_code == 422 and late.get_json()["error"] == "sms_code_expired"
    assert client.get(f"{MP}/cards/{card['card_no']}", headers=headers).status_code == 404


def test_a_code_is_spent_by_its_use_and_belongs_to_one_patient(client, sandbox, rt, demo_clinic):
    card, headers, patient, code = _code_asked(client, sandbox, "used-code")
    twin = _patient(client, headers, card["name"], card["phone"])  # another profile of the same person

    elsewhere = send_code(client, headers, twin["id"], card["card_no"], code)
    assert elsewhere.status_code == 422 and elsewhere.get_json()["error"] == "sms_code_expired"
    assert send_code(client, headers, patient["id"], card["card_no"], code).status_code == 201

    # Were the binding ever unverified again, the spent code would not verify it a second time.
    with rt.db.session() as session:
        session.execute(update(Card).where(Card.patient_id == patient["id"]).values(verified_at=None))
    again = send_code(client, headers, patient["id"], card["card_no"], code)
    assert again.status_code == 422 and again.get_json()["error"] == "sms_code_expired"
    assert client.get(f"{MP}/cards/{card['card_no']}", headers=headers).status_code == 403


def test_a_new_code_supersedes_the_unused_one(client, sandbox, demo_clinic):
    card, headers, patient, first = _code_asked(client, sandbox, "supersede")
    time.sleep(1.1)  # the test settings allow one text per phone a second
    assert ask_code(client, headers, patient["id"], card["card_no"]).status_code == 202
    second = code_in(texts(sandbox, card["phone"])[-1])
    if first != second:
        old = send_code(client, headers, patient["id"], card["card_no"], first)
        assert old.status_code == 422 and old.get_json()["error"] == "sms_code_invalid"
    assert send_code(client, headers, patient["id"], card["card_no"], second).status_code == 201


def test_codes_are_kept_only_as_keyed_hashes(client, sandbox, rt, demo_clinic):
    card, headers, patient, code = _code_asked(client, sandbox, "hashed")
    with rt.db.session() as session:
        row = session.scalar(select(CardVerification).where(CardVerification.patient_id == patient["id"]))
        stored = [str(getattr(row, column.key)) for column in CardVerification.__table__.columns]
    assert not any(code in value for value in stored)
    assert len(row.code_hash) == 64 and row.sent_to == _masked(card["phone"])
    # Keyed: the plain SHA-256 of the code (or of it with the patient and card) is not what is stored.
    for message in (code, f"{patient['id']}\n{card['card_no']}\n{code}"):
        assert hashlib.sha256(message.encode()).hexdigest() != row.code_hash


# --- enumeration ---------------------------------------------------------------------------------------

def test_unknown_mismatched_and_matching_cards_answer_alike(app_with, sandbox, demo_clinic):
    client = app_with(SMS_PHONE_INTERVAL_S=0, SMS_PHONE_DAILY_MAX=0)
    phone = unique_phone()
    name = f"查卡{secrets.token_hex(3)}"
    headers = _user(client, sandbox, "enumerate")
    patient = _patient(client, headers, name, phone, id_number="110101199001010011")
    cards = {
        "match": his_card(sandbox, name=name, phone=phone)["card_no"],
        "unknown": "Z" + secrets.token_hex(4).upper(),
        "other name": his_card(sandbox, name=f"别人{secrets.token_hex(3)}", phone=phone)["card_no"],
        "other phone, no ID": his_card(sandbox, name=name)["card_no"],
        "other phone and ID": his_card(sandbox, name=name, id_number="110101199001010038")["card_no"],
    }
    asked = {what: ask_code(client, headers, patient["id"], card_no) for what, card_no in cards.items()}
    for what, resp in asked.items():
        assert resp.status_code == 202, what
        assert resp.get_json() == {"verification": "sms", "sent_to": _masked(phone), "expires_in": 300}, what
        assert sorted(resp.headers.keys()) == sorted(asked["match"].headers.keys()), what
    wrong = {what: send_code(client, headers, patient["id"], card_no, "000000") for what, card_no in cards.items()}
    for what, resp in wrong.items():
        assert (resp.status_code, resp.get_json()) == (wrong["match"].status_code, wrong["match"].get_json()), what
    assert wrong["match"].get_json()["error"] == "sms_code_invalid"
    assert len(texts(sandbox, phone)) == 1  # only the real holder's phone got a text


# --- bindings made under the old name-only rule ----------------------------------------------------------

def test_a_card_bound_before_verification_is_refused_until_verified(client, sandbox, rt, demo_clinic):
    card = his_card(sandbox, balance_fen=8_000)
    headers = _user(client, sandbox, "legacy")
    patient = _patient(client, headers, card["name"], card["phone"])
    assert bind(client, sandbox, headers, patient["id"], card["card_no"], card["phone"]).status_code == 201
    with rt.db.session() as session:  # as migration 0006 leaves every earlier binding
        session.execute(update(Card).where(Card.patient_id == patient["id"]).values(verified_at=None))

    listed = client.get(f"{MP}/patients", headers=headers).get_json()
    assert listed[0]["cards"] == [{"card_no": card["card_no"], "patient_id": patient["id"], "verified": False}]
    for resp in (client.get(f"{MP}/cards/{card['card_no']}", headers=headers),
                 client.get(f"{MP}/cards/{card['card_no']}/bills", headers=headers),
                 _refund(client, headers, card["card_no"]),
                 client.post(f"{MP}/orders", headers=headers, json={"type": "topup", "card_no": card["card_no"],
                                                                     "amount_fen": 1000, "channel": "wechat"})):
        assert resp.status_code == 403 and resp.get_json()["error"] == "card_verification_required"
        assert "8000" not in resp.get_data(as_text=True)

    time.sleep(1.1)  # the test settings allow one text per phone a second
    reverified = bind(client, sandbox, headers, patient["id"], card["card_no"], card["phone"])
    assert reverified.status_code == 200
    assert reverified.get_json() == {"card_no": card["card_no"], "patient_id": patient["id"], "verified": True}
    assert client.get(f"{MP}/cards/{card['card_no']}", headers=headers).get_json()["balance_fen"] == 8_000
    assert _refund(client, headers, card["card_no"]).status_code != 403


# --- flooding a phone with texts ---------------------------------------------------------------------------

def test_texts_to_one_phone_are_limited_before_the_provider_is_called(app_with, sandbox, demo_clinic):
    client = app_with(SMS_PHONE_INTERVAL_S=60, SMS_PHONE_DAILY_MAX=10)
    card = his_card(sandbox)
    headers = _user(client, sandbox, "flood")
    patient = _patient(client, headers, card["name"], card["phone"])
    assert ask_code(client, headers, patient["id"], card["card_no"]).status_code == 202
    for _ in range(3):
        again = ask_code(client, headers, patient["id"], card["card_no"])
        assert again.status_code == 429 and again.get_json()["error"] == "sms_rate_limited"
        assert 1 <= int(again.headers["Retry-After"]) <= 60
        assert again.get_json()["errors"]["retry_after_s"] == int(again.headers["Retry-After"])
    assert len(texts(sandbox, card["phone"])) == 1

    # A request that sends nothing (not the holder) counts on the phone it names, just like a real send.
    stranger = _patient(client, headers, f"路人{secrets.token_hex(2)}", unique_phone())
    assert ask_code(client, headers, stranger["id"], card["card_no"]).status_code == 202
    assert ask_code(client, headers, stranger["id"], his_card(sandbox)["card_no"]).status_code == 429


def test_texts_to_one_phone_are_limited_per_day(app_with, sandbox, demo_clinic):
    client = app_with(SMS_PHONE_INTERVAL_S=0, SMS_PHONE_DAILY_MAX=3)
    card = his_card(sandbox)
    headers = _user(client, sandbox, "daily")
    patient = _patient(client, headers, card["name"], card["phone"])
    assert [ask_code(client, headers, patient["id"], card["card_no"]).status_code for _ in range(4)] \
        == [202, 202, 202, 429]
    # Until the next Asia/Shanghai midnight.
    refused = ask_code(client, headers, patient["id"], card["card_no"])
    assert refused.status_code == 429 and 0 < int(refused.headers["Retry-After"]) <= 86_400
    assert len(texts(sandbox, card["phone"])) == 3


def test_code_requests_per_account_are_limited(app_with, sandbox, demo_clinic):
    client = app_with(SMS_PHONE_INTERVAL_S=0, SMS_USER_DAILY_MAX=2)
    headers = _user(client, sandbox, "per-user")
    answers = []
    for _ in range(3):
        patient = _patient(client, headers, f"查卡{secrets.token_hex(2)}", unique_phone())
        answers.append(ask_code(client, headers, patient["id"], his_card(sandbox)["card_no"]))
    assert [r.status_code for r in answers] == [202, 202, 429]
    assert answers[2].get_json()["error"] == "sms_rate_limited" and int(answers[2].headers["Retry-After"]) > 0


def test_a_throttled_request_is_not_remembered_under_its_idempotency_key(app_with, sandbox, demo_clinic):
    client = app_with(SMS_PHONE_INTERVAL_S=1)
    card = his_card(sandbox)
    headers = _user(client, sandbox, "idem-429")
    patient = _patient(client, headers, card["name"], card["phone"])
    path, body = f"{MP}/patients/{patient['id']}/cards", {"card_no": card["card_no"]}
    assert client.post(path, json=body, headers={**headers, "Idempotency-Key": "first"}).status_code == 202
    throttled = client.post(path, json=body, headers={**headers, "Idempotency-Key": "second"})
    assert throttled.status_code == 429
    time.sleep(int(throttled.headers["Retry-After"]) + 0.1)
    assert client.post(path, json=body, headers={**headers, "Idempotency-Key": "second"}).status_code == 202


def test_the_providers_throttle_is_a_429_too(client, sandbox, demo_clinic):
    card = his_card(sandbox)
    headers = _user(client, sandbox, "provider-throttle")
    patient = _patient(client, headers, card["name"], card["phone"])
    requests.post(f"{sandbox.url}/sandbox/sms/throttle", json={"phone": card["phone"], "seconds": 45},
                  timeout=5).raise_for_status()
    try:
        refused = ask_code(client, headers, patient["id"], card["card_no"])
    finally:
        requests.delete(f"{sandbox.url}/sandbox/sms/throttle", timeout=5).raise_for_status()
    assert refused.status_code == 429 and refused.get_json()["error"] == "sms_rate_limited"
    assert 40 <= int(refused.headers["Retry-After"]) <= 45
    assert texts(sandbox, card["phone"]) == []
    # Nothing was sent, so nothing can be confirmed: the code row of that request is dead.
    assert send_code(client, headers, patient["id"], card["card_no"], "123456").get_json()["error"] \
        == "sms_code_expired"


# --- hostile card numbers ------------------------------------------------------------------------------------

def test_a_card_number_outside_the_pattern_never_reaches_the_his(client, sandbox, demo_clinic):
    headers = _user(client, sandbox, "hostile-card-no")
    patient = _patient(client, headers, "张伟", "13800000001")
    since = datetime.now(UTC).isoformat()
    for card_no in ("9^/@s!", "D0000001/../D0000002", "D0000001\n", "卡0001", "D" * 33, " D0000001", ""):
        resp = client.post(f"{MP}/patients/{patient['id']}/cards", json={"card_no": card_no}, headers=headers)
        assert resp.status_code == 422 and "card_no" in resp.get_json()["errors"]["json"], card_no
    for path in ("9%5E%40s%21", "9%5E%40s%21/bills", "..%2FD0000001", "%20D0000001"):
        assert client.get(f"{MP}/cards/{path}", headers=headers).status_code == 404, path
    log = requests.get(f"{sandbox.url}/sandbox/log", params={"limit": 2000}, timeout=5).json()
    reached = [e for e in log if e["at"] >= since and e["kind"] in ("his", "unrouted")
               and any(mark in e.get("path", "") for mark in ("@s", "%40", "^", "..", "D0000002"))]
    assert reached == []


# --- the holder -----------------------------------------------------------------------------------------------

def test_the_holder_binds_with_the_texted_code_and_reads_the_balance(client, sandbox, demo_clinic):
    card = his_card(sandbox, balance_fen=12_300)
    headers = _user(client, sandbox, "holder")
    patient = _patient(client, headers, card["name"], card["phone"])
    asked = ask_code(client, headers, patient["id"], card["card_no"])
    assert asked.status_code == 202
    assert asked.get_json() == {"verification": "sms", "sent_to": _masked(card["phone"]), "expires_in": 300}
    [text] = texts(sandbox, card["phone"])
    bound = send_code(client, headers, patient["id"], card["card_no"], code_in(text))
    assert bound.status_code == 201
    assert bound.get_json() == {"card_no": card["card_no"], "patient_id": patient["id"], "verified": True}
    balance = client.get(f"{MP}/cards/{card['card_no']}", headers=headers)
    assert balance.status_code == 200 and balance.get_json()["balance_fen"] == 12_300
    assert client.get(f"{MP}/cards/{card['card_no']}/bills", headers=headers).get_json() == []


def test_the_holder_matched_by_id_number_gets_the_code_on_the_his_phone(client, sandbox, demo_clinic):
    card = his_card(sandbox, id_number="44030119851231002X", balance_fen=500)
    headers = _user(client, sandbox, "holder-by-id")
    new_phone = unique_phone()  # the patient changed numbers; the HIS still has the old one
    patient = _patient(client, headers, card["name"], new_phone, id_number="44030119851231002x")
    bound = bind(client, sandbox, headers, patient["id"], card["card_no"], card["phone"])
    assert bound.status_code == 201 and texts(sandbox, new_phone) == []
    assert client.get(f"{MP}/cards/{card['card_no']}", headers=headers).get_json()["balance_fen"] == 500
