"""Staff users over the admin API: admins manage the users of their clinics, operators the clinics' admins;
nobody changes their own role or deactivates themselves; deactivation and a password reset end the user's
sessions; a role or clinic change takes effect on the next request."""
from __future__ import annotations

from sqlalchemy import select

from app.db.models import AuditEvent
from tests.api.admin_helpers import ADMIN, _user_id, label, make_user, other_clinic, sign_in, staff_headers
from tests.api.onboarding_helpers import operator_headers


def _new(client, headers, role: str = "staff", clinics=("demo",), password: str = "first-password-1"):
    return client.post(f"{ADMIN}/users", headers=headers, json={"username": label("u"), "role": role,
                                                                "clinic_codes": list(clinics),
                                                                "password": password})


def _me(client, headers):
    return client.get(f"{ADMIN}/auth/me", headers=headers)


def test_an_admin_creates_a_user_of_their_clinic_who_signs_in(client, rt, demo_clinic):
    headers, admin_name = staff_headers(client, rt, "admin")

    made = _new(client, headers, "finance")
    listed = client.get(f"{ADMIN}/users", headers=headers).get_json()

    assert made.status_code == 201, made.get_json()
    user = made.get_json()
    assert {k: user[k] for k in ("role", "clinic_codes", "active", "locked")} == {
        "role": "finance", "clinic_codes": ["demo"], "active": True, "locked": False}
    assert "password" not in user and user["id"] in [u["id"] for u in listed]
    signed = sign_in(client, user["username"], "first-password-1")
    assert _me(client, signed).get_json()["role"] == "finance"
    with rt.db.session() as session:
        event = session.scalar(select(AuditEvent).where(AuditEvent.action == "staff_user_created",
                                                        AuditEvent.target_id == str(user["id"])))
    assert event.actor_name == admin_name and "first-password-1" not in str(event.after)


def test_an_admin_manages_only_users_all_of_whose_clinics_are_theirs(client, rt, demo_clinic):
    headers, _ = staff_headers(client, rt, "admin")
    other = other_clinic(rt).code
    stranger, _ = make_user(rt, "staff", clinics=(other,))
    shared, _ = make_user(rt, "staff", clinics=("demo", other))

    foreign_clinic = _new(client, headers, clinics=(other,))
    operator_role = _new(client, headers, role="operator", clinics=())
    patch_stranger = client.patch(f"{ADMIN}/users/{_user_id(rt, stranger)}", json={"active": False}, headers=headers)
    patch_shared = client.patch(f"{ADMIN}/users/{_user_id(rt, shared)}", json={"active": False}, headers=headers)
    listed = [u["username"] for u in client.get(f"{ADMIN}/users", headers=headers).get_json()]

    assert (foreign_clinic.status_code, foreign_clinic.get_json()["error"]) == (404, "clinic_not_found")
    assert (operator_role.status_code, operator_role.get_json()["error"]) == (403, "role_not_assignable")
    assert (patch_stranger.status_code, patch_shared.status_code) == (404, 404)
    assert stranger not in listed and shared not in listed


def test_nobody_changes_their_own_role_deactivates_themselves_or_resets_their_own_password(client, rt, demo_clinic):
    username, password = make_user(rt, "admin")
    headers = sign_in(client, username, password)
    me = _user_id(rt, username)

    promote = client.patch(f"{ADMIN}/users/{me}", json={"role": "staff"}, headers=headers)
    leave = client.patch(f"{ADMIN}/users/{me}", json={"active": False}, headers=headers)
    # A stolen session cannot take the account over by resetting its password without the current one.
    takeover = client.patch(f"{ADMIN}/users/{me}", json={"password": "stolen-session-1"}, headers=headers)

    assert (promote.status_code, promote.get_json()["error"]) == (403, "own_role")
    assert (leave.status_code, leave.get_json()["error"]) == (403, "own_account")
    assert (takeover.status_code, takeover.get_json()["error"]) == (403, "own_password")
    assert sign_in(client, username, password)
    assert _me(client, headers).get_json()["role"] == "admin"


def test_deactivation_and_a_password_reset_end_the_users_sessions(client, rt, demo_clinic):
    headers, _ = staff_headers(client, rt, "admin")
    name_a, password_a = make_user(rt, "staff")
    name_b, password_b = make_user(rt, "staff")
    session_a, session_b = sign_in(client, name_a, password_a), sign_in(client, name_b, password_b)

    off = client.patch(f"{ADMIN}/users/{_user_id(rt, name_a)}", json={"active": False}, headers=headers)
    reset = client.patch(f"{ADMIN}/users/{_user_id(rt, name_b)}", json={"password": "reset-password-2"},
                         headers=headers)

    assert off.status_code == 200 and off.get_json()["active"] is False
    assert _me(client, session_a).status_code == 401
    assert client.post(f"{ADMIN}/auth/login", json={"username": name_a, "password": password_a}).status_code == 401
    assert reset.status_code == 200
    assert (_me(client, session_b).status_code, _me(client, session_b).get_json()["error"]) == (401, "token_revoked")
    assert client.post(f"{ADMIN}/auth/login", json={"username": name_b, "password": password_b}).status_code == 401
    assert _me(client, sign_in(client, name_b, "reset-password-2")).status_code == 200
    again = client.patch(f"{ADMIN}/users/{_user_id(rt, name_a)}", json={"active": True}, headers=headers)
    assert again.get_json()["active"] is True and _me(client, session_a).status_code == 401  # old tokens stay dead


def test_a_role_change_takes_effect_on_the_next_request(client, rt, demo_clinic):
    headers, _ = staff_headers(client, rt, "admin")
    name, password = make_user(rt, "staff")
    theirs = sign_in(client, name, password)
    assert client.get(f"{ADMIN}/settings/settlement-types", headers=theirs).status_code == 403

    changed = client.patch(f"{ADMIN}/users/{_user_id(rt, name)}", json={"role": "admin"}, headers=headers)

    assert changed.get_json()["role"] == "admin"
    assert client.get(f"{ADMIN}/settings/settlement-types", headers=theirs).status_code == 200


def test_an_operator_manages_the_admins_of_any_clinic_and_nothing_else(client, rt, demo_clinic):
    headers, operator_name = operator_headers(client, rt)
    other = other_clinic(rt).code
    staff_name, _ = make_user(rt, "staff")
    another_operator, _ = make_user(rt, "operator", clinics=())

    admin_of_other = _new(client, headers, "admin", clinics=(other,))
    staff = _new(client, headers, "staff")
    operator = _new(client, headers, "operator", clinics=())
    patch_staff = client.patch(f"{ADMIN}/users/{_user_id(rt, staff_name)}", json={"active": False}, headers=headers)
    patch_operator = client.patch(f"{ADMIN}/users/{_user_id(rt, another_operator)}", json={"active": False},
                                  headers=headers)
    listed = client.get(f"{ADMIN}/users", headers=headers).get_json()

    assert admin_of_other.status_code == 201, admin_of_other.get_json()
    assert admin_of_other.get_json()["clinic_codes"] == [other]
    assert (staff.status_code, operator.status_code) == (403, 403)
    assert (patch_staff.status_code, patch_operator.status_code) == (404, 404)
    assert {u["role"] for u in listed} == {"admin"}
    moved = client.patch(f"{ADMIN}/users/{admin_of_other.get_json()['id']}", json={"clinic_codes": ["demo"]},
                         headers=headers)
    assert moved.get_json()["clinic_codes"] == ["demo"]
    with rt.db.session() as session:
        event = session.scalar(select(AuditEvent).where(AuditEvent.action == "staff_user_updated",
                                                        AuditEvent.target_id == str(moved.get_json()["id"])))
    assert (event.actor_name, event.before["clinic_codes"], event.after["clinic_codes"]) == (
        operator_name, [other], ["demo"])


def test_an_operator_has_no_clinic_and_reads_no_clinics_data(client, rt, demo_clinic):
    headers, _ = operator_headers(client, rt)

    me = _me(client, headers).get_json()
    bookings = client.get(f"{ADMIN}/bookings", headers=headers)

    assert (me["role"], me["clinic_codes"]) == ("operator", [])
    assert (bookings.status_code, bookings.get_json()["error"]) == (403, "role_not_allowed")
