"""Attacks on sessions: a token must die with a logout, a password change or a deactivation.

Before this, tokens carried only the user id: a stolen staff token outlived the password reset meant
to shut its thief out, and there was no way to log out at all.
"""
from __future__ import annotations

from sqlalchemy import select

from app.db.models import AuditEvent, StaffUser
from app.services.people import staff_auth
from tests.api.admin_helpers import ADMIN, make_user, principal, sign_in
from tests.api.mp_helpers import bearer
from tests.api.mp_helpers import login as mp_login

MP = "/api/mp/v1"


def _me(client, headers):
    return client.get(f"{ADMIN}/auth/me", headers=headers)


def _audited(rt, action: str, user_id: int) -> int:
    with rt.db.session() as session:
        return len(session.scalars(select(AuditEvent.id).where(AuditEvent.action == action,
                                                               AuditEvent.target_id == str(user_id))).all())


def _user_id(rt, username: str) -> int:
    with rt.db.session() as session:
        return session.scalar(select(StaffUser.id).where(StaffUser.username == username))


def test_a_stolen_staff_token_dies_with_the_password_change(client, rt, demo_clinic):
    username, password = make_user(rt, "finance")
    stolen = sign_in(client, username, password)
    owners = sign_in(client, username, password)

    changed = client.post(f"{ADMIN}/auth/password", headers=owners,
                          json={"current_password": password, "new_password": "a-brand-new-password"})

    assert changed.status_code == 200, changed.get_json()
    assert changed.headers["Cache-Control"] == "no-store"
    for old in (stolen, owners):
        refused = _me(client, old)
        assert refused.status_code == 401 and refused.get_json()["error"] == "token_revoked"
    fresh = {"Authorization": f"Bearer {changed.get_json()['token']}"}
    assert _me(client, fresh).status_code == 200
    old_password = client.post(f"{ADMIN}/auth/login", json={"username": username, "password": password})
    assert old_password.status_code == 401
    assert sign_in(client, username, "a-brand-new-password")
    assert _audited(rt, "staff_password_changed", _user_id(rt, username)) == 1


def test_the_password_change_needs_the_current_password_and_does_not_help_guessing_it(client, rt, demo_clinic):
    username, password = make_user(rt, "staff")
    stolen = sign_in(client, username, password)

    guesses = [client.post(f"{ADMIN}/auth/password", headers=stolen,
                           json={"current_password": f"guess-{n}", "new_password": "taken-over-1"})
               for n in range(staff_auth.MAX_FAILURES + 1)]

    assert [g.status_code for g in guesses] == [403] * staff_auth.MAX_FAILURES + [429]
    assert guesses[0].get_json()["error"] == "wrong_current_password"
    assert guesses[-1].get_json()["error"] == "login_locked"
    assert _me(client, stolen).status_code == 200  # nothing changed: the password is still the owner's
    short = client.post(f"{ADMIN}/auth/password", headers=stolen,
                        json={"current_password": password, "new_password": "short"})
    assert short.status_code == 422


def test_logout_ends_every_session_of_the_user(client, rt, demo_clinic):
    username, password = make_user(rt, "staff")
    desk, phone = sign_in(client, username, password), sign_in(client, username, password)

    out = client.post(f"{ADMIN}/auth/logout", headers=desk)

    assert out.status_code == 204
    for headers in (desk, phone):
        refused = _me(client, headers)
        assert refused.status_code == 401 and refused.get_json()["error"] == "token_revoked"
    assert client.post(f"{ADMIN}/auth/logout", headers=desk).status_code == 401
    assert _me(client, sign_in(client, username, password)).status_code == 200
    assert _audited(rt, "staff_logout", _user_id(rt, username)) == 1


def test_deactivation_revokes_so_that_reactivating_does_not_revive_old_tokens(client, rt, demo_clinic):
    username, password = make_user(rt, "staff")
    admin_name, _ = make_user(rt, "admin")
    old = sign_in(client, username, password)
    user_id, admin = _user_id(rt, username), principal(rt, admin_name)

    with rt.db.session() as session:
        staff_auth.set_active(session, admin, user_id, False)
    gone = _me(client, old)
    with rt.db.session() as session:
        staff_auth.set_active(session, admin, user_id, True)

    assert gone.status_code == 401 and gone.get_json()["error"] == "account_inactive"
    revived = _me(client, old)
    assert revived.status_code == 401 and revived.get_json()["error"] == "token_revoked"
    assert _me(client, sign_in(client, username, password)).status_code == 200
    assert _audited(rt, "staff_user_deactivated", user_id) == 1 and _audited(rt, "staff_user_activated", user_id) == 1


def test_a_token_without_its_version_is_refused(client, rt, demo_clinic):
    from app.services.people.tokens import issue_token

    username, _ = make_user(rt, "admin")
    unversioned = issue_token(rt.settings.SECRET_KEY, "admin", {"uid": _user_id(rt, username)})

    refused = _me(client, {"Authorization": f"Bearer {unversioned}"})

    assert refused.status_code == 401 and refused.get_json()["error"] == "invalid_token"


def test_mini_program_logout_ends_the_session(client, sandbox, demo_clinic):
    first = mp_login(client, sandbox, "wechat", openid="sessions-logout-1")
    other_device = mp_login(client, sandbox, "wechat", openid="sessions-logout-1")
    headers = bearer(first["token"])
    assert client.get(f"{MP}/patients", headers=headers).status_code == 200

    out = client.post(f"{MP}/auth/logout", headers=headers)

    assert out.status_code == 204
    for token in (first["token"], other_device["token"]):
        refused = client.get(f"{MP}/patients", headers=bearer(token))
        assert refused.status_code == 401 and refused.get_json()["error"] == "token_revoked"
    again = mp_login(client, sandbox, "wechat", openid="sessions-logout-1")
    assert again["user"]["id"] == first["user"]["id"]
    assert client.get(f"{MP}/patients", headers=bearer(again["token"])).status_code == 200
