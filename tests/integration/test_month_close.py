"""Closing a month through the services on the real PostgreSQL database: statements of platform-collected
orders at their purchase price, the clinic's own report and the check against it, the invoice and the payout of
a cash settlement, and coupons used once."""
from __future__ import annotations

import dataclasses
import threading
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select, update

from app.db.models import AuditEvent, Coupon, Order, PaymentAttempt, StatementLine, StatusEvent
from app.domain.errors import Conflict, DomainError, InvalidInput, NotFound
from app.runtime import Runtime
from app.services.common.principals import StaffPrincipal
from app.services.settlement import channel_orders, coupons, settlements, statements
from tests.integration.statement_helpers import StatementClinic, shanghai

IN_APRIL = datetime(2025, 4, 10, 2, 0, tzinfo=UTC)
CASH_ACCOUNT = {"name": "某某口腔诊所有限公司", "bank": "招商银行上海分行", "account_no": "6225880012345678"}


@pytest.fixture(scope="module")
def rt(settings):
    runtime = Runtime(dataclasses.replace(settings, SETTLEMENT_MONTHS="1,4,7,10", INVOICE_TITLE="某某医疗科技有限公司",
                                          INVOICE_TAX_NO="91310000MA1FL0000X"))
    yield runtime
    runtime.close()


def finance(clinic: StatementClinic) -> StaffPrincipal:
    return StaffPrincipal(user_id=902, username="finance-close", role="finance", clinic_ids=(clinic.id,))


OPERATOR = StaffPrincipal(user_id=903, username="operator-close", role="operator", clinic_ids=())


def generate(rt, clinic, channel="wechat") -> dict:
    return statements.generate_statement(rt, finance(clinic), "2025-03", channel, now=IN_APRIL)


def report(rt, clinic, channel="wechat") -> dict:
    return channel_orders.channel_orders_report(rt, finance(clinic), "2025-03", channel, now=IN_APRIL, limit=1000)


def test_a_statement_covers_platform_collected_orders_at_the_purchase_price_they_kept(rt):
    clinic = StatementClinic(rt, "pp")
    kept = [clinic.order("wechat", 29900, shanghai(2025, 3, 2, 10, 0), purchase_price_fen=18000),
            clinic.order("wechat", 29900, shanghai(2025, 3, 9, 10, 0), purchase_price_fen=21000)]
    # The clinic's own booking (paid through its own app) is no statement's business.
    own = clinic.order("wechat", 9900, shanghai(2025, 3, 5, 10, 0))
    _pay_through_the_clinics_app(rt, clinic, own["order_no"])

    statement = generate(rt, clinic)

    assert (statement["line_count"], statement["total_fen"]) == (2, 18000 + 21000)
    lines = statements.list_lines(rt, finance(clinic), statement["id"])["items"]
    assert [(line["order_no"], line["purchase_price_fen"], line["amount_fen"]) for line in lines] == [
        (kept[0]["order_no"], 18000, 29900), (kept[1]["order_no"], 21000, 29900)]


def _pay_through_the_clinics_app(rt, clinic, order_no: str) -> None:
    with rt.db.session() as session:
        order = session.scalar(select(Order).where(Order.order_no == order_no))
        session.execute(update(PaymentAttempt).where(PaymentAttempt.id == order.paid_attempt_id)
                        .values(merchant_account_id=clinic.accounts["wechat"]))
        order.purchase_price_fen = None


def test_the_report_lists_the_months_redeemed_platform_orders_with_their_trade_numbers(rt):
    clinic = StatementClinic(rt, "report")
    march = [clinic.order("alipay", 19900, shanghai(2025, 3, 1, 0, 0), purchase_price_fen=15000),
             clinic.order("alipay", 19900, shanghai(2025, 3, 31, 23, 59, 59), purchase_price_fen=15500)]
    clinic.order("alipay", 19900, shanghai(2025, 4, 1, 0, 0))
    clinic.order("alipay", 19900, shanghai(2025, 3, 4, 0, 0), status="refunded")
    clinic.order("wechat", 19900, shanghai(2025, 3, 4, 0, 0))

    result = report(rt, clinic, "alipay")

    assert (result["count"], result["total_purchase_fen"]) == (2, 30500)
    assert [(row["order_no"], row["channel_trade_no"], row["out_trade_no"], row["purchase_price_fen"])
            for row in result["items"]] == [(o["order_no"], o["channel_trade_no"], o["out_trade_no"],
                                             o["purchase_price_fen"]) for o in march]
    with pytest.raises(InvalidInput) as refused:
        channel_orders.channel_orders_report(rt, finance(clinic), "2025-04", "alipay", now=IN_APRIL)
    assert refused.value.code == "month_not_ended"


def test_the_check_refuses_a_statement_whose_price_differs_and_lists_the_difference(rt):
    clinic = StatementClinic(rt, "price")
    order = clinic.order("wechat", 29900, shanghai(2025, 3, 2, 10, 0), purchase_price_fen=18000)
    clinic.order("wechat", 29900, shanghai(2025, 3, 3, 10, 0), purchase_price_fen=18000)
    statement = generate(rt, clinic)
    with rt.db.session() as session:  # the statement's line says something the order does not
        session.execute(update(StatementLine).where(StatementLine.statement_id == statement["id"],
                                                    StatementLine.order_no == order["order_no"])
                        .values(purchase_price_fen=19000))

    with pytest.raises(Conflict) as refused:
        statements.check_statement(rt, finance(clinic), statement["id"])

    assert refused.value.code == "statement_differs"
    assert refused.value.details == {"difference_count": 1, "differences": [{
        "kind": "price_differs", "channel_trade_no": order["channel_trade_no"], "order_no": order["order_no"],
        "statement_price_fen": 19000, "report_price_fen": 18000}]}
    assert statements.get_statement(rt, finance(clinic), statement["id"])["status"] == "generated"


def test_the_check_finds_lines_missing_on_either_side(rt):
    clinic = StatementClinic(rt, "missing")
    listed = clinic.order("wechat", 29900, shanghai(2025, 3, 2, 10, 0), purchase_price_fen=18000)
    statement = generate(rt, clinic)
    # After generation: one more order redeemed in March (the statement misses it), and the listed order is
    # refunded (the report no longer holds it).
    late = clinic.order("wechat", 29900, shanghai(2025, 3, 20, 10, 0), purchase_price_fen=17000)
    with rt.db.session() as session:
        session.execute(update(Order).where(Order.order_no == listed["order_no"]).values(status="refunded"))

    with pytest.raises(Conflict) as refused:
        statements.check_statement(rt, finance(clinic), statement["id"])

    assert refused.value.details["difference_count"] == 2
    assert sorted((d["kind"], d["order_no"], d["statement_price_fen"], d["report_price_fen"])
                  for d in refused.value.details["differences"]) == [
        ("missing_in_report", listed["order_no"], 18000, None),
        ("missing_in_statement", late["order_no"], None, 17000)]
    regenerated = generate(rt, clinic)
    assert statements.check_statement(rt, finance(clinic), regenerated["id"])["status"] == "checked"


def _cash_settlement(rt, clinic, invoice_type="normal") -> dict:
    clinic.order("wechat", 29900, shanghai(2025, 3, 2, 10, 0), purchase_price_fen=10600)
    statement = generate(rt, clinic)
    statements.check_statement(rt, finance(clinic), statement["id"])
    return settlements.settle(rt, finance(clinic), [statement["id"]], "cash", bank_account=CASH_ACCOUNT,
                              invoice_type=invoice_type, now=IN_APRIL)


def test_a_cash_settlement_carries_its_invoice_details_and_awaits_the_invoice(rt):
    clinic = StatementClinic(rt, "invoice")
    settlement = _cash_settlement(rt, clinic)
    assert settlement["invoice"] == {"type": "normal", "title": "某某医疗科技有限公司", "tax_no": "91310000MA1FL0000X",
                                     "amount_fen": 10000, "status": "awaiting", "invoice_no": None,
                                     "received_at": None, "received_by": None}
    assert settlement["status"] == "pending_payment" and settlement["payout"] is None


def test_the_operator_records_the_invoice_then_the_payout_and_the_clinic_sees_it_paid(rt):
    clinic = StatementClinic(rt, "payout")
    settlement = _cash_settlement(rt, clinic)
    paid_at = datetime.now(UTC).replace(microsecond=0)

    with pytest.raises(Conflict) as refused:
        settlements.record_payout(rt, OPERATOR, settlement["id"], "CMB20250415000123", paid_at)
    assert refused.value.code == "invoice_not_received"

    received = settlements.record_invoice_received(rt, OPERATOR, settlement["id"], "04412345")
    assert (received["invoice"]["status"], received["invoice"]["invoice_no"]) == ("received", "04412345")
    with pytest.raises(Conflict) as refused:
        settlements.record_invoice_received(rt, OPERATOR, settlement["id"], "04412346")
    assert refused.value.code == "invoice_already_received"

    paid = settlements.record_payout(rt, OPERATOR, settlement["id"], "CMB20250415000123", paid_at)

    assert paid["status"] == "paid"
    assert paid["payout"] == {"bank_serial_no": "CMB20250415000123", "paid_at": paid_at, "paid_by": "operator-close"}
    seen = settlements.get_settlement(rt, finance(clinic), settlement["id"])
    assert (seen["status"], seen["payout"]["bank_serial_no"]) == ("paid", "CMB20250415000123")
    with pytest.raises(Conflict) as refused:
        settlements.record_payout(rt, OPERATOR, settlement["id"], "CMB20250415000999", paid_at)
    assert refused.value.code == "settlement_already_paid"
    with rt.db.session() as session:
        audit = session.execute(select(AuditEvent.action, AuditEvent.actor_name, AuditEvent.before, AuditEvent.after)
                                .where(AuditEvent.target_type == "settlement",
                                       AuditEvent.target_id == str(settlement["id"]))
                                .order_by(AuditEvent.id)).all()
        moves = session.execute(select(StatusEvent.from_status, StatusEvent.to_status)
                                .where(StatusEvent.record_type == "settlement",
                                       StatusEvent.record_id == settlement["id"])).all()
    assert [row.action for row in audit] == ["settlement.created", "settlement.invoice_received", "settlement.paid"]
    assert audit[-1].actor_name == "operator-close" and audit[-1].before == {"status": "pending_payment"}
    assert audit[-1].after["bank_serial_no"] == "CMB20250415000123"
    assert moves == [("pending_payment", "paid")]


def test_a_payout_is_refused_for_a_coupon_a_future_time_a_bad_serial_or_a_stranger(rt):
    clinic = StatementClinic(rt, "payout-bad")
    settlement = _cash_settlement(rt, clinic)
    settlements.record_invoice_received(rt, OPERATOR, settlement["id"], "04412399")
    for serial, paid_at, code in (
            ("CMB1", datetime.now(UTC), "invalid_bank_serial_no"),
            ("CMB20250415000123", datetime.now(UTC) + timedelta(days=1), "invalid_paid_at"),
            ("CMB20250415000123", datetime(2020, 1, 1, tzinfo=UTC), "invalid_paid_at"),
            ("CMB' OR 1=1 --", datetime.now(UTC), "invalid_bank_serial_no")):
        with pytest.raises(InvalidInput) as refused:
            settlements.record_payout(rt, OPERATOR, settlement["id"], serial, paid_at)
        assert refused.value.code == code
    # The clinic's own finance sees the settlement but another clinic's does not.
    other = StatementClinic(rt, "payout-other")
    with pytest.raises(NotFound):
        settlements.get_settlement(rt, finance(other), settlement["id"])
    assert settlements.get_settlement(rt, finance(clinic), settlement["id"])["status"] == "pending_payment"


def _coupon(rt, clinic) -> dict:
    clinic.order("wechat", 19900, shanghai(2025, 3, 3, 10, 0), purchase_price_fen=12000)
    statement = generate(rt, clinic)
    statements.check_statement(rt, finance(clinic), statement["id"])
    return settlements.settle(rt, finance(clinic), [statement["id"]], "coupon", now=IN_APRIL)["coupon"]


def test_a_coupon_is_used_once_and_a_second_use_is_refused(rt):
    clinic = StatementClinic(rt, "coupon-use")
    coupon = _coupon(rt, clinic)
    listed = coupons.list_coupons(rt, finance(clinic), now=IN_APRIL)["items"]
    assert [(c["code"], c["status"], c["value_fen"], c["expires_on"]) for c in listed] == [
        (coupon["code"], "unused", 12000, date(2028, 4, 10))]

    used = coupons.use_coupon(rt, finance(clinic), coupon["code"], now=IN_APRIL)
    assert (used["status"], used["used_by"]) == ("used", "finance-close")
    with pytest.raises(Conflict) as refused:
        coupons.use_coupon(rt, finance(clinic), coupon["code"], now=IN_APRIL)
    assert refused.value.code == "coupon_already_used"
    assert [c["code"] for c in coupons.list_coupons(rt, finance(clinic), status="used")["items"]] == [coupon["code"]]
    assert coupons.list_coupons(rt, finance(clinic), status="unused")["items"] == []


def test_of_two_concurrent_uses_of_a_coupon_one_wins(rt):
    clinic = StatementClinic(rt, "coupon-race")
    coupon = _coupon(rt, clinic)
    barrier, outcomes = threading.Barrier(2), []

    def use() -> None:
        barrier.wait()
        try:
            coupons.use_coupon(rt, finance(clinic), coupon["code"], now=IN_APRIL)
            outcomes.append("used")
        except DomainError as refused:
            outcomes.append(refused.code)

    threads = [threading.Thread(target=use) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["coupon_already_used", "used"]
    with rt.db.session() as session:
        assert session.scalar(select(Coupon.status).where(Coupon.code == coupon["code"])) == "used"
        assert session.scalar(select(AuditEvent.action).where(AuditEvent.action == "coupon.used",
                                                              AuditEvent.after["code"].as_string() == coupon["code"]))


def test_an_expired_coupon_is_shown_expired_and_is_not_used(rt):
    clinic = StatementClinic(rt, "coupon-old")
    coupon = _coupon(rt, clinic)
    last_day = datetime(2028, 4, 10, 15, 59, tzinfo=UTC)  # 23:59 in Shanghai on expires_on: still valid
    day_after = datetime(2028, 4, 10, 16, 0, tzinfo=UTC)  # 00:00 in Shanghai the day after
    assert coupons.list_coupons(rt, finance(clinic), now=last_day)["items"][0]["status"] == "unused"
    assert coupons.list_coupons(rt, finance(clinic), status="expired", now=day_after)["items"][0]["code"] == \
        coupon["code"]
    with pytest.raises(Conflict) as refused:
        coupons.use_coupon(rt, finance(clinic), coupon["code"], now=day_after)
    assert refused.value.code == "coupon_expired"
    with rt.db.session() as session:
        assert session.scalar(select(Coupon.status).where(Coupon.code == coupon["code"])) == "unused"


def test_another_clinics_coupon_or_a_made_up_code_is_not_found(rt):
    clinic, other = StatementClinic(rt, "coupon-mine"), StatementClinic(rt, "coupon-theirs")
    coupon = _coupon(rt, clinic)
    for code in (coupon["code"], "CP0000000000000000", "'; DROP TABLE settlement_coupons; --", ""):
        with pytest.raises(NotFound):
            coupons.use_coupon(rt, finance(other), code, now=IN_APRIL)
    assert coupons.list_coupons(rt, finance(other))["items"] == []
    assert coupon["code"] in {c["code"] for c in coupons.list_coupons(rt, OPERATOR, limit=200)["items"]}
