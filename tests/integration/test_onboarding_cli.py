"""A clinic goes live through the command line: `flask --app wsgi clinic create`, `clinic his-set` (the secret on
stdin), `clinic his-check`, `channel-app add --file` and `channel-app check` for WeChat and Alipay, `user create`
for its admin, each run as its own process against the session's database and sandbox, as automation would. The
admin it made then sets up an item with a schedule over the API, and a patient books and pays on both channels.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from app.db.models import AuditEvent, Clinic, Order, PaymentAttempt
from app.services.payments import attempts
from tests.api.admin_helpers import ADMIN, SHANGHAI, now, sign_in
from tests.api.onboarding_helpers import (
    alipay_app_body,
    app_login,
    new_code,
    sandbox_merchant,
    wechat_app_body,
)
from tests.api.order_helpers import MP, add_patient, booking, place_order

ROOT = Path(__file__).resolve().parents[2]
FLASK = str(Path(sys.executable).with_name("flask"))


@pytest.fixture(scope="module")
def env(settings):
    return {**os.environ, "HPAY_ENV": "test", "HPAY_DATABASE_URL": settings.DATABASE_URL,
            "HPAY_REDIS_URL": settings.REDIS_URL, "HPAY_SANDBOX_URL": settings.SANDBOX_URL,
            "HPAY_SECRET_KEY": settings.SECRET_KEY, "HPAY_LOG_LEVEL": "WARNING"}


def flask(env: dict, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([FLASK, "--app", "wsgi", *args], cwd=ROOT, env=env, input=stdin, capture_output=True,
                          text=True, timeout=120)


def answered(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def app_file(tmp_path: Path, name: str, body: dict) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(body))
    path.chmod(0o600)
    return str(path)


def test_a_clinic_goes_live_through_the_command_line(env, client, rt, sandbox, tmp_path):
    code = new_code("cli")
    his = sandbox_merchant(sandbox.url, "his")
    wechat, alipay = sandbox_merchant(sandbox.url, "wechat", code), sandbox_merchant(sandbox.url, "alipay", code)

    clinic = answered(flask(env, "clinic", "create", code, "命令行诊所"))
    his_set = answered(flask(env, "clinic", "his-set", code, "--base-url", f"{sandbox.url}/his/",
                             "--key-id", his["key_id"], "--secret-file", "-", stdin=his["secret"] + "\n"))
    his_check = answered(flask(env, "clinic", "his-check", code))
    apps = {channel: answered(flask(env, "channel-app", "add", "--clinic", code, "--file",
                                    app_file(tmp_path, f"{channel}.json", body)))
            for channel, body in (("wechat", wechat_app_body(sandbox.url, wechat)),
                                  ("alipay", alipay_app_body(sandbox.url, alipay)))}
    checks = {channel: answered(flask(env, "channel-app", "check", str(app["id"]))) for channel, app in apps.items()}
    admin_name = f"adm-{code}"
    admin = answered(flask(env, "user", "create", admin_name, "--role", "admin", "--clinic", code,
                           "--password-file", "-", stdin="admin-password-1\n"))

    assert (clinic["code"], clinic["active"]) == (code, True)
    assert his_set["his"]["secret"]["configured"] is True and his["secret"] not in json.dumps(his_set)
    assert his_check["ok"] is True, his_check
    assert [checks[c]["ok"] for c in ("wechat", "alipay")] == [True, True], checks
    assert wechat["api_key"] not in json.dumps(apps)
    assert (admin["role"], admin["clinic_codes"]) == ("admin", [code])
    with rt.db.session() as session:
        clinic_id = session.scalar(select(Clinic.id).where(Clinic.code == code))
        actors = set(session.scalars(select(AuditEvent.actor_type).where(AuditEvent.clinic_id == clinic_id)))
        actions = set(session.scalars(select(AuditEvent.action).where(AuditEvent.clinic_id == clinic_id)))
    assert actors == {"cli"}
    assert {"clinic_created", "clinic_his_set", "clinic_his_checked", "channel_app_created", "channel_app_checked",
            "staff_user_created"} <= actions

    # The admin the command line made runs the clinic over the API; its patients book and pay on both channels.
    headers = sign_in(client, admin_name, "admin-password-1")
    item = client.post(f"{ADMIN}/items", json={"code": "CLI01", "name": "命令行套餐", "kind": "package",
                                               "price_fen": 2300}, headers=headers).get_json()
    client.put(f"{ADMIN}/items/{item['id']}/inventory", headers=headers,
               json=[{"channel": "wechat", "quantity": 10}, {"channel": "alipay", "quantity": 10}])
    day = (now() + timedelta(days=2)).astimezone(SHANGHAI).date().isoformat()
    made = client.post(f"{ADMIN}/items/{item['id']}/schedules", headers=headers, json={
        "from": day, "to": day, "weekdays": list(range(1, 8)), "start": "14:00", "end": "15:00", "slot_minutes": 30,
        "capacity": 2}).get_json()
    assert made["created"] == 2
    for channel, app_id in (("wechat", wechat["appid"]), ("alipay", alipay["app_id"])):
        login = app_login(client, sandbox.url, code, channel, app_id, f"cli-patient-{channel}")
        patient_headers = {"Authorization": f"Bearer {login.get_json()['token']}"}
        slot = client.get(f"{MP}/items/{item['id']}/slots", query_string={"date": day},
                          headers=patient_headers).get_json()[0]
        patient = add_patient(client, patient_headers)
        order = place_order(client, patient_headers, booking(item["id"], slot["id"], patient["id"], channel))
        assert order.status_code == 201, order.get_json()
        _pay_at_the_channel(client, rt, sandbox, patient_headers, order.get_json()["order_no"])


def _pay_at_the_channel(client, rt, sandbox, headers: dict, order_no: str) -> None:
    """The patient pays in the sandbox; the platform learns it by asking the channel (no worker runs here)."""
    paying = client.post(f"{MP}/orders/{order_no}/pay", headers=headers).get_json()
    if paying["channel"] == "wechat":
        body = {"prepay_id": paying["pay_params"]["package"].removeprefix("prepay_id="), "outcome": "success"}
        path = "/sandbox/wechat/pay"
    else:
        body, path = {"trade_no": paying["trade_no"], "outcome": "success"}, "/sandbox/alipay/pay"
    assert requests.post(f"{sandbox.url}{path}", json=body, timeout=10).status_code == 200
    with rt.db.session() as session:
        attempt_id = session.scalar(select(PaymentAttempt.id).where(PaymentAttempt.out_trade_no ==
                                                                    paying["out_trade_no"]))
    assert attempts.query_attempt(rt, attempt_id) == "paid"
    with rt.db.session() as session:
        assert session.scalar(select(Order.status).where(Order.order_no == order_no)) == "paid"


def test_the_command_line_refuses_with_the_reason_and_takes_secrets_only_from_files(env, sandbox, tmp_path):
    code = new_code("cli")
    answered(flask(env, "clinic", "create", code, "拒绝诊所"))
    his = sandbox_merchant(sandbox.url, "his")

    taken = flask(env, "clinic", "create", code, "again")
    wrong_key = flask(env, "clinic", "his-set", code, "--base-url", f"{sandbox.url}/his/", "--key-id",
                      his["key_id"], "--secret-file", app_file(tmp_path, "secret", {"not": "the secret"}))
    wrong_check = flask(env, "clinic", "his-check", code)
    no_owner = flask(env, "channel-app", "add", "--file", app_file(tmp_path, "a.json", {"channel": "wechat"}))
    not_json = flask(env, "channel-app", "add", "--clinic", code, "--file", "-", stdin="{not json")
    weak = flask(env, "channel-app", "add", "--clinic", code, "--file", app_file(
        tmp_path, "weak.json", {**wechat_app_body(sandbox.url, sandbox_merchant(sandbox.url, "wechat")),
                                "api_key": "short"}))
    argv_secret = flask(env, "clinic", "his-set", code, "--base-url", f"{sandbox.url}/his/", "--key-id", "k1",
                        "--secret", "on-the-command-line")
    operator = answered(flask(env, "user", "create", f"op-{code}", "--role", "operator", "--password-file", "-",
                              stdin="operator-password\n"))

    assert taken.returncode == 1 and "clinic_code_taken" in taken.stderr
    assert wrong_key.returncode == 0  # stored: only a check can tell a wrong secret
    assert wrong_check.returncode == 1 and json.loads(wrong_check.stdout)["ok"] is False
    assert "refused our key" in json.loads(wrong_check.stdout)["detail"]
    assert no_owner.returncode == 1 and "--clinic CODE, or --platform" in no_owner.stderr
    assert not_json.returncode == 1 and "not valid" in not_json.stderr
    assert weak.returncode == 1 and "weak_secret" in weak.stderr and "short" not in weak.stderr.split("(")[-1]
    assert argv_secret.returncode == 2 and "No such option" in argv_secret.stderr
    assert (operator["role"], operator["clinic_codes"]) == ("operator", [])
