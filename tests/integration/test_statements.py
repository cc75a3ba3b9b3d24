"""Monthly statements and their settlement, through the services on the real PostgreSQL database."""
from __future__ import annotations

import codecs
import csv
import dataclasses
import io
import threading
from datetime import UTC, date, datetime

import openpyxl
import pytest
from sqlalchemy import select

from app.db.models import AuditEvent, Coupon, Settlement, Statement
from app.domain.errors import Conflict, DomainError, InvalidInput, NotFound
from app.runtime import Runtime
from app.services.common.principals import StaffPrincipal
from app.services.settlement import settlements, statement_export, statements
from tests.integration.statement_helpers import StatementClinic, shanghai

# Every test here works on March 2025, as seen from inside the April 2025 settlement window.
QUARTERLY = "1,4,7,10"
IN_APRIL = datetime(2025, 4, 10, 2, 0, tzinfo=UTC)
IN_MAY = datetime(2025, 5, 10, 2, 0, tzinfo=UTC)
CASH_ACCOUNT = {"name": "某某口腔诊所有限公司", "bank": "招商银行上海分行", "account_no": "6225 8800 1234 5678"}


@pytest.fixture(scope="module")
def rt(settings):
    """The platform's runtime with the production settlement months (the test settings open every month)."""
    runtime = Runtime(dataclasses.replace(settings, SETTLEMENT_MONTHS=QUARTERLY))
    yield runtime
    runtime.close()


def finance(clinic: StatementClinic, *more: StatementClinic) -> StaffPrincipal:
    return StaffPrincipal(user_id=901, username="finance-test", role="finance",
                          clinic_ids=(clinic.id, *(other.id for other in more)))


def generate(rt, clinic, channel="wechat", month="2025-03") -> dict:
    return statements.generate_statement(rt, finance(clinic), month, channel, now=IN_APRIL)


def checked(rt, clinic, channel="wechat") -> dict:
    statement = generate(rt, clinic, channel)
    return statements.check_statement(rt, finance(clinic), statement["id"])


def lines_of(rt, clinic, statement_id) -> dict[str, dict]:
    return {line["order_no"]: line
            for line in statements.list_lines(rt, finance(clinic), statement_id, limit=1000)["items"]}


def test_a_statement_lists_the_months_redeemed_orders_of_its_channel_and_their_total(rt):
    clinic = StatementClinic(rt, "lines")
    wechat_in = [
        clinic.order("wechat", 19900, shanghai(2025, 3, 1, 0, 0), patient="张小三", phone="13812345678"),
        clinic.order("wechat", 5000, shanghai(2025, 3, 15, 10, 30), patient="李四", appointment_from_slot=True),
        clinic.order("wechat", 99900, shanghai(2025, 3, 31, 23, 59, 59), patient="欧阳小明"),
    ]
    alipay_in = [clinic.order("alipay", 19900, shanghai(2025, 3, 2, 9, 0)),
                 clinic.order("alipay", 1, shanghai(2025, 3, 20, 16, 0))]
    # Around the month's edges in Shanghai, not yet redeemed, refunded after redemption, not a booking.
    clinic.order("wechat", 700, shanghai(2025, 2, 28, 23, 59, 59))
    clinic.order("wechat", 800, shanghai(2025, 4, 1, 0, 0))
    clinic.order("wechat", 900, None, status="booked")
    clinic.order("wechat", 1000, shanghai(2025, 3, 5, 10, 0), status="refunded")
    clinic.order("wechat", 1100, shanghai(2025, 3, 5, 11, 0), status="completed", order_type="topup")

    wechat = generate(rt, clinic, "wechat")
    alipay = generate(rt, clinic, "alipay")

    assert (wechat["month"], wechat["channel"], wechat["status"]) == ("2025-03", "wechat", "generated")
    assert (wechat["line_count"], wechat["total_fen"]) == (3, 19900 + 5000 + 99900)
    assert (alipay["line_count"], alipay["total_fen"]) == (2, 19900 + 1)
    wechat_lines = lines_of(rt, clinic, wechat["id"])
    assert set(wechat_lines) == {order["order_no"] for order in wechat_in}
    assert set(lines_of(rt, clinic, alipay["id"])) == {order["order_no"] for order in alipay_in}
    for order in wechat_in:
        line = wechat_lines[order["order_no"]]
        assert line["channel_trade_no"] == order["channel_trade_no"]
        assert line["purchase_price_fen"] == line["amount_fen"] == order["amount_fen"]
        assert line["redeemed_at"] == order["redeemed_at"]
        assert line["appointment_at"] == order["appointment_at"]
        assert (line["item_name"], line["channel"]) == ("洁牙套餐", "wechat")
    first, _, last = (wechat_lines[order["order_no"]] for order in wechat_in)
    assert (first["patient_name"], first["patient_phone"]) == ("张*三", "138****5678")
    assert last["patient_name"] == "欧**明"
    listed = statements.list_statements(rt, finance(clinic), month="2025-03")
    assert listed["total"] == 2
    assert {(s["channel"], s["total_fen"]) for s in listed["items"]} == {("wechat", 124800), ("alipay", 19901)}


def test_only_a_month_that_has_ended_gets_a_statement(rt):
    clinic = StatementClinic(rt, "month")
    with pytest.raises(InvalidInput) as refused:
        statements.generate_statement(rt, finance(clinic), "2025-04", "wechat", now=IN_APRIL)
    assert refused.value.code == "month_not_ended"
    with pytest.raises(InvalidInput) as refused:
        statements.generate_statement(rt, finance(clinic), "2025-03", "cash", now=IN_APRIL)
    assert refused.value.code == "invalid_channel"


def test_regenerating_replaces_the_lines_and_the_statement_must_be_checked_again(rt):
    clinic = StatementClinic(rt, "regen")
    clinic.order("wechat", 19900, shanghai(2025, 3, 3, 10, 0))
    first = checked(rt, clinic)
    assert first["status"] == "checked" and first["checked_by"] == "finance-test"
    late = clinic.order("wechat", 5000, shanghai(2025, 3, 30, 10, 0))

    again = generate(rt, clinic)

    assert again["id"] == first["id"]
    assert (again["status"], again["line_count"], again["total_fen"]) == ("generated", 2, 24900)
    assert again["checked_at"] is None
    assert late["order_no"] in lines_of(rt, clinic, again["id"])
    with rt.db.session() as session:
        actions = list(session.scalars(select(AuditEvent.action).where(AuditEvent.target_type == "statement",
                                                                       AuditEvent.target_id == str(first["id"]))
                                       .order_by(AuditEvent.id)))
    assert actions == ["statement.generated", "statement.checked", "statement.regenerated"]


def test_checking_twice_changes_nothing_and_another_clinics_statement_is_not_found(rt):
    clinic, other = StatementClinic(rt, "check"), StatementClinic(rt, "other")
    clinic.order("wechat", 19900, shanghai(2025, 3, 3, 10, 0))
    statement = checked(rt, clinic)
    assert statements.check_statement(rt, finance(clinic), statement["id"]) == statement
    with pytest.raises(NotFound):
        statements.check_statement(rt, finance(other), statement["id"])
    with pytest.raises(NotFound):
        statement_export.export_statement(rt, finance(other), statement["id"], "csv")


def _bytes(exported) -> bytes:
    with exported.content as content:
        return content.read()


def _csv_rows(exported) -> list[list[str]]:
    data = _bytes(exported)
    assert data.startswith(codecs.BOM_UTF8), "Excel needs the BOM to read UTF-8"
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def _xlsx_cells(exported) -> list[tuple]:
    workbook = openpyxl.load_workbook(io.BytesIO(_bytes(exported)), read_only=True)
    return list(workbook.worksheets[0].iter_rows(values_only=True))


def _xlsx_rows(exported) -> list[list[str]]:
    # Money cells are numbers (finance adds them up); as text they read like the CSV's yuan.
    return [["" if value is None else f"{value:.2f}" if isinstance(value, (int, float)) else value for value in row]
            for row in _xlsx_cells(exported)]


def test_the_csv_and_xlsx_exports_hold_the_same_rows_headers_and_total(rt):
    clinic = StatementClinic(rt, "export")
    orders = [clinic.order("alipay", 19900, shanghai(2025, 3, 2, 9, 0), patient="王五", phone="13900001111"),
              clinic.order("alipay", 1999, shanghai(2025, 3, 9, 14, 5), patient="赵六六", phone="13900002222")]
    statement = generate(rt, clinic, "alipay")

    as_csv = _csv_rows(statement_export.export_statement(rt, finance(clinic), statement["id"], "csv"))
    exported = statement_export.export_statement(rt, finance(clinic), statement["id"], "xlsx")
    assert exported.filename.endswith("-alipay-2025-03.xlsx") and exported.size > 0
    as_xlsx = _xlsx_rows(exported)

    assert as_csv == as_xlsx
    assert as_csv[0] == ["渠道订单号", "平台订单号", "商户订单号", "患者", "患者手机号", "项目", "预约时间", "核销时间",
                         "支付方式", "渠道采购价", "金额"]
    assert as_csv[1] == [orders[0]["channel_trade_no"], orders[0]["order_no"], f"P{orders[0]['order_no']}", "王*",
                         "139****1111", "洁牙套餐", "2025-03-02 08:30:00", "2025-03-02 09:00:00", "支付宝",
                         "199.00", "199.00"]
    assert as_csv[2][3:5] == ["赵*六", "139****2222"] and as_csv[2][9:] == ["19.99", "19.99"]
    assert as_csv[3] == ["合计"] + [""] * 8 + ["218.99", "218.99"]
    assert len(as_csv) == 4
    cells = _xlsx_cells(statement_export.export_statement(rt, finance(clinic), statement["id"], "xlsx"))
    assert [row[9:] for row in cells[1:]] == [(199, 199), (19.99, 19.99), (218.99, 218.99)]


def test_the_caller_chooses_the_columns_and_an_unknown_one_is_refused(rt):
    clinic = StatementClinic(rt, "fields")
    order = clinic.order("wechat", 5000, shanghai(2025, 3, 9, 14, 5))
    statement = generate(rt, clinic)

    rows = _csv_rows(statement_export.export_statement(rt, finance(clinic), statement["id"], "csv",
                                                       "amount, channel_trade_no,amount"))
    assert rows == [["金额", "渠道订单号"], ["50.00", order["channel_trade_no"]], ["50.00", "合计"]]
    for bad in ("amount,password_hash", "", " , "):
        with pytest.raises(InvalidInput) as refused:
            statement_export.export_statement(rt, finance(clinic), statement["id"], "csv", bad)
        assert refused.value.code == "unknown_export_field"
    with pytest.raises(InvalidInput):
        statement_export.export_statement(rt, finance(clinic), statement["id"], "pdf")


def test_an_injected_formula_is_neutralised_in_both_formats(rt):
    clinic = StatementClinic(rt, "inject")
    item_id = clinic.item("=cmd|' /C calc'!A0")
    clinic.order("wechat", 5000, shanghai(2025, 3, 9, 14, 5), item_id=item_id, patient="@SUM(A1:A9)")
    statement = generate(rt, clinic)

    for file_format, read in (("csv", _csv_rows), ("xlsx", _xlsx_rows)):
        [_, line, _] = read(statement_export.export_statement(rt, finance(clinic), statement["id"], file_format,
                                                              "patient,item,amount"))
        assert line == ["'@*********)", "'=cmd|' /C calc'!A0", "50.00"], file_format


# --- settlement ---------------------------------------------------------------------------------

def test_cash_settlement_with_an_ordinary_invoice_is_for_the_amount_net_of_six_percent(rt):
    clinic = StatementClinic(rt, "cash")
    clinic.order("wechat", 6000, shanghai(2025, 3, 3, 10, 0))
    clinic.order("alipay", 4000, shanghai(2025, 3, 4, 10, 0))
    ids = [checked(rt, clinic, "wechat")["id"], checked(rt, clinic, "alipay")["id"]]

    result = settlements.settle(rt, finance(clinic), ids, "cash", CASH_ACCOUNT, "normal", now=IN_APRIL)

    assert (result["amount_fen"], result["invoice_amount_fen"], result["status"]) == (10000, 9434, "pending_payment")
    assert result["statement_ids"] == sorted(ids) and "coupon" not in result
    assert result["bank_account"] == {"name": CASH_ACCOUNT["name"], "bank": CASH_ACCOUNT["bank"],
                                      "account_no": "************5678"}
    with rt.db.session() as session:
        rows = session.scalars(select(Statement).where(Statement.id.in_(ids))).all()
        assert {(s.status, s.settlement_id) for s in rows} == {("settled", result["id"])}
        assert session.get(Settlement, result["id"]).bank_account_no == "6225880012345678"
    assert settlements.get_settlement(rt, finance(clinic), result["id"]) == result


def test_a_vat_special_invoice_is_for_the_whole_amount(rt):
    clinic = StatementClinic(rt, "special")
    clinic.order("wechat", 10000, shanghai(2025, 3, 3, 10, 0))
    result = settlements.settle(rt, finance(clinic), [checked(rt, clinic)["id"]], "cash", CASH_ACCOUNT, "special",
                                now=IN_APRIL)
    assert (result["amount_fen"], result["invoice_amount_fen"]) == (10000, 10000)


def test_coupon_settlement_issues_a_coupon_of_equal_value_for_three_years(rt):
    clinic = StatementClinic(rt, "coupon")
    clinic.order("wechat", 19900, shanghai(2025, 3, 3, 10, 0))
    result = settlements.settle(rt, finance(clinic), [checked(rt, clinic)["id"]], "coupon", now=IN_APRIL)

    assert result["status"] == "completed" and "invoice_amount_fen" not in result
    assert result["coupon"]["value_fen"] == 19900
    assert result["coupon"]["expires_on"] == date(2028, 4, 10)
    with rt.db.session() as session:
        coupon = session.scalar(select(Coupon).where(Coupon.settlement_id == result["id"]))
        assert (coupon.code, coupon.issued_on) == (result["coupon"]["code"], date(2025, 4, 10))


def test_settlement_outside_the_window_is_refused_and_changes_nothing(rt):
    clinic = StatementClinic(rt, "window")
    clinic.order("wechat", 19900, shanghai(2025, 3, 3, 10, 0))
    statement = checked(rt, clinic)
    with pytest.raises(Conflict) as refused:
        settlements.settle(rt, finance(clinic), [statement["id"]], "coupon", now=IN_MAY)
    assert refused.value.code == "settlement_window_closed"
    assert statements.get_statement(rt, finance(clinic), statement["id"])["status"] == "checked"


def test_a_statement_is_settled_once_and_then_never_regenerated(rt):
    clinic = StatementClinic(rt, "twice")
    clinic.order("wechat", 19900, shanghai(2025, 3, 3, 10, 0))
    statement = checked(rt, clinic)
    settlements.settle(rt, finance(clinic), [statement["id"]], "coupon", now=IN_APRIL)

    with pytest.raises(Conflict) as refused:
        settlements.settle(rt, finance(clinic), [statement["id"]], "cash", CASH_ACCOUNT, "normal", now=IN_APRIL)
    assert refused.value.code == "statement_already_settled"
    with pytest.raises(Conflict) as refused:
        generate(rt, clinic)
    assert refused.value.code == "statement_settled"
    assert len(statements.list_lines(rt, finance(clinic), statement["id"])["items"]) == 1, "the settled lines stay"


def test_a_batch_with_an_unchecked_statement_is_refused_whole(rt):
    clinic = StatementClinic(rt, "unchecked")
    clinic.order("wechat", 19900, shanghai(2025, 3, 3, 10, 0))
    clinic.order("alipay", 5000, shanghai(2025, 3, 3, 11, 0))
    good, unchecked = checked(rt, clinic, "wechat"), generate(rt, clinic, "alipay")
    with pytest.raises(Conflict) as refused:
        settlements.settle(rt, finance(clinic), [good["id"], unchecked["id"]], "coupon", now=IN_APRIL)
    assert refused.value.code == "statement_not_checked"
    assert statements.get_statement(rt, finance(clinic), good["id"])["status"] == "checked"


def test_cash_needs_a_complete_bank_account_and_an_invoice_type(rt):
    clinic = StatementClinic(rt, "bank")
    clinic.order("wechat", 19900, shanghai(2025, 3, 3, 10, 0))
    ids = [checked(rt, clinic)["id"]]
    for account, invoice_type, code in [
        (None, "normal", "bank_account_required"),
        ({**CASH_ACCOUNT, "account_no": " "}, "normal", "bank_account_required"),
        ({**CASH_ACCOUNT, "account_no": "12ab"}, "normal", "invalid_bank_account"),
        ({**CASH_ACCOUNT, "account_no": "１２３４５６７８９"}, "normal", "invalid_bank_account"),
        (CASH_ACCOUNT, None, "invalid_invoice_type"),
    ]:
        with pytest.raises(InvalidInput) as refused:
            settlements.settle(rt, finance(clinic), ids, "cash", account, invoice_type, now=IN_APRIL)
        assert refused.value.code == code


def test_statements_of_two_clinics_or_of_someone_elses_clinic_are_refused(rt):
    mine, also_mine, theirs = (StatementClinic(rt, label) for label in ("a", "b", "c"))
    for clinic in (mine, also_mine, theirs):
        clinic.order("wechat", 19900, shanghai(2025, 3, 3, 10, 0))
    ids = [checked(rt, clinic)["id"] for clinic in (mine, also_mine, theirs)]
    with pytest.raises(InvalidInput) as refused:
        settlements.settle(rt, finance(mine, also_mine), ids[:2], "coupon", now=IN_APRIL)
    assert refused.value.code == "mixed_clinics"
    with pytest.raises(NotFound) as refused:
        settlements.settle(rt, finance(mine), [ids[0], ids[2]], "coupon", now=IN_APRIL)
    assert refused.value.details == {"statement_ids": [ids[2]]}


def test_of_two_concurrent_settlements_of_one_statement_one_wins(rt):
    clinic = StatementClinic(rt, "race")
    clinic.order("wechat", 19900, shanghai(2025, 3, 3, 10, 0))
    statement_id = checked(rt, clinic)["id"]
    start, outcomes = threading.Barrier(2), []

    def settle(method):
        start.wait()
        try:
            outcomes.append(settlements.settle(rt, finance(clinic), [statement_id], method, CASH_ACCOUNT
                                               if method == "cash" else None, "special" if method == "cash" else None,
                                               now=IN_APRIL)["method"])
        except DomainError as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=settle, args=(method,)) for method in ("cash", "coupon")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes, key=lambda o: o == "statement_already_settled") in (
        ["cash", "statement_already_settled"], ["coupon", "statement_already_settled"])
    with rt.db.session() as session:
        assert len(session.scalars(select(Settlement).where(Settlement.clinic_id == clinic.id)).all()) == 1


def test_statements_that_add_up_to_nothing_are_not_settled(rt):
    clinic = StatementClinic(rt, "empty")
    statement = checked(rt, clinic)
    assert (statement["line_count"], statement["total_fen"]) == (0, 0)
    with pytest.raises(InvalidInput) as refused:
        settlements.settle(rt, finance(clinic), [statement["id"]], "coupon", now=IN_APRIL)
    assert refused.value.code == "nothing_to_settle"


def test_two_concurrent_generations_of_one_statement_leave_one_statement_with_each_line_once(rt):
    clinic = StatementClinic(rt, "gen-race")
    for day in (3, 4, 5):
        clinic.order("wechat", 1000 * day, shanghai(2025, 3, day, 10, 0))
    start, results = threading.Barrier(2), []

    def generate_now():
        start.wait()
        results.append(generate(rt, clinic))

    threads = [threading.Thread(target=generate_now) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len({result["id"] for result in results}) == 1 and len(results) == 2
    assert {(result["line_count"], result["total_fen"]) for result in results} == {(3, 12000)}
    assert len(lines_of(rt, clinic, results[0]["id"])) == 3
