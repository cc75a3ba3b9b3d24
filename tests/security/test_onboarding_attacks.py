"""Attacks on the routes that set clinics up, each trying to break one rule:
- an admin of clinic A cannot see or change clinic B's items, slots, schedules or users (404, as if they did not
  exist), nor any clinic's HIS or channel apps (operator routes: 403);
- an operator, platform-wide, reads no clinic's internal data (bookings, patients, statements...: 403);
- staff and finance manage nothing;
- no secret given to the platform reaches a response, a log line or the audit trail.
Each checks that nothing changed.
"""
from __future__ import annotations

import logging

from sqlalchemy import select

from app.db.models import AuditEvent, Clinic, Item, Slot, StaffUser
from tests.api.admin_helpers import ADMIN, _user_id, make_user, now, other_clinic, staff_headers
from tests.api.onboarding_helpers import (
    alipay_app_body,
    created,
    new_code,
    operator_headers,
    sandbox_merchant,
    wechat_app_body,
)


def test_an_admin_of_one_clinic_cannot_reach_another_clinics_setup(client, rt, sandbox, demo_clinic):
    headers, _ = staff_headers(client, rt, "admin")
    other = other_clinic(rt)
    their_user, _ = make_user(rt, "staff", clinics=(other.code,))
    day = now().date().isoformat()
    schedule = {"from": day, "to": day, "weekdays": [1, 2, 3, 4, 5, 6, 7], "start": "09:00", "end": "10:00",
                "slot_minutes": 30, "capacity": 9}

    not_found = {
        "patch item": client.patch(f"{ADMIN}/items/{other.item_id}", json={"price_fen": 1}, headers=headers),
        "list slots": client.get(f"{ADMIN}/items/{other.item_id}/slots", query_string={"from": day, "to": day},
                                 headers=headers),
        "patch slot": client.patch(f"{ADMIN}/slots/{other.slot_id}", json={"capacity": 99}, headers=headers),
        "schedule": client.post(f"{ADMIN}/items/{other.item_id}/schedules", json=schedule, headers=headers),
        "new item": client.post(f"{ADMIN}/items", json={"clinic_code": other.code, "code": "X1", "name": "x",
                                                        "price_fen": 1}, headers=headers),
        "list items": client.get(f"{ADMIN}/items", query_string={"clinic_code": other.code}, headers=headers),
        "patch user": client.patch(f"{ADMIN}/users/{_user_id(rt, their_user)}", json={"active": False},
                                   headers=headers),
        "unlock user": client.post(f"{ADMIN}/users/{_user_id(rt, their_user)}/unlock", headers=headers),
    }
    forbidden = {
        "his": client.put(f"{ADMIN}/clinics/{other.code}/his", headers=headers,
                          json={"base_url": f"{sandbox.url}/his/", "key_id": "evil", "secret": "e" * 32}),
        "his check": client.post(f"{ADMIN}/clinics/{other.code}/his/check", headers=headers),
        "apps": client.get(f"{ADMIN}/clinics/{other.code}/channel-apps", headers=headers),
        "new app": client.post(f"{ADMIN}/clinics/{other.code}/channel-apps", headers=headers,
                               json=wechat_app_body(sandbox.url, sandbox_merchant(sandbox.url, "wechat"))),
        "rename clinic": client.patch(f"{ADMIN}/clinics/{other.code}", json={"active": False}, headers=headers),
        "platform apps": client.get(f"{ADMIN}/platform/channel-apps", headers=headers),
    }

    assert {name: r.status_code for name, r in not_found.items()} == {name: 404 for name in not_found}
    assert {name: (r.status_code, r.get_json()["error"]) for name, r in forbidden.items()} == {
        name: (403, "role_not_allowed") for name in forbidden}
    with rt.db.session() as session:
        item = session.get(Item, other.item_id)
        slot = session.get(Slot, other.slot_id)
        clinic = session.scalar(select(Clinic).where(Clinic.code == other.code))
        user = session.scalar(select(StaffUser).where(StaffUser.username == their_user))
        assert (item.price_fen, slot.capacity, clinic.active, user.active) == (3000, 5, True, True)
        assert clinic.his_key_id == f"key-{other.code}"
        assert session.scalars(select(Slot).where(Slot.item_id == other.item_id)).all() == [slot]


def test_an_operator_reads_no_clinics_internal_data(client, rt, demo_clinic):
    headers, _ = operator_headers(client, rt)
    internal = [("GET", "/bookings"), ("GET", "/patients?phone=13812345678&clinic_code=demo"),
                ("GET", "/statements"), ("GET", "/reconciliation/runs"), ("GET", "/audit-events"),
                ("GET", "/items"), ("GET", "/settings/settlement-types?clinic_code=demo"), ("GET", "/dashboard")]

    answers = {path: client.open(f"{ADMIN}{path}", method=method, headers=headers) for method, path in internal}

    assert {path: (r.status_code, r.get_json()["error"]) for path, r in answers.items()} == {
        path: (403, "role_not_allowed") for _, path in internal}
    assert not any("13812345678" in r.get_data(as_text=True) for r in answers.values())


def test_staff_and_finance_manage_nothing(client, rt, sandbox, demo_clinic):
    for role in ("staff", "finance"):
        headers, _ = staff_headers(client, rt, role)
        attempts = [client.get(f"{ADMIN}/users", headers=headers),
                    client.post(f"{ADMIN}/users", headers=headers, json={
                        "username": new_code("u"), "role": "admin", "clinic_codes": ["demo"],
                        "password": "takeover-password"}),
                    client.post(f"{ADMIN}/items", json={"code": "S1", "name": "s", "price_fen": 1}, headers=headers),
                    client.post(f"{ADMIN}/clinics", json={"code": new_code(), "name": "x"}, headers=headers)]
        assert [(a.status_code, a.get_json()["error"]) for a in attempts] == [(403, "role_not_allowed")] * 4, role


def test_no_secret_reaches_a_response_a_log_line_or_the_audit_trail(client, rt, sandbox, demo_clinic, caplog):
    # Every logger at DEBUG (wechatpy logs its signing string, with the API key, at DEBUG: config/logging.py
    # keeps that logger at INFO whatever the level).
    caplog.set_level(logging.DEBUG)
    headers, _ = operator_headers(client, rt)
    code = new_code()
    created(client.post(f"{ADMIN}/clinics", json={"code": code, "name": "密钥诊所"}, headers=headers))
    his = sandbox_merchant(sandbox.url, "his")
    wechat, alipay = sandbox_merchant(sandbox.url, "wechat", code), sandbox_merchant(sandbox.url, "alipay", code)
    secrets_given = [his["secret"], wechat["api_key"], wechat["app_secret"],
                     alipay["app_private_key"].splitlines()[1], alipay["app_private_key"].splitlines()[-2]]

    responses = [
        client.put(f"{ADMIN}/clinics/{code}/his", headers=headers,
                   json={"base_url": f"{sandbox.url}/his/", "key_id": his["key_id"], "secret": his["secret"]}),
        client.post(f"{ADMIN}/clinics/{code}/his/check", headers=headers),
        client.post(f"{ADMIN}/clinics/{code}/channel-apps", json=wechat_app_body(sandbox.url, wechat),
                    headers=headers),
        client.post(f"{ADMIN}/clinics/{code}/channel-apps", json=alipay_app_body(sandbox.url, alipay),
                    headers=headers),
        # A refused key is not echoed back either.
        client.post(f"{ADMIN}/clinics/{code}/channel-apps", headers=headers,
                    json=wechat_app_body(sandbox.url, wechat, api_key=wechat["api_key"][:31])),
    ]
    apps = client.get(f"{ADMIN}/clinics/{code}/channel-apps", headers=headers).get_json()
    responses += [client.post(f"{ADMIN}/channel-apps/{a['id']}/check", headers=headers) for a in apps]
    responses.append(client.get(f"{ADMIN}/clinics/{code}", headers=headers))

    assert [r.status_code for r in responses[:5]] == [200, 200, 201, 201, 422]
    assert all(r.get_json()["ok"] for r in responses[5:7])
    seen = "".join(r.get_data(as_text=True) for r in responses) + caplog.text
    with rt.db.session() as session:
        clinic_id = session.scalar(select(Clinic.id).where(Clinic.code == code))
        audit = [str(e.before) + str(e.after) + str(e.note)
                 for e in session.scalars(select(AuditEvent).where(AuditEvent.clinic_id == clinic_id))]
    assert len(audit) >= 5
    leaked = [secret[:8] for secret in secrets_given if secret in seen or any(secret in a for a in audit)]
    assert leaked == []
    assert wechat["api_key"][:31] not in seen
