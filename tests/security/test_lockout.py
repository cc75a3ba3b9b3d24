"""Attack: lock a colleague out by failing their sign-in on purpose.

Before this, failures were counted per username only: anyone anywhere could lock finance out
with five wrong passwords. Now they count per (username, address), with a much higher ceiling per
username across addresses against guessing spread over many machines, and an admin can unlock.
"""
from __future__ import annotations

from sqlalchemy import select

from app.db.models import AuditEvent, StaffUser
from app.services.people.login_throttle import MAX_FAILURES, USERNAME_MAX_FAILURES
from tests.api.admin_helpers import ADMIN, make_user, other_clinic, sign_in

OWNER_DESK = {"REMOTE_ADDR": "10.1.1.10"}
ATTACKER = {"REMOTE_ADDR": "203.0.113.66"}


def _login(client, username: str, password: str, environ: dict):
    return client.post(f"{ADMIN}/auth/login", json={"username": username, "password": password},
                       environ_base=environ)


def _user_id(rt, username: str) -> int:
    with rt.db.session() as session:
        return session.scalar(select(StaffUser.id).where(StaffUser.username == username))


def test_an_attacker_elsewhere_locks_only_themselves_out(client, rt, demo_clinic):
    username, password = make_user(rt, "finance")

    failures = [_login(client, username, f"guess-{n}", ATTACKER).status_code for n in range(MAX_FAILURES)]
    attacker_with_the_password = _login(client, username, password, ATTACKER)
    owner = _login(client, username, password, OWNER_DESK)

    assert failures == [401] * MAX_FAILURES
    assert attacker_with_the_password.status_code == 429
    assert attacker_with_the_password.get_json()["error"] == "login_locked"
    assert owner.status_code == 200, owner.get_json()


def test_guessing_spread_over_many_addresses_locks_the_username_everywhere(client, rt, demo_clinic):
    username, password = make_user(rt, "finance")
    per_address = MAX_FAILURES - 1  # stays under every single address's lockout
    addresses = [{"REMOTE_ADDR": f"198.51.{n // 200}.{n % 200 + 1}"}
                 for n in range(-(-USERNAME_MAX_FAILURES // per_address))]

    answers = [_login(client, username, f"guess-{n}", address).status_code
               for n, address in enumerate(a for a in addresses for _ in range(per_address))][:USERNAME_MAX_FAILURES]
    owner = _login(client, username, password, OWNER_DESK)

    assert set(answers) == {401}
    assert owner.status_code == 429 and owner.get_json()["error"] == "login_locked"


def test_an_admin_unlocks_a_user_of_their_clinic_and_it_is_audited(client, rt, demo_clinic):
    username, password = make_user(rt, "staff")
    admin_headers = sign_in(client, *make_user(rt, "admin"))
    for n in range(MAX_FAILURES):
        _login(client, username, f"guess-{n}", OWNER_DESK)
    assert _login(client, username, password, OWNER_DESK).status_code == 429
    user_id = _user_id(rt, username)

    unlocked = client.post(f"{ADMIN}/users/{user_id}/unlock", headers=admin_headers)

    assert unlocked.status_code == 200, unlocked.get_json()
    assert unlocked.get_json() == {"id": user_id, "username": username, "was_locked": True}
    assert _login(client, username, password, OWNER_DESK).status_code == 200
    with rt.db.session() as session:
        event = session.scalar(select(AuditEvent).where(AuditEvent.action == "staff_user_unlocked",
                                                        AuditEvent.target_id == str(user_id)))
    assert event is not None and event.actor_type == "staff" and event.before["locked"] is True


def test_unlock_is_for_admins_and_only_for_users_of_their_clinics(client, rt, demo_clinic):
    elsewhere = other_clinic(rt)
    foreign_user = _user_id(rt, make_user(rt, "staff", clinics=(elsewhere.code,))[0])
    shared_user = _user_id(rt, make_user(rt, "staff", clinics=("demo", elsewhere.code))[0])
    own_user = _user_id(rt, make_user(rt, "staff")[0])
    admin_headers = sign_in(client, *make_user(rt, "admin"))
    finance_headers = sign_in(client, *make_user(rt, "finance"))

    foreign = client.post(f"{ADMIN}/users/{foreign_user}/unlock", headers=admin_headers)
    shared = client.post(f"{ADMIN}/users/{shared_user}/unlock", headers=admin_headers)
    missing = client.post(f"{ADMIN}/users/2147483647/unlock", headers=admin_headers)
    not_admin = client.post(f"{ADMIN}/users/{own_user}/unlock", headers=finance_headers)

    assert foreign.status_code == 404 and foreign.get_json()["error"] == "user_not_found"
    assert shared.status_code == 404  # also works for a clinic this admin does not run
    assert missing.status_code == 404
    assert not_admin.status_code == 403
    assert client.post(f"{ADMIN}/users/{own_user}/unlock", headers=admin_headers).status_code == 200


def test_a_made_up_forwarded_for_header_does_not_escape_the_lockout(client, rt, settings, demo_clinic):
    """Without a proxy configured X-Forwarded-For is ignored; behind HPAY_PROXY_COUNT proxies only what the
    proxies appended counts, never an entry the client wrote itself."""
    import dataclasses

    from app.factory import create_app

    username, password = make_user(rt, "staff")
    rotating = [client.post(f"{ADMIN}/auth/login", json={"username": username, "password": f"guess-{n}"},
                            environ_base=ATTACKER, headers={"X-Forwarded-For": f"192.0.2.{n}"}).status_code
                for n in range(MAX_FAILURES + 1)]
    assert rotating == [401] * MAX_FAILURES + [429]

    behind_proxy = create_app(dataclasses.replace(settings, PROXY_COUNT=1))
    try:
        proxied = behind_proxy.test_client()
        victim, victim_password = make_user(rt, "staff")
        # The proxy (10.0.0.2) appends the address it saw (198.18.0.9) to whatever the client sent.
        forged = [proxied.post(f"{ADMIN}/auth/login", json={"username": victim, "password": f"guess-{n}"},
                               environ_base={"REMOTE_ADDR": "10.0.0.2"},
                               headers={"X-Forwarded-For": f"192.0.2.{n}, 198.18.0.9"}).status_code
                  for n in range(MAX_FAILURES + 1)]
        owner = proxied.post(f"{ADMIN}/auth/login", json={"username": victim, "password": victim_password},
                             environ_base={"REMOTE_ADDR": "10.0.0.2"}, headers={"X-Forwarded-For": "10.1.1.10"})
    finally:
        behind_proxy.extensions["hpay_runtime"].close()
    assert forged == [401] * MAX_FAILURES + [429]
    assert owner.status_code == 200, owner.get_json()
