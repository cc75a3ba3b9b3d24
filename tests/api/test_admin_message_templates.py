"""A channel app's message templates (`/api/admin/v1/channel-apps/{id}/message-templates`): set by the operator for
any app (every clinic's and the platform's own) or by an admin of its clinic, validated against the facts a message
can show, audited."""
from __future__ import annotations

import json
import secrets

import pytest
from sqlalchemy import select

from app.db.models import AuditEvent, Clinic, MerchantAccount, MessageTemplate
from app.services.messaging.templates import template_view
from tests.api.admin_helpers import ADMIN, label, make_user, sign_in
from tests.api.test_admin_role_matrix import Call, Case


def _app_of(rt, clinic_code: str, channel: str = "wechat") -> int:
    with rt.db.session() as session:
        clinic_id = session.scalar(select(Clinic.id).where(Clinic.code == clinic_code))
        account_id = session.scalar(select(MerchantAccount.id).where(MerchantAccount.clinic_id == clinic_id,
                                                                     MerchantAccount.channel == channel,
                                                                     MerchantAccount.active.is_(True))
                                    .order_by(MerchantAccount.id))
        if account_id is None:
            account = MerchantAccount(clinic_id=clinic_id, channel=channel, app_id=f"wx{secrets.token_hex(8)}",
                                      mch_id="1900000109", api_key=secrets.token_hex(16),
                                      app_secret=secrets.token_hex(16), sign_type="MD5",
                                      api_base_url="https://api.mch.example.test/",
                                      login_base_url="https://api.example.test/", active=True)
            session.add(account)
            session.flush()
            account_id = account.id
        return account_id


def _same_again(rt, app_id: int) -> list[dict]:
    """The app's templates as they are, to PUT back unchanged (the demo clinic's stay as other tests expect)."""
    with rt.db.session() as session:
        rows = session.scalars(select(MessageTemplate).where(MessageTemplate.merchant_account_id == app_id))
        return [{k: v for k, v in template_view(row).items() if k not in ("updated_at", "updated_by")} for row in rows]


ROLE_MATRIX_CASES = {
    "admin_message_templates.get_message_templates": Case(
        lambda w: Call("GET", f"/channel-apps/{_app_of(w.rt, 'demo')}/message-templates"),
        lambda w: Call("GET", f"/channel-apps/{_app_of(w.rt, w.other.code)}/message-templates")),
    "admin_message_templates.put_message_templates": Case(
        lambda w: Call("PUT", f"/channel-apps/{(a := _app_of(w.rt, 'demo'))}/message-templates",
                       {"json": _same_again(w.rt, a)}),
        lambda w: Call("PUT", f"/channel-apps/{_app_of(w.rt, w.other.code)}/message-templates", {"json": []})),
    "admin_message_templates.get_message_template_options": Case(
        lambda w: Call("GET", f"/channel-apps/{_app_of(w.rt, 'demo')}/message-templates/options"),
        lambda w: Call("GET", f"/channel-apps/{_app_of(w.rt, w.other.code)}/message-templates/options")),
}


@pytest.fixture()
def own_app(rt):
    """A clinic with one WeChat app, and an admin of it: (clinic code, app row id, admin headers factory)."""
    code = label("tpl")[:32]
    with rt.db.session() as session:
        clinic = Clinic(code=code, name="模板诊所", his_base_url="http://127.0.0.1:1/his/", his_key_id=f"key-{code}",
                        his_secret="not-used-but-long-enough")
        session.add(clinic)
        session.flush()
        account = MerchantAccount(clinic_id=clinic.id, channel="wechat", app_id=f"wx{secrets.token_hex(8)}",
                                  mch_id="1900000109", api_key=secrets.token_hex(16), app_secret=secrets.token_hex(16),
                                  sign_type="MD5", api_base_url="https://api.mch.example.test/",
                                  login_base_url="https://api.example.test/", active=True)
        session.add(account)
        session.flush()
        return code, account.id


@pytest.fixture()
def platform_app(rt):
    """The row id of a new platform app (owner platform, no clinic)."""
    with rt.db.session() as session:
        account = MerchantAccount(owner="platform", clinic_id=None, channel="alipay",
                                  app_id=f"2021{secrets.randbelow(10**12):012d}", name="平台支付宝",
                                  api_base_url="https://openapi.example.test/gateway.do", sign_type="RSA2",
                                  active=True)
        session.add(account)
        session.flush()
        return account.id


BILL_ENTRY = {"template_id": "TPL-BILL-1", "purpose": "bill_created",
              "fields": {"thing1": "title", "amount2": "amount", "time3": "time", "thing4": "clinic"}}


def test_an_admin_sets_the_apps_templates_and_the_change_is_audited(client, rt, own_app):
    code, app_id = own_app
    headers = sign_in(client, *make_user(rt, "admin", (code,)))
    path = f"{ADMIN}/channel-apps/{app_id}/message-templates"
    assert client.get(path, headers=headers).get_json() == []
    resp = client.put(path, json=[BILL_ENTRY, {"template_id": "TPL-PAY-1", "purpose": "payment_succeeded",
                                               "fields": {"character_string1": "order_no"},
                                               "page": "pages/orders/detail"}], headers=headers)
    assert resp.status_code == 200, resp.get_json()
    listed = client.get(path, headers=headers).get_json()
    assert [(t["purpose"], t["template_id"], t["page"]) for t in listed] == [
        ("bill_created", "TPL-BILL-1", "pages/bills/index"), ("payment_succeeded", "TPL-PAY-1", "pages/orders/detail")]
    assert listed[0]["fields"] == BILL_ENTRY["fields"]
    with rt.db.session() as session:
        event = session.scalar(select(AuditEvent).where(AuditEvent.action == "message_templates_set",
                                                        AuditEvent.target_id == str(app_id)))
        assert event.before == {"templates": []} and len(event.after["templates"]) == 2
    assert client.put(path, json=[], headers=headers).get_json() == []


@pytest.mark.parametrize(("entries", "field"), [
    ([{**BILL_ENTRY, "fields": {"thing1": "patient_phone"}}], "bill_created"),
    ([BILL_ENTRY, {**BILL_ENTRY, "template_id": "OTHER"}], "purpose"),
    ([{**BILL_ENTRY, "page": "https://evil.example/x"}], "bill_created"),
    ([{**BILL_ENTRY, "purpose": "marketing"}], "0"),
    ([{**BILL_ENTRY, "fields": {}}], "bill_created"),
])
def test_templates_that_cannot_be_used_are_refused(client, rt, own_app, entries, field):
    code, app_id = own_app
    headers = sign_in(client, *make_user(rt, "admin", (code,)))
    resp = client.put(f"{ADMIN}/channel-apps/{app_id}/message-templates", json=entries, headers=headers)
    assert resp.status_code == 422 and field in json.dumps(resp.get_json()["errors"])


def test_staff_finance_and_another_clinics_admin_may_not_see_or_set_an_apps_templates(client, rt, demo_clinic,
                                                                                      own_app):
    code, app_id = own_app
    path = f"{ADMIN}/channel-apps/{app_id}/message-templates"
    for role in ("staff", "finance"):
        headers = sign_in(client, *make_user(rt, role, (code,)))
        assert client.get(path, headers=headers).status_code == 403
        assert client.put(path, json=[BILL_ENTRY], headers=headers).status_code == 403
    elsewhere = sign_in(client, *make_user(rt, "admin", ("demo",)))
    assert client.get(path, headers=elsewhere).status_code == 404
    assert client.put(path, json=[BILL_ENTRY], headers=elsewhere).status_code == 404
    assert client.get(f"{ADMIN}/channel-apps/99999999/message-templates", headers=elsewhere).status_code == 404
    assert client.get(path).status_code == 401


def test_an_operator_sets_the_templates_of_any_clinics_app_and_of_the_platforms_own(client, rt, own_app,
                                                                                    platform_app):
    _, clinic_app = own_app
    operator = make_user(rt, "operator", ())
    headers = sign_in(client, *operator)
    alipay_entry = {"template_id": "TPL-ALI-1", "purpose": "bill_created",
                    "fields": {"keyword1": "title", "keyword2": "amount"}}
    for app_id, entry in ((clinic_app, BILL_ENTRY), (platform_app, alipay_entry)):
        path = f"{ADMIN}/channel-apps/{app_id}/message-templates"
        resp = client.put(path, json=[entry], headers=headers)
        assert resp.status_code == 200, resp.get_json()
        listed = client.get(path, headers=headers).get_json()
        assert [(t["template_id"], t["fields"]) for t in listed] == [(entry["template_id"], entry["fields"])]
        assert listed[0]["updated_by"] == operator[0]
    with rt.db.session() as session:
        event = session.scalar(select(AuditEvent).where(AuditEvent.action == "message_templates_set",
                                                        AuditEvent.target_id == str(platform_app)))
        assert event.clinic_id is None and event.actor_name == operator[0]
        assert event.after["templates"][0]["template_id"] == "TPL-ALI-1"


def test_an_admin_never_reaches_a_platform_app_nor_another_clinics(client, rt, demo_clinic, own_app, platform_app):
    code, clinic_app = own_app
    admin_of_demo = sign_in(client, *make_user(rt, "admin", ("demo",)))
    for app_id in (clinic_app, platform_app):
        for suffix in ("", "/options"):
            resp = client.get(f"{ADMIN}/channel-apps/{app_id}/message-templates{suffix}", headers=admin_of_demo)
            assert resp.status_code == 404 and resp.get_json()["error"] == "channel_app_not_found"
            assert "模板诊所" not in resp.get_data(as_text=True) and "平台支付宝" not in resp.get_data(as_text=True)
        resp = client.put(f"{ADMIN}/channel-apps/{app_id}/message-templates", json=[BILL_ENTRY],
                          headers=admin_of_demo)
        assert resp.status_code == 404
    with rt.db.session() as session:
        assert session.scalar(select(MessageTemplate.id).where(
            MessageTemplate.merchant_account_id.in_((clinic_app, platform_app)))) is None
    for role in ("staff", "finance"):
        headers = sign_in(client, *make_user(rt, role, (code,)))
        assert client.get(f"{ADMIN}/channel-apps/{clinic_app}/message-templates/options",
                          headers=headers).status_code == 403


def test_the_options_name_the_app_and_each_purposes_facts(client, rt, own_app, platform_app):
    code, clinic_app = own_app
    admin = sign_in(client, *make_user(rt, "admin", (code,)))
    options = client.get(f"{ADMIN}/channel-apps/{clinic_app}/message-templates/options", headers=admin).get_json()
    assert options["app"]["id"] == clinic_app and options["app"]["clinic_code"] == code
    assert options["app"]["channel"] == "wechat" and options["default_page"] == "pages/bills/index"
    by_purpose = {p["purpose"]: p for p in options["purposes"]}
    assert set(by_purpose) == {"bill_created", "payment_succeeded", "refund_succeeded"}
    assert "card_no" in by_purpose["bill_created"]["sources"]
    assert "card_no" not in by_purpose["refund_succeeded"]["sources"]
    assert by_purpose["bill_created"]["usual_sources"] == ["title", "amount", "time", "clinic"]
    operator = sign_in(client, *make_user(rt, "operator", ()))
    platform = client.get(f"{ADMIN}/channel-apps/{platform_app}/message-templates/options", headers=operator)
    assert platform.status_code == 200
    assert platform.get_json()["app"] == {"id": platform_app, "name": "平台支付宝", "channel": "alipay",
                                          "app_id": platform.get_json()["app"]["app_id"], "clinic_code": None}
