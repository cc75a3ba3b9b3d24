"""The role matrix over every admin endpoint, generated from the app's registered routes.

For each route under /api/admin/v1 (an endpoint added later is covered without editing this file):
- it declares its access (`staff_required(...)` or `public_endpoint`), and only the login is public;
- no token, or a token that is not ours, is 401;
- a signed-in user of a role the route does not admit is 403;
- every admitted role, on its own clinic's data, gets a 2xx, and a write leaves an audit event
  naming that user;
- another clinic's data is 404 (for the clinic roles: an operator is platform-wide and has no
  other clinic; that it never reaches a clinic's internal data is the 403 above).

The last two need a request that is valid for the route: a `Case` in a module-level dict
`ROLE_MATRIX_CASES` (endpoint name -> Case) of any `tests/api/test_admin_*.py` module. A route
without one fails `test_every_admin_route_has_a_case`. A Case's builders receive the `World`
below (the test client, the runtime, the sandbox, a staff user of the demo clinic, and
another clinic with an item and a paid booking) and return `Call(method, path, kwargs)`, the
path relative to /api/admin/v1 and kwargs for the Flask test client (`json=`, `query_string=`).
`World.role` is the role the call is made as (a route open to admins and operators, such as
/users, acts on different users for each).
Every matrix user's password is MATRIX_PASSWORD; a Case with `revokes_session` (logout, password
change) ends the caller's session, so the matrix signs that user in again after it.
"""
from __future__ import annotations

import glob
import importlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from admin_api.security import ADMIN_PREFIX, PUBLIC, declared_access
from app.db.models import AuditEvent, Clinic, MerchantAccount
from app.services.booking import front_desk
from app.services.people.staff_auth import OPERATOR, ROLES, create_user
from tests.api.admin_helpers import (
    ADMIN,
    SHANGHAI,
    OtherClinic,
    _user_id,
    confirmed_booking,
    label,
    make_user,
    now,
    other_clinic,
    paid_booking,
    principal,
    sign_in,
)
from tests.api.onboarding_helpers import alipay_app_body, new_code, sandbox_merchant, wechat_app_body
from tests.e2e.helpers import fresh_slot

PUBLIC_ENDPOINTS = {"admin_auth.login"}
MATRIX_PASSWORD = "matrix-password-1"


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    kwargs: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Case:
    own: Callable[[World], Call]
    # None when the route touches no clinic's data (e.g. the signed-in user's own profile), or only operators
    # call it (they are platform-wide).
    foreign: Callable[[World], Call] | None
    revokes_session: bool = False


@dataclass
class World:
    client: object
    rt: object
    sandbox: object
    staff_username: str
    other: OtherClinic
    role: str = ""

    def paid(self, **kwargs):
        return paid_booking(self.client, self.sandbox, self.rt, **kwargs)

    def booked_now(self, **kwargs):
        """A booking confirmed for now (its appointment has begun, and it is today)."""
        return confirmed_booking(self.client, self.sandbox, self.rt, self.staff_username, **kwargs)

    def user_of(self, clinic: str) -> int:
        """A new user of one clinic whom the calling role manages (an admin: a staff user; an operator: an
        admin), with a failed sign-in on record."""
        username, _ = make_user(self.rt, "admin" if self.role == OPERATOR else "staff", clinics=(clinic,))
        self.client.post(f"{ADMIN}/auth/login", json={"username": username, "password": "wrong-password"})
        return _user_id(self.rt, username)

    def fresh_clinic(self) -> str:
        """A clinic of the call's own (no HIS, no apps)."""
        code = new_code("m")
        with self.rt.db.session() as session:
            session.add(Clinic(code=code, name="矩阵诊所"))
        return code

    def demo_app(self, channel: str) -> int:
        with self.rt.db.session() as session:
            return session.scalar(select(MerchantAccount.id).join(Clinic, Clinic.id == MerchantAccount.clinic_id)
                                  .where(Clinic.code == "demo", MerchantAccount.channel == channel,
                                         MerchantAccount.active.is_(True)).order_by(MerchantAccount.id))

    def no_show(self):
        booked = self.booked_now()
        front_desk.mark_no_show(self.rt, principal(self.rt, self.staff_username), booked.order_no)
        return booked


def _appointment() -> str:
    return now().isoformat()


def _schedule() -> dict:
    first = (now() + timedelta(days=30)).astimezone(SHANGHAI).date()
    return {"from": first.isoformat(), "to": (first + timedelta(days=6)).isoformat(), "weekdays": [1, 3, 5],
            "start": "09:00", "end": "11:00", "slot_minutes": 60, "capacity": 3}


def _new_user(w: World) -> dict:
    role = "admin" if w.role == OPERATOR else "staff"
    return {"username": label("matrix-new"), "role": role, "clinic_codes": ["demo"], "password": "new-password-1"}


ROLE_MATRIX_CASES = {
    "admin_auth.me": Case(lambda w: Call("GET", "/auth/me"), None),
    "admin_auth.logout": Case(lambda w: Call("POST", "/auth/logout"), None, revokes_session=True),
    "admin_auth.change_password": Case(
        lambda w: Call("POST", "/auth/password", {"json": {"current_password": MATRIX_PASSWORD,
                                                           "new_password": MATRIX_PASSWORD}}),
        None, revokes_session=True),
    "admin_users.unlock": Case(
        lambda w: Call("POST", f"/users/{w.user_of('demo')}/unlock"),
        lambda w: Call("POST", f"/users/{w.user_of(w.other.code)}/unlock")),
    "admin_bookings.list_bookings": Case(
        lambda w: Call("GET", "/bookings", {"query_string": {"status": "paid"}}),
        lambda w: Call("GET", "/bookings", {"query_string": {"clinic_code": w.other.code}})),
    "admin_bookings.get_booking": Case(
        lambda w: Call("GET", f"/bookings/{w.paid().order_no}"),
        lambda w: Call("GET", f"/bookings/{w.other.order_no}")),
    "admin_bookings.confirm": Case(
        lambda w: Call("POST", f"/bookings/{(p := w.paid()).order_no}/confirm",
                       {"json": {"patient_id": p.patient_id, "appointment_at": _appointment()}}),
        lambda w: Call("POST", f"/bookings/{w.other.order_no}/confirm",
                       {"json": {"new_patient": {"name": "某人", "phone": "13800009999"},
                                 "appointment_at": _appointment()}})),
    "admin_bookings.no_show": Case(
        lambda w: Call("POST", f"/bookings/{w.booked_now().order_no}/no-show"),
        lambda w: Call("POST", f"/bookings/{w.other.order_no}/no-show")),
    "admin_bookings.reschedule": Case(
        lambda w: Call("POST", f"/bookings/{w.no_show().order_no}/reschedule",
                       {"json": {"appointment_at": _appointment()}}),
        lambda w: Call("POST", f"/bookings/{w.other.order_no}/reschedule",
                       {"json": {"appointment_at": _appointment()}})),
    "admin_bookings.cancel": Case(
        lambda w: Call("POST", f"/bookings/{w.paid().order_no}/cancel", {"json": {"reason": "矩阵测试"}}),
        lambda w: Call("POST", f"/bookings/{w.other.order_no}/cancel", {"json": {"reason": "矩阵测试"}})),
    "admin_bookings.redeem": Case(
        lambda w: Call("POST", f"/orders/{w.booked_now().order_no}/redeem", {"json": {}}),
        lambda w: Call("POST", f"/orders/{w.other.order_no}/redeem", {"json": {}})),
    "admin_clinic.search_patients": Case(
        lambda w: Call("GET", "/patients", {"query_string": {"phone": "13812345678"}}),
        lambda w: Call("GET", "/patients", {"query_string": {"phone": "13800009999", "clinic_code": w.other.code}})),
    "admin_clinic.get_inventory": Case(
        lambda w: Call("GET", f"/items/{fresh_slot(w.rt, 1)[0]}/inventory"),
        lambda w: Call("GET", f"/items/{w.other.item_id}/inventory")),
    "admin_clinic.put_inventory": Case(
        lambda w: Call("PUT", f"/items/{fresh_slot(w.rt, 1)[0]}/inventory",
                       {"json": [{"channel": "wechat", "quantity": 20}]}),
        lambda w: Call("PUT", f"/items/{w.other.item_id}/inventory",
                       {"json": [{"channel": "wechat", "quantity": 20}]})),
    "admin_clinic.get_settlement_types": Case(
        lambda w: Call("GET", "/settings/settlement-types"),
        lambda w: Call("GET", "/settings/settlement-types", {"query_string": {"clinic_code": w.other.code}})),
    # Writes the defaults, so that the demo clinic's settings stay as other tests expect them.
    "admin_clinic.put_settlement_types": Case(
        lambda w: Call("PUT", "/settings/settlement-types",
                       {"json": [{"channel": "alipay", "count_in_cash_flow": True, "count_in_revenue": True}]}),
        lambda w: Call("PUT", "/settings/settlement-types",
                       {"query_string": {"clinic_code": w.other.code},
                        "json": [{"channel": "alipay", "count_in_cash_flow": True, "count_in_revenue": True}]})),
    "admin_users.list_users": Case(lambda w: Call("GET", "/users"), None),
    "admin_users.create_user": Case(
        lambda w: Call("POST", "/users", {"json": _new_user(w)}),
        lambda w: Call("POST", "/users", {"json": {**_new_user(w), "clinic_codes": [w.other.code]}})),
    "admin_users.update_user": Case(
        lambda w: Call("PATCH", f"/users/{w.user_of('demo')}", {"json": {"active": False}}),
        lambda w: Call("PATCH", f"/users/{w.user_of(w.other.code)}", {"json": {"active": False}})),
    "admin_catalog.list_items": Case(
        lambda w: Call("GET", "/items"),
        lambda w: Call("GET", "/items", {"query_string": {"clinic_code": w.other.code}})),
    "admin_catalog.create_item": Case(
        lambda w: Call("POST", "/items", {"json": {"code": label("M")[:30], "name": "矩阵项目", "price_fen": 100}}),
        lambda w: Call("POST", "/items", {"json": {"clinic_code": w.other.code, "code": "M1", "name": "矩阵",
                                                   "price_fen": 100}})),
    "admin_catalog.update_item": Case(
        lambda w: Call("PATCH", f"/items/{fresh_slot(w.rt, 1)[0]}", {"json": {"description": "矩阵测试"}}),
        lambda w: Call("PATCH", f"/items/{w.other.item_id}", {"json": {"description": "矩阵测试"}})),
    "admin_catalog.post_schedule": Case(
        lambda w: Call("POST", f"/items/{fresh_slot(w.rt, 1)[0]}/schedules", {"json": _schedule()}),
        lambda w: Call("POST", f"/items/{w.other.item_id}/schedules", {"json": _schedule()})),
    "admin_catalog.list_slots": Case(
        lambda w: Call("GET", f"/items/{fresh_slot(w.rt, 1)[0]}/slots",
                       {"query_string": {"from": now().date().isoformat(), "to": now().date().isoformat()}}),
        lambda w: Call("GET", f"/items/{w.other.item_id}/slots",
                       {"query_string": {"from": now().date().isoformat(), "to": now().date().isoformat()}})),
    "admin_catalog.update_slot": Case(
        lambda w: Call("PATCH", f"/slots/{fresh_slot(w.rt, 1)[1]}", {"json": {"capacity": 5}}),
        lambda w: Call("PATCH", f"/slots/{w.other.slot_id}", {"json": {"capacity": 5}})),
    "admin_onboarding.list_clinics": Case(lambda w: Call("GET", "/clinics"), None),
    "admin_onboarding.create_clinic": Case(
        lambda w: Call("POST", "/clinics", {"json": {"code": new_code("m"), "name": "矩阵诊所"}}), None),
    "admin_onboarding.get_clinic": Case(lambda w: Call("GET", "/clinics/demo"), None),
    "admin_onboarding.update_clinic": Case(
        lambda w: Call("PATCH", f"/clinics/{w.other.code}", {"json": {"name": "别家诊所 renamed"}}), None),
    "admin_onboarding.set_his": Case(
        lambda w: Call("PUT", f"/clinics/{w.fresh_clinic()}/his",
                       {"json": {"base_url": f"{w.sandbox.url}/his/", "key_id": f"k-{new_code()}",
                                 "secret": "a-long-enough-his-secret"}}), None),
    "admin_onboarding.check_his": Case(lambda w: Call("POST", "/clinics/demo/his/check"), None),
    "admin_onboarding.list_clinic_apps": Case(lambda w: Call("GET", "/clinics/demo/channel-apps"), None),
    "admin_onboarding.create_clinic_app": Case(
        lambda w: Call("POST", f"/clinics/{w.fresh_clinic()}/channel-apps",
                       {"json": wechat_app_body(w.sandbox.url, sandbox_merchant(w.sandbox.url, "wechat"))}), None),
    "admin_onboarding.list_platform_apps": Case(lambda w: Call("GET", "/platform/channel-apps"), None),
    "admin_onboarding.create_platform_app": Case(
        lambda w: Call("POST", "/platform/channel-apps",
                       {"json": alipay_app_body(w.sandbox.url, sandbox_merchant(w.sandbox.url, "alipay"))}), None),
    "admin_onboarding.get_app": Case(lambda w: Call("GET", f"/channel-apps/{w.demo_app('wechat')}"), None),
    "admin_onboarding.update_app": Case(
        lambda w: Call("PATCH", f"/channel-apps/{w.demo_app('alipay')}", {"json": {"refund_window_days": 365}}),
        None),
    "admin_onboarding.check_app": Case(lambda w: Call("POST", f"/channel-apps/{w.demo_app('wechat')}/check"), None),
    "admin_clinic.list_audit_events": Case(
        lambda w: Call("GET", "/audit-events", {"query_string": {"limit": 5}}),
        lambda w: Call("GET", "/audit-events", {"query_string": {"clinic_code": w.other.code}})),
}


def all_cases() -> dict[str, Case]:
    cases: dict[str, Case] = {}
    for path in sorted(glob.glob(os.path.join(os.path.dirname(__file__), "test_admin_*.py"))):
        module = importlib.import_module(f"tests.api.{os.path.basename(path)[:-3]}")
        cases.update(getattr(module, "ROLE_MATRIX_CASES", {}))
    return cases


def admin_routes(app) -> list[tuple[str, str, object]]:
    """(endpoint, method, rule) of every admin route."""
    return sorted((rule.endpoint, method, rule) for rule in app.url_map.iter_rules()
                  if rule.rule.startswith(ADMIN_PREFIX + "/")
                  for method in sorted(rule.methods - {"HEAD", "OPTIONS"}))


# A value each path converter accepts (a value it refuses is the router's 404, before any auth).
CONVERTER_SAMPLES = {"int": "1", "order_no": "B20250101000000000000", "refund_request_no": "R20250101000000000000"}


def placeholder_path(rule) -> str:
    """The rule with every variable filled in (auth is checked before anything is looked up)."""
    return re.sub(r"<(?:(\w+):)?\w+>", lambda m: CONVERTER_SAMPLES.get(m.group(1), "X"), rule.rule)


@pytest.fixture(scope="module")
def users(app, rt, demo_clinic):
    """role -> (headers, username); a revoking call replaces the role's headers with a fresh sign-in."""
    client = app.test_client()
    usernames = {role: label(f"matrix-{role}") for role in ROLES}
    with rt.db.session() as session:
        for role, username in usernames.items():
            create_user(session, username, MATRIX_PASSWORD, role, [] if role == OPERATOR else ["demo"],
                        created_by="test")
    return {role: (sign_in(client, username, MATRIX_PASSWORD), username) for role, username in usernames.items()}


def _renew_session(client, users: dict, role: str) -> None:
    users[role] = (sign_in(client, users[role][1], MATRIX_PASSWORD), users[role][1])


@pytest.fixture(scope="module")
def world(app, rt, sandbox, users):
    return World(app.test_client(), rt, sandbox, users["staff"][1], other_clinic(rt))


def test_every_admin_route_declares_its_access_and_only_the_login_is_public(app):
    undeclared = [endpoint for endpoint, _, _ in admin_routes(app)
                  if declared_access(app.view_functions[endpoint]) is None]
    public = {endpoint for endpoint, _, _ in admin_routes(app)
              if declared_access(app.view_functions[endpoint]) == PUBLIC}
    assert not undeclared, f"admin endpoints without staff_required: {undeclared}"
    assert public == PUBLIC_ENDPOINTS


def test_every_admin_route_has_a_case(app):
    cases = all_cases()
    missing = [endpoint for endpoint, _, _ in admin_routes(app)
               if endpoint not in cases and endpoint not in PUBLIC_ENDPOINTS]
    assert not missing, f"add ROLE_MATRIX_CASES entries for {missing}"


def test_no_token_or_a_foreign_token_is_401(app, sandbox, demo_clinic):
    from tests.api.mp_helpers import login

    client = app.test_client()
    mp_token = login(client, sandbox, "wechat", openid=f"matrix-{os.getpid()}")["token"]
    wrong = []
    for endpoint, method, rule in admin_routes(app):
        if endpoint in PUBLIC_ENDPOINTS:
            continue
        for headers in ({}, {"Authorization": f"Bearer {mp_token}"}, {"Authorization": "Bearer nonsense"},
                        {"Authorization": "Basic abc"}):
            resp = client.open(placeholder_path(rule), method=method, headers=headers, json={"x": 1})
            if resp.status_code != 401:
                wrong.append(f"{method} {rule.rule} with {headers or 'no token'} -> {resp.status_code}")
    assert not wrong, "\n".join(wrong)


def test_a_role_not_admitted_is_403(app, users):
    client = app.test_client()
    wrong = []
    for endpoint, method, rule in admin_routes(app):
        access = declared_access(app.view_functions[endpoint])
        if access == PUBLIC:
            continue
        for role in set(ROLES) - set(access):
            resp = client.open(placeholder_path(rule), method=method, headers=users[role][0], json={"x": 1})
            if resp.status_code != 403 or resp.get_json().get("error") != "role_not_allowed":
                wrong.append(f"{method} {rule.rule} as {role} -> {resp.status_code}")
    assert not wrong, "\n".join(wrong)


def _audit_count(rt, username: str) -> int:
    with rt.db.session() as session:
        return session.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.actor_name == username))


def test_each_admitted_role_gets_its_clinics_data_and_each_write_is_audited(app, rt, users, world):
    cases = all_cases()
    wrong = []
    for endpoint, _method, _rule in admin_routes(app):
        access = declared_access(app.view_functions[endpoint])
        if access == PUBLIC or endpoint not in cases:
            continue
        for role in access:
            world.role = role
            call = cases[endpoint].own(world)
            audited_before = _audit_count(rt, users[role][1])
            resp = world.client.open(ADMIN + call.path, method=call.method, headers=users[role][0], **call.kwargs)
            if not 200 <= resp.status_code < 300:
                wrong.append(f"{call.method} {call.path} as {role} -> {resp.status_code} {resp.get_json()}")
            elif call.method != "GET" and _audit_count(rt, users[role][1]) <= audited_before:
                wrong.append(f"{call.method} {call.path} as {role} left no audit event")
            if cases[endpoint].revokes_session:
                if world.client.get(f"{ADMIN}/auth/me", headers=users[role][0]).status_code != 401:
                    wrong.append(f"{call.method} {call.path} as {role} left the session usable")
                _renew_session(world.client, users, role)
    assert not wrong, "\n".join(wrong)


def test_another_clinics_data_is_404(app, users, world):
    cases = all_cases()
    wrong = []
    for endpoint, _method, _rule in admin_routes(app):
        access = declared_access(app.view_functions[endpoint])
        if access == PUBLIC or endpoint not in cases or cases[endpoint].foreign is None:
            continue
        for role in set(access) - {OPERATOR}:
            world.role = role
            call = cases[endpoint].foreign(world)
            resp = world.client.open(ADMIN + call.path, method=call.method, headers=users[role][0], **call.kwargs)
            if resp.status_code != 404:
                wrong.append(f"{call.method} {call.path} as {role} -> {resp.status_code} {resp.get_json()}")
            elif world.other.order_no in resp.get_data(as_text=True):
                wrong.append(f"{call.method} {call.path} as {role} showed the other clinic's order")
    assert not wrong, "\n".join(wrong)


def test_an_admin_view_that_declares_no_access_is_refused_at_request_time():
    from flask import Flask
    from flask_smorest import Api, Blueprint

    from admin_api.security import refuse_undeclared_endpoints, staff_required
    from app.errors import register_error_handlers

    flask_app = Flask("guard-probe")
    flask_app.config.update(API_TITLE="probe", API_VERSION="1", OPENAPI_VERSION="3.0.3")
    blp = Blueprint("probe", __name__, url_prefix=ADMIN_PREFIX)

    @blp.route("/forgotten")
    def forgotten():
        return {"secret": True}

    @blp.route("/declared")
    @staff_required("admin")
    def declared():
        return {"secret": True}

    blp.before_request(refuse_undeclared_endpoints)
    Api(flask_app).register_blueprint(blp)
    register_error_handlers(flask_app)
    client = flask_app.test_client()

    refused = client.get(f"{ADMIN_PREFIX}/forgotten")
    assert (refused.status_code, refused.get_json()["error"]) == (403, "access_undeclared")
    assert client.get(f"{ADMIN_PREFIX}/declared").status_code == 401
