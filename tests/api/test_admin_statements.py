"""Finance over HTTP: generate a month's statements, export them, check them, settle them in a batch."""
from __future__ import annotations

import codecs
import csv
import dataclasses
import io
import uuid
from datetime import datetime, timedelta, timezone

import openpyxl
import pytest
from sqlalchemy import select

from app.db.models import Statement
from app.factory import create_app
from app.services.common.principals import StaffPrincipal
from app.services.people.staff_auth import create_user
from app.services.settlement import settlements as settlement_service
from app.services.settlement import statements as statement_service
from tests.api.test_admin_role_matrix import Call, Case
from tests.integration.statement_helpers import StatementClinic, shanghai

ADMIN = "/api/admin/v1"
PASSWORD = "statement-test-password"
BANK = {"name": "某某口腔诊所有限公司", "bank": "招商银行上海分行", "account_no": "6225880012345678"}


@pytest.fixture(scope="module")
def window_month() -> int:
    return datetime.now(timezone(timedelta(hours=8))).month


@pytest.fixture(scope="module")
def open_client(settings, window_month):
    """The platform with this Asia/Shanghai month a settlement month."""
    flask_app = create_app(dataclasses.replace(settings, SETTLEMENT_MONTHS=str(window_month)))
    yield flask_app.test_client()
    flask_app.extensions["hpay_runtime"].close()


@pytest.fixture(scope="module")
def closed_client(settings, window_month):
    """The platform with every month but this one a settlement month."""
    months = ",".join(str(month) for month in range(1, 13) if month != window_month)
    flask_app = create_app(dataclasses.replace(settings, SETTLEMENT_MONTHS=months))
    yield flask_app.test_client()
    flask_app.extensions["hpay_runtime"].close()


def staff_headers(client, rt, role: str, *clinics: StatementClinic) -> dict:
    username = f"{role}-{uuid.uuid4().hex[:10]}"
    with rt.db.session() as session:
        create_user(session, username, PASSWORD, role, [clinic.code for clinic in clinics], created_by="test")
    resp = client.post(f"{ADMIN}/auth/login", json={"username": username, "password": PASSWORD})
    assert resp.status_code == 200, resp.get_json()
    return {"Authorization": f"Bearer {resp.get_json()['token']}"}


def generated(client, headers, channel: str, month: str = "2025-03") -> dict:
    resp = client.post(f"{ADMIN}/statements", json={"month": month, "channel": channel}, headers=headers)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def checked(client, headers, channel: str) -> dict:
    statement = generated(client, headers, channel)
    resp = client.post(f"{ADMIN}/statements/{statement['id']}/check", headers=headers)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def refusal(resp) -> tuple[int, str | None]:
    return resp.status_code, (resp.get_json() or {}).get("error")


def test_finance_generates_exports_checks_and_settles_the_months_statements(open_client, rt):
    client, clinic = open_client, StatementClinic(rt, "http")
    headers = staff_headers(client, rt, "finance", clinic)
    wechat_orders = [clinic.order("wechat", 6000, shanghai(2025, 3, 3, 10, 0), patient="张小三"),
                     clinic.order("wechat", 1999, shanghai(2025, 3, 31, 20, 0), patient="李四")]
    clinic.order("alipay", 2001, shanghai(2025, 3, 12, 9, 30))
    clinic.order("wechat", 5000, shanghai(2025, 4, 1, 0, 0))

    wechat = generated(client, headers, "wechat")
    alipay = generated(client, headers, "alipay")

    assert {key: wechat[key] for key in ("month", "channel", "status", "line_count", "total_fen", "clinic_code")} == {
        "month": "2025-03", "channel": "wechat", "status": "generated", "line_count": 2, "total_fen": 7999,
        "clinic_code": clinic.code}
    assert (alipay["line_count"], alipay["total_fen"]) == (1, 2001)
    listed = client.get(f"{ADMIN}/statements", query_string={"month": "2025-03"}, headers=headers).get_json()
    assert sorted((s["channel"], s["id"]) for s in listed["items"]) == [("alipay", alipay["id"]),
                                                                        ("wechat", wechat["id"])]

    as_csv = client.get(f"{ADMIN}/statements/{wechat['id']}/export", query_string={"format": "csv"}, headers=headers)
    as_xlsx = client.get(f"{ADMIN}/statements/{wechat['id']}/export", query_string={"format": "xlsx"},
                         headers=headers)
    assert as_csv.status_code == as_xlsx.status_code == 200
    assert as_csv.mimetype == "text/csv" and as_xlsx.mimetype.endswith("spreadsheetml.sheet")
    assert "attachment" in as_xlsx.headers["Content-Disposition"] and ".xlsx" in as_xlsx.headers["Content-Disposition"]
    assert as_csv.data.startswith(codecs.BOM_UTF8)
    csv_rows = list(csv.reader(io.StringIO(as_csv.data.decode("utf-8-sig"), newline="")))
    sheet = openpyxl.load_workbook(io.BytesIO(as_xlsx.data), read_only=True).worksheets[0]
    xlsx_rows = [["" if v is None else f"{v:.2f}" if isinstance(v, (int, float)) else v for v in row]
                 for row in sheet.iter_rows(values_only=True)]
    assert csv_rows == xlsx_rows
    assert csv_rows[0][0] == "渠道订单号" and csv_rows[0][-2:] == ["渠道采购价", "金额"]
    assert [row[0] for row in csv_rows[1:3]] == [order["channel_trade_no"] for order in wechat_orders]
    assert [row[3] for row in csv_rows[1:3]] == ["张*三", "李*"]
    assert csv_rows[3][0] == "合计" and csv_rows[3][-2:] == ["79.99", "79.99"]

    for statement in (wechat, alipay):
        resp = client.post(f"{ADMIN}/statements/{statement['id']}/check", headers=headers)
        assert resp.status_code == 200 and resp.get_json()["status"] == "checked"
    body = {"statement_ids": [wechat["id"], alipay["id"]], "method": "cash", "bank_account": BANK,
            "invoice_type": "normal"}
    resp = client.post(f"{ADMIN}/settlements", json=body, headers={**headers, "Idempotency-Key": "settle-1"})

    assert resp.status_code == 201, resp.get_json()
    settlement = resp.get_json()
    assert (settlement["amount_fen"], settlement["invoice_amount_fen"], settlement["status"]) == (
        10000, 9434, "pending_payment")
    assert settlement["bank_account"]["account_no"] == "************5678" and "coupon" not in settlement
    again = client.post(f"{ADMIN}/settlements", json=body, headers={**headers, "Idempotency-Key": "settle-1"})
    assert (again.status_code, again.get_json()) == (201, settlement)
    assert refusal(client.post(f"{ADMIN}/settlements", json=body, headers=headers)) == (
        409, "statement_already_settled")
    assert refusal(client.post(f"{ADMIN}/statements", json={"month": "2025-03", "channel": "wechat"},
                               headers=headers)) == (409, "statement_settled")
    shown = client.get(f"{ADMIN}/statements/{wechat['id']}", headers=headers).get_json()
    assert (shown["status"], shown["settlement_id"]) == ("settled", settlement["id"])
    assert client.get(f"{ADMIN}/settlements/{settlement['id']}", headers=headers).get_json() == settlement


def test_a_coupon_settlement_answers_with_the_coupon(open_client, rt):
    client, clinic = open_client, StatementClinic(rt, "coupon")
    headers = staff_headers(client, rt, "finance", clinic)
    clinic.order("alipay", 19900, shanghai(2025, 3, 3, 10, 0))
    resp = client.post(f"{ADMIN}/settlements", json={"statement_ids": [checked(client, headers, "alipay")["id"]],
                                                     "method": "coupon"}, headers=headers)
    assert resp.status_code == 201, resp.get_json()
    coupon = resp.get_json()["coupon"]
    today = datetime.now(timezone(timedelta(hours=8))).date()
    assert coupon["value_fen"] == 19900 and coupon["code"].startswith("CP")
    assert coupon["expires_on"][:4] == str(today.year + 3) and coupon["expires_on"][4:] in (
        today.isoformat()[4:], "-02-28")
    assert "invoice_amount_fen" not in resp.get_json()


def test_settlement_outside_the_settlement_months_is_refused(closed_client, rt):
    client, clinic = closed_client, StatementClinic(rt, "closed")
    headers = staff_headers(client, rt, "finance", clinic)
    clinic.order("wechat", 19900, shanghai(2025, 3, 3, 10, 0))
    statement = checked(client, headers, "wechat")
    resp = client.post(f"{ADMIN}/settlements", json={"statement_ids": [statement["id"]], "method": "coupon"},
                       headers=headers)
    assert refusal(resp) == (409, "settlement_window_closed")
    assert client.get(f"{ADMIN}/statements/{statement['id']}", headers=headers).get_json()["status"] == "checked"


def test_bad_requests_are_refused_with_their_reasons(open_client, rt):
    client, clinic = open_client, StatementClinic(rt, "bad")
    headers = staff_headers(client, rt, "finance", clinic)
    clinic.order("wechat", 19900, shanghai(2025, 3, 3, 10, 0))
    statement = checked(client, headers, "wechat")
    this_month = datetime.now(timezone(timedelta(hours=8))).strftime("%Y-%m")

    post = client.post
    assert refusal(post(f"{ADMIN}/statements", json={"month": this_month, "channel": "wechat"},
                        headers=headers)) == (422, "month_not_ended")
    assert refusal(post(f"{ADMIN}/statements", json={"month": "2025-3", "channel": "wechat"},
                        headers=headers)) == (422, "validation_failed")
    assert refusal(post(f"{ADMIN}/settlements", json={"statement_ids": [statement["id"]], "method": "cash",
                                                      "invoice_type": "normal"},
                        headers=headers)) == (422, "bank_account_required")
    assert refusal(post(f"{ADMIN}/settlements", json={"statement_ids": [], "method": "coupon"},
                        headers=headers)) == (422, "validation_failed")
    export = f"{ADMIN}/statements/{statement['id']}/export"
    assert refusal(client.get(export, query_string={"format": "csv", "fields": "amount,secret"},
                              headers=headers)) == (422, "unknown_export_field")
    assert refusal(client.get(export, query_string={"format": "pdf"}, headers=headers)) == (422, "validation_failed")
    chosen = client.get(export, query_string={"format": "csv", "fields": "item,amount"}, headers=headers)
    assert chosen.data.decode("utf-8-sig").splitlines() == ["项目,金额", "洁牙套餐,199.00", "合计,199.00"]


def test_an_injected_formula_leaves_the_export_as_text(open_client, rt):
    client, clinic = open_client, StatementClinic(rt, "inject")
    headers = staff_headers(client, rt, "finance", clinic)
    clinic.order("wechat", 5000, shanghai(2025, 3, 9, 14, 5), item_id=clinic.item("=cmd|' /C calc'!A0"))
    statement = generated(client, headers, "wechat")
    export = f"{ADMIN}/statements/{statement['id']}/export"
    as_csv = client.get(export, query_string={"format": "csv", "fields": "item"}, headers=headers)
    as_xlsx = client.get(export, query_string={"format": "xlsx", "fields": "item"}, headers=headers)
    assert list(csv.reader(io.StringIO(as_csv.data.decode("utf-8-sig"))))[1] == ["'=cmd|' /C calc'!A0"]
    cell = openpyxl.load_workbook(io.BytesIO(as_xlsx.data)).worksheets[0]["A2"]
    assert (cell.value, cell.data_type) == ("'=cmd|' /C calc'!A0", "s")


def test_only_finance_of_the_clinic_reaches_its_statements(open_client, rt):
    client, clinic, other = open_client, StatementClinic(rt, "mine"), StatementClinic(rt, "theirs")
    finance = staff_headers(client, rt, "finance", clinic)
    clinic.order("wechat", 19900, shanghai(2025, 3, 3, 10, 0))
    statement = generated(client, finance, "wechat")
    outsider = staff_headers(client, rt, "finance", other)
    front_desk = staff_headers(client, rt, "staff", clinic)

    assert refusal(client.get(f"{ADMIN}/statements")) == (401, "missing_token")
    assert refusal(client.get(f"{ADMIN}/statements", headers=front_desk)) == (403, "role_not_allowed")
    assert refusal(client.post(f"{ADMIN}/settlements", json={"statement_ids": [statement["id"]], "method": "coupon"},
                               headers=front_desk)) == (403, "role_not_allowed")
    for path in (f"/statements/{statement['id']}", f"/statements/{statement['id']}/lines",
                 f"/statements/{statement['id']}/export?format=csv"):
        assert refusal(client.get(ADMIN + path, headers=outsider)) == (404, "statement_not_found"), path
    assert refusal(client.post(f"{ADMIN}/statements/{statement['id']}/check", headers=outsider)) == (
        404, "statement_not_found")
    assert client.get(f"{ADMIN}/statements", headers=outsider).get_json()["items"] == []
    assert refusal(client.get(f"{ADMIN}/statements/99999999999", headers=finance)) == (404, "statement_not_found")
    lines = client.get(f"{ADMIN}/statements/{statement['id']}/lines", headers=finance).get_json()
    assert lines["total"] == 1 and lines["items"][0]["patient_phone"] == "138****5678"


# --- the role matrix (tests/api/test_admin_role_matrix.py) over these routes -----------------------

def _fresh_statement(rt, clinic: StatementClinic, *, check: bool = False, settle: bool = False) -> int:
    """A statement of `clinic` with one redeemed order, for a month it had none yet (checked, or settled as a
    coupon, when asked); returns the statement's id, or the settlement's when settled."""
    with rt.db.session() as session:
        used = set(session.scalars(select(Statement.month).where(Statement.clinic_id == clinic.id,
                                                                 Statement.channel == "wechat")))
    year, month = next((year, month) for year in range(2001, 2020) for month in range(1, 13)
                       if f"{year}-{month:02d}" not in used)
    clinic.order("wechat", 1000, shanghai(year, month, 10, 10, 0))
    setup = StaffPrincipal(user_id=0, username="statement-setup", role="finance", clinic_ids=(clinic.id,))
    statement_id = statement_service.generate_statement(rt, setup, f"{year}-{month:02d}", "wechat")["id"]
    if check or settle:
        statement_service.check_statement(rt, setup, statement_id)
    if settle:
        return settlement_service.settle(rt, setup, [statement_id], "coupon")["id"]
    return statement_id


def _demo(world) -> StatementClinic:
    return StatementClinic.existing(world.rt, "demo")


def _elsewhere(world) -> StatementClinic:
    return StatementClinic(world.rt, "matrix")


ROLE_MATRIX_CASES = {
    "admin_statements.list_statements": Case(
        lambda w: Call("GET", "/statements"),
        lambda w: Call("GET", "/statements", {"query_string": {"clinic_code": w.other.code}})),
    # January 2000 is the role matrix's own month: regenerated on every run, never settled.
    "admin_statements.create_statement": Case(
        lambda w: Call("POST", "/statements", {"json": {"month": "2000-01", "channel": "alipay"}}),
        lambda w: Call("POST", "/statements", {"json": {"month": "2000-01", "channel": "alipay",
                                                        "clinic_code": w.other.code}})),
    "admin_statements.get_statement": Case(
        lambda w: Call("GET", f"/statements/{_fresh_statement(w.rt, _demo(w))}"),
        lambda w: Call("GET", f"/statements/{_fresh_statement(w.rt, _elsewhere(w))}")),
    "admin_statements.list_lines": Case(
        lambda w: Call("GET", f"/statements/{_fresh_statement(w.rt, _demo(w))}/lines"),
        lambda w: Call("GET", f"/statements/{_fresh_statement(w.rt, _elsewhere(w))}/lines")),
    "admin_statements.export_statement": Case(
        lambda w: Call("GET", f"/statements/{_fresh_statement(w.rt, _demo(w))}/export",
                       {"query_string": {"format": "xlsx"}}),
        lambda w: Call("GET", f"/statements/{_fresh_statement(w.rt, _elsewhere(w))}/export",
                       {"query_string": {"format": "xlsx"}})),
    "admin_statements.check_statement": Case(
        lambda w: Call("POST", f"/statements/{_fresh_statement(w.rt, _demo(w))}/check"),
        lambda w: Call("POST", f"/statements/{_fresh_statement(w.rt, _elsewhere(w))}/check")),
    "admin_statements.list_settlements": Case(
        lambda w: Call("GET", "/settlements"),
        lambda w: Call("GET", "/settlements", {"query_string": {"clinic_code": w.other.code}})),
    "admin_statements.create_settlement": Case(
        lambda w: Call("POST", "/settlements", {"json": {
            "statement_ids": [_fresh_statement(w.rt, _demo(w), check=True)], "method": "coupon"}}),
        lambda w: Call("POST", "/settlements", {"json": {
            "statement_ids": [_fresh_statement(w.rt, _elsewhere(w), check=True)], "method": "coupon"}})),
    "admin_statements.get_settlement": Case(
        lambda w: Call("GET", f"/settlements/{_fresh_statement(w.rt, _demo(w), settle=True)}"),
        lambda w: Call("GET", f"/settlements/{_fresh_statement(w.rt, _elsewhere(w), settle=True)}")),
}
