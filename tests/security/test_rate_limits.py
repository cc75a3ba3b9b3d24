"""Attack: hammer what costs us or our patients (logins, card probes, SMS, refunds, the HIS API).

Before this nothing was limited: 30 bad login codes and 100 card probes in half a second were all
answered. Each test builds an app of its own with low limits and its own Redis key prefix, so that
its counters start at zero and touch no other test's.
"""
from __future__ import annotations

import dataclasses
import time
import uuid
from contextlib import contextmanager
from datetime import date, timedelta

import pytest

from app.ratelimit import limited_endpoints
from tests.api.mp_helpers import bearer, login, login_code
from tests.api.order_helpers import add_patient, bound_card
from tests.his_auth import his_headers

MP = "/api/mp/v1"
ADMIN = "/api/admin/v1"
NO_SMS_LIMIT = {"RATE_SMS_PER_USER": "1000/minute", "RATE_SMS_PER_CARD": "1000/minute"}
# The card-binding service's own per-phone and per-user SMS limits (app/services/sms_limits.py) are tested
# with the binding; here they are switched off so that only the endpoint limits under test answer 429.
NO_SMS_SERVICE_LIMITS = {"SMS_PHONE_INTERVAL_S": 0, "SMS_PHONE_DAILY_MAX": 0, "SMS_USER_DAILY_MAX": 0}


@contextmanager
def limited_app(settings, **limits):
    """An app of its own whose limits are the production defaults, unscaled, except `limits`."""
    from app.factory import create_app

    app = create_app(dataclasses.replace(settings, RATE_LIMIT_SCALE=1.0,
                                         RATE_LIMIT_PREFIX=f"rl-test-{uuid.uuid4().hex[:8]}",
                                         **{**NO_SMS_SERVICE_LIMITS, **limits}))
    try:
        yield app.test_client()
    finally:
        app.extensions["hpay_runtime"].close()


def assert_rate_limited(resp) -> None:
    assert resp.status_code == 429, (resp.status_code, resp.get_json())
    body = resp.get_json()
    assert body["error"] == "rate_limited" and body["message"]
    assert 1 <= int(resp.headers["Retry-After"]) <= 3600


def _user(client, sandbox, name: str) -> dict:
    return bearer(login(client, sandbox, "wechat", openid=f"rl-{name}-{uuid.uuid4().hex[:8]}")["token"])


def test_bad_login_codes_are_cut_off_per_address(settings, sandbox, demo_clinic):
    with limited_app(settings, RATE_MP_LOGIN_FAILURES_PER_ADDRESS="5/minute") as client:
        attacker = {"REMOTE_ADDR": "203.0.113.7"}
        answers = [client.post(f"{MP}/auth/login", json={"clinic_code": "demo", "channel": "wechat",
                                                         "code": f"forged-{n}"}, environ_base=attacker)
                   for n in range(30)]
        elsewhere = client.post(f"{MP}/auth/login", environ_base={"REMOTE_ADDR": "10.20.30.40"},
                                json={"clinic_code": "demo", "channel": "wechat",
                                      "code": login_code(sandbox, "wechat")})

    assert [a.status_code for a in answers[:5]] == [401] * 5
    for answer in answers[5:]:
        assert_rate_limited(answer)
    assert elsewhere.status_code == 200, elsewhere.get_json()


def test_a_thousand_sign_ins_from_one_address_pass_at_the_production_limits(settings, demo_clinic):
    """A hospital's shared Wi-Fi at slot release: every patient behind one address within a minute."""
    with limited_app(settings) as client:  # the production defaults, unscaled
        wifi = {"REMOTE_ADDR": "100.64.0.1"}
        answers = [client.post(f"{MP}/auth/login", json={"clinic_code": "demo", "channel": "wechat"},
                               environ_base=wifi).status_code for _ in range(1000)]

    assert 429 not in answers and set(answers) == {422}


def test_admin_sign_ins_are_limited_per_username_and_address(settings, demo_clinic):
    with limited_app(settings, RATE_ADMIN_LOGIN_PER_USERNAME_ADDRESS="3/minute") as client:
        def attempt(username, address):
            return client.post(f"{ADMIN}/auth/login", json={"username": username, "password": "guess"},
                               environ_base={"REMOTE_ADDR": address})

        target = f"rl-finance-{uuid.uuid4().hex[:8]}"
        answers = [attempt(target, "203.0.113.8") for _ in range(4)]
        other_name = attempt(f"rl-other-{uuid.uuid4().hex[:8]}", "203.0.113.8")
        other_place = attempt(target, "10.1.2.3")

    assert [a.status_code for a in answers[:3]] == [401] * 3
    assert_rate_limited(answers[3])
    assert other_name.status_code == 401 and other_place.status_code == 401


def test_card_probes_are_cut_off_per_user(settings, sandbox, demo_clinic):
    # Each probe would also send an SMS code (it names a card and brings none): that limit is
    # tested on its own below, so here it is out of the way.
    with limited_app(settings, RATE_CARD_BIND_PER_USER="5/minute", **NO_SMS_LIMIT) as client:
        headers = _user(client, sandbox, "prober")
        patient = add_patient(client, headers, "王五", "13700003333")
        answers = [client.post(f"{MP}/patients/{patient['id']}/cards", json={"card_no": f"PROBE{n:05d}"},
                               headers=headers) for n in range(100)]

    assert all(a.status_code != 429 for a in answers[:5]), [a.status_code for a in answers[:5]]
    for answer in answers[5:]:
        assert_rate_limited(answer)


def test_one_card_is_protected_from_many_users(settings, sandbox, demo_clinic):
    victim_card = f"VICTIM{uuid.uuid4().hex[:6]}"
    with limited_app(settings, RATE_CARD_BIND_PER_CARD="3/minute", **NO_SMS_LIMIT) as client:
        answers, last_user = [], None
        for n in range(4):
            last_user = _user(client, sandbox, f"crowd{n}")
            patient = add_patient(client, last_user, "赵六", "13700004444")
            answers.append(client.post(f"{MP}/patients/{patient['id']}/cards", json={"card_no": victim_card},
                                       headers=last_user))
        another_card = client.post(f"{MP}/patients/{patient['id']}/cards", json={"card_no": "SOMEOTHER1"},
                                   headers=last_user)

    assert all(a.status_code != 429 for a in answers[:3])
    assert_rate_limited(answers[3])
    assert another_card.status_code != 429


def test_sms_sending_binding_requests_are_limited_per_user(settings, sandbox, demo_clinic):
    with limited_app(settings, RATE_SMS_PER_USER="2/minute", RATE_CARD_BIND_PER_USER="1000/minute") as client:
        headers = _user(client, sandbox, "sms")
        patient = add_patient(client, headers, "孙七", "13700005555")
        path = f"{MP}/patients/{patient['id']}/cards"
        sends = [client.post(path, json={"card_no": f"SMS{n}{uuid.uuid4().hex[:6]}"}, headers=headers)
                 for n in range(3)]
        with_code = client.post(path, json={"card_no": "SMS-CODE-1", "sms_code": "123456"}, headers=headers)
        opening = client.post(path, json={"create": True}, headers=headers)

    assert all(s.status_code != 429 for s in sends[:2])
    assert_rate_limited(sends[2])
    assert with_code.status_code != 429 and opening.status_code != 429


def test_sms_codes_to_one_card_are_limited_across_users(settings, sandbox, demo_clinic):
    card_no = f"SMSCARD{uuid.uuid4().hex[:6]}"
    with limited_app(settings, RATE_SMS_PER_CARD="2/minute") as client:
        answers = []
        for n in range(3):
            headers = _user(client, sandbox, f"sms-crowd{n}")
            patient = add_patient(client, headers, "周八", "13700006666")
            answers.append(client.post(f"{MP}/patients/{patient['id']}/cards", json={"card_no": card_no},
                                       headers=headers))

    assert all(a.status_code != 429 for a in answers[:2])
    assert_rate_limited(answers[2])


def test_card_refunds_are_limited_per_user(settings, sandbox, demo_clinic):
    with limited_app(settings, RATE_CARD_REFUND_PER_USER="3/minute") as client:
        headers = _user(client, sandbox, "refunder")
        answers = [client.post(f"{MP}/cards/NOTMINE{n}/refunds", json={"amount_fen": 100}, headers=headers)
                   for n in range(4)]

    assert [a.status_code for a in answers[:3]] == [404] * 3
    assert_rate_limited(answers[3])


def test_asking_about_someone_elses_card_does_not_use_up_its_holders_refunds(settings, sandbox, demo_clinic):
    with limited_app(settings, RATE_CARD_REFUND_PER_CARD="2/minute") as client:
        holder = _user(client, sandbox, "holder")
        card_no = bound_card(client, sandbox, holder)
        attacker = _user(client, sandbox, "spoiler")
        spoils = [client.post(f"{MP}/cards/{card_no}/refunds", json={"amount_fen": 100}, headers=attacker)
                  for _ in range(5)]
        own = client.post(f"{MP}/cards/{card_no}/refunds", json={"amount_fen": 100}, headers=holder)

    assert [s.status_code for s in spoils] == [404] * 5
    assert own.status_code != 429, own.get_json()


def _his_get(client, key: dict, day: date, secret: str | None = None):
    path = f"/api/his/v1/reconciliation/{day.isoformat()}"
    return client.get(path, headers=his_headers(key["key_id"], secret or key["secret"], "GET", path))


@pytest.fixture(scope="module")
def his_key(sandbox):
    return sandbox.merchants()["his"][0]


def test_the_his_api_is_limited_per_key(settings, demo_clinic, his_key):
    start = date(2026, 1, 1)
    with limited_app(settings, RATE_HIS_PER_KEY="3/minute") as client:
        answers = [_his_get(client, his_key, start + timedelta(days=n)) for n in range(4)]

    assert [a.status_code for a in answers[:3]] == [200] * 3
    assert_rate_limited(answers[3])


def test_garbage_under_a_his_key_id_does_not_use_up_that_hospitals_budget(settings, demo_clinic, his_key):
    start = date(2026, 2, 1)
    with limited_app(settings, RATE_HIS_PER_KEY="3/minute") as client:
        forged = [_his_get(client, his_key, start + timedelta(days=n), secret="guessed") for n in range(10)]
        genuine = [_his_get(client, his_key, start + timedelta(days=20 + n)) for n in range(3)]

    assert {f.status_code for f in forged} == {401}
    assert [g.status_code for g in genuine] == [200] * 3


def test_every_limited_operation_documents_its_429_and_retry_after(app, client):
    spec = client.get("/openapi.json").get_json()
    undocumented = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint not in limited_endpoints(app):
            continue
        path = "/".join(f"{{{part.split(':')[-1][:-1]}}}" if part.startswith("<") else part
                        for part in rule.rule.split("/"))
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            answer = spec["paths"][path][method.lower()]["responses"].get("429", {})
            if "rate_limited" not in answer.get("description", "") or "Retry-After" not in answer.get("headers", {}):
                undocumented.append(f"{method} {path}")
    assert not undocumented
    assert len(limited_endpoints(app)) >= 6


def test_without_redis_sign_in_works_and_the_limits_still_hold(settings, sandbox, rt, demo_clinic):
    from tests.api.admin_helpers import make_user

    username, password = make_user(rt, "staff")
    with limited_app(settings, RATE_LIMIT_STORAGE_URL="redis://127.0.0.1:1/0",
                     RATE_ADMIN_LOGIN_PER_USERNAME_ADDRESS="3/minute") as client:
        started = time.perf_counter()
        signed_in = [client.post(f"{ADMIN}/auth/login", json={"username": username, "password": password})
                     for _ in range(4)]
        elapsed = time.perf_counter() - started
        mp = client.post(f"{MP}/auth/login", json={"clinic_code": "demo", "channel": "wechat",
                                                   "code": login_code(sandbox, "wechat")})

    assert [s.status_code for s in signed_in[:3]] == [200] * 3
    assert_rate_limited(signed_in[3])
    assert mp.status_code == 200
    assert elapsed < 10, "an unreachable Redis must not stall every sign-in"
