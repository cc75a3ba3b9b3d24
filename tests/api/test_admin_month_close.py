"""Closing a month over HTTP: the channel-orders report, a check refused with its differences, the operator's
invoice and payout records seen by the clinic's finance, and coupons used once."""
from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import update

from app.db.models import StatementLine
from app.services.common.principals import StaffPrincipal
from app.services.settlement import settlements as settlement_service
from tests.api.test_admin_role_matrix import Call, Case
from tests.api.test_admin_statements import (
    ADMIN,
    BANK,
    _demo,
    _elsewhere,
    _fresh_statement,
    generated,
    refusal,
    staff_headers,
)
from tests.integration.statement_helpers import StatementClinic, shanghai


def _cash(client, headers, statement_id: int) -> dict:
    resp = client.post(f"{ADMIN}/settlements", json={"statement_ids": [statement_id], "method": "cash",
                                                     "bank_account": BANK, "invoice_type": "special"},
                       headers=headers)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def test_the_report_and_a_check_that_refuses_with_the_differences(client, rt):
    clinic = StatementClinic(rt, "http-check")
    order = clinic.order("wechat", 29900, shanghai(2025, 3, 2, 10, 0), purchase_price_fen=18000)
    finance = staff_headers(client, rt, "finance", clinic)
    report = client.get(f"{ADMIN}/reports/channel-orders", query_string={"month": "2025-03", "channel": "wechat"},
                        headers=finance).get_json()
    assert (report["count"], report["total_purchase_fen"]) == (1, 18000)
    assert report["items"][0]["channel_trade_no"] == order["channel_trade_no"]

    statement = generated(client, finance, "wechat")
    with rt.db.session() as session:
        session.execute(update(StatementLine).where(StatementLine.statement_id == statement["id"])
                        .values(purchase_price_fen=18800))
    resp = client.post(f"{ADMIN}/statements/{statement['id']}/check", headers=finance)

    assert refusal(resp) == (409, "statement_differs")
    assert resp.get_json()["errors"] == {"difference_count": 1, "differences": [{
        "kind": "price_differs", "channel_trade_no": order["channel_trade_no"], "order_no": order["order_no"],
        "statement_price_fen": 18800, "report_price_fen": 18000}]}

    generated(client, finance, "wechat")  # regenerated from the orders: agrees again
    assert client.post(f"{ADMIN}/statements/{statement['id']}/check", headers=finance).status_code == 200


def test_the_operator_pays_a_cash_settlement_after_its_invoice_and_the_clinic_sees_it_paid(client, rt):
    clinic = StatementClinic(rt, "http-payout")
    clinic.order("wechat", 29900, shanghai(2025, 3, 2, 10, 0), purchase_price_fen=18000)
    finance = staff_headers(client, rt, "finance", clinic)
    operator = staff_headers(client, rt, "operator")
    statement = generated(client, finance, "wechat")
    assert client.post(f"{ADMIN}/statements/{statement['id']}/check", headers=finance).status_code == 200
    settlement = _cash(client, finance, statement["id"])
    assert settlement["invoice"]["status"] == "awaiting" and settlement["invoice"]["amount_fen"] == 18000
    payout = {"bank_serial_no": "CMB20250415000123", "paid_at": datetime.now(UTC).isoformat()}

    assert refusal(client.post(f"{ADMIN}/settlements/{settlement['id']}/payout", json=payout,
                               headers=operator)) == (409, "invoice_not_received")
    # Finance of the clinic may not record either: the operator pays.
    assert client.post(f"{ADMIN}/settlements/{settlement['id']}/payout", json=payout,
                       headers=finance).status_code == 403
    assert client.post(f"{ADMIN}/settlements/{settlement['id']}/invoice", json={"invoice_no": "04412345"},
                       headers=finance).status_code == 403
    resp = client.post(f"{ADMIN}/settlements/{settlement['id']}/invoice", json={"invoice_no": "04412345"},
                       headers=operator)
    assert resp.status_code == 200 and resp.get_json()["invoice"]["status"] == "received"
    resp = client.post(f"{ADMIN}/settlements/{settlement['id']}/payout", json=payout, headers=operator)
    assert resp.status_code == 200 and resp.get_json()["status"] == "paid"
    assert refusal(client.post(f"{ADMIN}/settlements/{settlement['id']}/payout", json=payout,
                               headers=operator)) == (409, "settlement_already_paid")

    seen = client.get(f"{ADMIN}/settlements/{settlement['id']}", headers=finance).get_json()
    assert (seen["status"], seen["payout"]["bank_serial_no"]) == ("paid", "CMB20250415000123")
    listed = client.get(f"{ADMIN}/settlements", query_string={"clinic_code": clinic.code},
                        headers=operator).get_json()["items"]
    assert [item["id"] for item in listed] == [settlement["id"]]


def test_bad_payout_and_invoice_bodies_are_422(client, rt):
    operator = staff_headers(client, rt, "operator")
    for body in ({}, {"bank_serial_no": "CMB20250415000123"},
                 {"bank_serial_no": "CMB20250415000123", "paid_at": "2025-04-15T10:00:00"},
                 {"bank_serial_no": "x", "paid_at": "2025-04-15T10:00:00+08:00"},
                 {"bank_serial_no": "CMB20250415000123", "paid_at": "9999-04-15T10:00:00+08:00"}):
        resp = client.post(f"{ADMIN}/settlements/1/payout", json=body, headers=operator)
        assert resp.status_code == 422, (body, resp.get_json())
    assert client.post(f"{ADMIN}/settlements/1/invoice", json={"invoice_no": "1"},
                       headers=operator).status_code == 422
    assert refusal(client.post(f"{ADMIN}/settlements/2147483647/invoice", json={"invoice_no": "04412345"},
                               headers=operator)) == (404, "settlement_not_found")


def test_a_coupon_is_used_once_over_http(client, rt):
    clinic = StatementClinic(rt, "http-coupon")
    finance = staff_headers(client, rt, "finance", clinic)
    settlement_id = _fresh_statement(rt, clinic, settle=True)
    [coupon] = client.get(f"{ADMIN}/coupons", headers=finance).get_json()["items"]
    assert (coupon["settlement_id"], coupon["status"]) == (settlement_id, "unused")

    first = client.post(f"{ADMIN}/coupons/{coupon['code']}/use", headers=finance)
    second = client.post(f"{ADMIN}/coupons/{coupon['code']}/use", headers=finance)

    assert first.status_code == 200 and first.get_json()["status"] == "used"
    assert refusal(second) == (409, "coupon_already_used") and "used already" in second.get_json()["message"]
    assert client.get(f"{ADMIN}/coupons", query_string={"status": "unused"}, headers=finance).get_json()["total"] == 0
    assert client.get(f"{ADMIN}/coupons", query_string={"status": "spent"}, headers=finance).status_code == 422


def _cash_settlement_of(rt, clinic: StatementClinic, *, invoice_received: bool = False) -> int:
    statement_id = _fresh_statement(rt, clinic, check=True)
    setup = StaffPrincipal(user_id=0, username="settlement-setup", role="finance", clinic_ids=(clinic.id,))
    settlement_id = settlement_service.settle(rt, setup, [statement_id], "cash", bank_account=BANK,
                                              invoice_type="normal")["id"]
    if invoice_received:
        operator = StaffPrincipal(user_id=0, username="operator-setup", role="operator", clinic_ids=())
        settlement_service.record_invoice_received(rt, operator, settlement_id, "04400000")
    return settlement_id


def _coupon_of(rt, clinic: StatementClinic) -> str:
    settlement_id = _fresh_statement(rt, clinic, settle=True)
    principal = StaffPrincipal(user_id=0, username="coupon-setup", role="finance", clinic_ids=(clinic.id,))
    return settlement_service.get_settlement(rt, principal, settlement_id)["coupon"]["code"]


ROLE_MATRIX_CASES = {
    "admin_settlement_ops.channel_orders_report": Case(
        lambda w: Call("GET", "/reports/channel-orders", {"query_string": {"month": "2025-03", "channel": "wechat"}}),
        lambda w: Call("GET", "/reports/channel-orders", {"query_string": {
            "month": "2025-03", "channel": "wechat", "clinic_code": w.other.code}})),
    "admin_settlement_ops.record_invoice": Case(
        lambda w: Call("POST", f"/settlements/{_cash_settlement_of(w.rt, _demo(w))}/invoice",
                       {"json": {"invoice_no": "04499999"}}), None),
    "admin_settlement_ops.record_payout": Case(
        lambda w: Call("POST", f"/settlements/{_cash_settlement_of(w.rt, _demo(w), invoice_received=True)}/payout",
                       {"json": {"bank_serial_no": "MATRIX0000001", "paid_at": datetime.now(UTC).isoformat()}}), None),
    "admin_settlement_ops.list_coupons": Case(
        lambda w: Call("GET", "/coupons"),
        lambda w: Call("GET", "/coupons", {"query_string": {"clinic_code": w.other.code}})),
    "admin_settlement_ops.use_coupon": Case(
        lambda w: Call("POST", f"/coupons/{_coupon_of(w.rt, _demo(w))}/use"),
        lambda w: Call("POST", f"/coupons/{_coupon_of(w.rt, _elsewhere(w))}/use")),
}
