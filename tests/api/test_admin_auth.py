"""Staff sign-in: argon2 hashes, tokens that expire, accounts re-checked on every request, throttled
failures, the create-user command and the demo users."""
from __future__ import annotations

import dataclasses
import time
from datetime import timedelta

from sqlalchemy import select, update

from app.db.models import AuditEvent, LoginThrottle, StaffUser, StaffUserClinic
from app.db.types import utcnow
from app.services.people.login_throttle import address_key
from app.services.people.staff_auth import MAX_FAILURES
from tests.api.admin_helpers import ADMIN, label, make_user, other_clinic, sign_in
from tests.api.mp_helpers import login as mp_login


def _login(client, username: str, password: str):
    return client.post(f"{ADMIN}/auth/login", json={"username": username, "password": password})


def test_login_returns_a_token_for_the_user_and_its_clinics(client, rt, demo_clinic):
    elsewhere = other_clinic(rt)
    username, password = make_user(rt, "finance", clinics=("demo", elsewhere.code))

    resp = _login(client, username.upper(), password)

    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["expires_in"] == rt.settings.TOKEN_TTL_S and body["token"]
    assert body["user"]["username"] == username and body["user"]["role"] == "finance"
    assert sorted(body["user"]["clinic_codes"]) == sorted(["demo", elsewhere.code])
    me = client.get(f"{ADMIN}/auth/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.status_code == 200 and me.get_json() == body["user"]
    with rt.db.session() as session:
        stored = session.scalar(select(StaffUser.password_hash).where(StaffUser.username == username))
    assert stored.startswith("$argon2id$") and password not in stored


def test_wrong_password_and_unknown_user_are_the_same_401(client, rt, demo_clinic):
    username, _ = make_user(rt, "staff")

    wrong = _login(client, username, "not-the-password")
    unknown = _login(client, label("nobody"), "not-the-password")

    assert (wrong.status_code, wrong.get_json()) == (unknown.status_code, unknown.get_json())
    assert wrong.status_code == 401 and wrong.get_json()["error"] == "invalid_credentials"


def test_bad_login_input_is_422(client, demo_clinic):
    for body in ({}, {"username": "a"}, {"username": "", "password": "x"}, {"username": "a\u0000b", "password": "x"},
                 {"username": "a", "password": "x" * 257}, {"username": 5, "password": []}):
        resp = client.post(f"{ADMIN}/auth/login", json=body)
        assert resp.status_code == 422, (body, resp.get_json())


def test_repeated_failures_lock_the_username_even_for_the_right_password_until_the_lockout_ends(client, rt,
                                                                                             demo_clinic):
    username, password = make_user(rt, "staff")
    answers = [_login(client, username, "wrong-password").status_code for _ in range(MAX_FAILURES)]

    locked = _login(client, username, password)

    assert answers == [401] * MAX_FAILURES
    assert locked.status_code == 429 and locked.get_json()["error"] == "login_locked"
    assert locked.get_json()["errors"]["retry_after_s"] > 60
    with rt.db.session() as session:
        assert session.scalar(select(AuditEvent.id).where(AuditEvent.action == "staff_login_locked",
                                                          AuditEvent.target_id == username)) is not None
        session.execute(update(LoginThrottle).where(LoginThrottle.username == username)
                        .values(locked_until=utcnow() - timedelta(seconds=1)))

    assert _login(client, username, password).status_code == 200
    with rt.db.session() as session:
        here = address_key(username, "127.0.0.1")
        assert session.scalar(select(LoginThrottle.id).where(LoginThrottle.key == here)) is None


def test_an_unknown_username_locks_the_same_way(client, demo_clinic):
    nobody = label("ghost")
    answers = [_login(client, nobody, "guess").status_code for _ in range(MAX_FAILURES + 1)]
    assert answers == [401] * MAX_FAILURES + [429]


def test_failures_spread_over_more_than_the_window_do_not_lock(client, rt, demo_clinic):
    username, password = make_user(rt, "staff")
    for _ in range(MAX_FAILURES - 1):
        assert _login(client, username, "wrong-password").status_code == 401
    with rt.db.session() as session:
        session.execute(update(LoginThrottle).where(LoginThrottle.username == username)
                        .values(window_started_at=utcnow() - timedelta(hours=1)))

    assert _login(client, username, "wrong-password").status_code == 401
    assert _login(client, username, password).status_code == 200


def test_a_token_expires(app, settings, rt, demo_clinic):
    from app.factory import create_app

    short = create_app(dataclasses.replace(settings, TOKEN_TTL_S=1))
    try:
        client = short.test_client()
        headers = sign_in(client, *make_user(rt, "admin"))
        assert client.get(f"{ADMIN}/auth/me", headers=headers).status_code == 200
        time.sleep(2.2)
        expired = client.get(f"{ADMIN}/auth/me", headers=headers)
        assert expired.status_code == 401 and expired.get_json()["error"] == "token_expired"
    finally:
        short.extensions["hpay_runtime"].close()


def test_a_deactivated_user_or_a_mini_program_token_is_refused(client, sandbox, rt, demo_clinic):
    username, password = make_user(rt, "staff")
    headers = sign_in(client, username, password)
    mp_token = mp_login(client, sandbox, "wechat", openid=label("mp"))["token"]

    with rt.db.session() as session:
        session.execute(update(StaffUser).where(StaffUser.username == username).values(active=False))

    gone = client.get(f"{ADMIN}/bookings", headers=headers)
    foreign = client.get(f"{ADMIN}/bookings", headers={"Authorization": f"Bearer {mp_token}"})
    assert gone.status_code == 401 and gone.get_json()["error"] == "account_inactive"
    assert foreign.status_code == 401 and foreign.get_json()["error"] == "invalid_token"
    assert _login(client, username, password).status_code == 401


def test_a_role_or_clinic_change_applies_to_tokens_already_issued(client, rt, demo_clinic):
    username, password = make_user(rt, "staff")
    headers = sign_in(client, username, password)
    assert client.get(f"{ADMIN}/bookings", headers=headers).status_code == 200

    with rt.db.session() as session:
        session.execute(update(StaffUser).where(StaffUser.username == username).values(role="finance"))
    assert client.get(f"{ADMIN}/bookings", headers=headers).status_code == 403

    with rt.db.session() as session:
        user_id = session.scalar(select(StaffUser.id).where(StaffUser.username == username))
        session.execute(update(StaffUser).where(StaffUser.id == user_id).values(role="staff"))
        session.query(StaffUserClinic).filter(StaffUserClinic.user_id == user_id).delete()
    listed = client.get(f"{ADMIN}/bookings", headers=headers)
    assert listed.status_code == 200 and listed.get_json()["total"] == 0


# --- the command line and the demo users -------------------------------------------------------------

def test_create_user_command_creates_a_user_who_can_sign_in(app, client, demo_clinic):
    username = label("cli")
    runner = app.test_cli_runner()

    made = runner.invoke(args=["create-user", username, "--role", "finance", "--clinic", "demo"],
                         input="a-long-password\na-long-password\n")
    again = runner.invoke(args=["create-user", username, "--role", "staff", "--clinic", "demo",
                                "--password", "another-password"])
    nowhere = runner.invoke(args=["create-user", label("cli"), "--role", "staff", "--clinic", "no-such-clinic",
                                  "--password", "another-password"])
    short = runner.invoke(args=["create-user", label("cli"), "--role", "staff", "--clinic", "demo",
                                "--password", "short"])

    assert made.exit_code == 0, made.output
    assert f"user {username}" in made.output
    assert again.exit_code != 0 and "already taken" in again.output
    assert nowhere.exit_code != 0 and "no-such-clinic" in nowhere.output
    assert short.exit_code != 0 and "at least 8" in short.output
    body = _login(client, username, "a-long-password").get_json()
    assert body["user"]["role"] == "finance" and body["user"]["clinic_codes"] == ["demo"]


def test_seed_demo_creates_the_three_demo_users_once(client, rt, sandbox, demo_clinic):
    from app.cli.demo import seed_demo

    summary = seed_demo(rt, sandbox.url)

    assert "0 demo users created or updated" in summary
    for role in ("admin", "finance", "staff"):
        body = _login(client, role, rt.settings.DEMO_PASSWORD).get_json()
        assert body["user"]["role"] == role and "demo" in body["user"]["clinic_codes"], body
    with rt.db.session() as session:
        assert len(session.scalars(select(StaffUser).where(StaffUser.username.in_(["admin", "finance", "staff"])))
                   .all()) == 3
