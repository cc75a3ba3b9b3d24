"""Finance's dashboard over HTTP: income and refunds by Asia/Shanghai day, channel and order type, within the
user's clinics, and the latest reconciliation run of each source."""
from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta, timezone

import pytest

from app.db.models import Order, PaymentAttempt, Refund, RefundRequest
from app.services.reconciliation.findings import OPEN, UNKNOWN_IN_HIS, Finding, RunOutcome
from app.services.reconciliation.runs import fail_run, finish_run, start_run
from tests.api.admin_helpers import ADMIN
from tests.api.test_admin_role_matrix import Call, Case
from tests.api.test_admin_statements import staff_headers
from tests.integration.statement_helpers import StatementClinic

SHANGHAI = timezone(timedelta(hours=8))

ROLE_MATRIX_CASES = {
    "admin_dashboard.get_dashboard": Case(
        lambda w: Call("GET", "/dashboard"),
        lambda w: Call("GET", "/dashboard", {"query_string": {"clinic_code": w.other.code}})),
}


def _at(day: date, hh: int, mm: int, ss: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm, ss), SHANGHAI)


class Ledger:
    """Orders with payment attempts and refunds laid straight into a clinic of the test's own."""

    def __init__(self, rt, clinic: StatementClinic) -> None:
        self.rt, self.clinic = rt, clinic

    def payment(self, channel: str, amount_fen: int, paid_at: datetime | None, *, order_type: str = "topup",
                status: str = "paid") -> int:
        order_no = f"D{uuid.uuid4().hex[:20].upper()}"
        with self.rt.db.session() as session:
            order = Order(order_no=order_no, clinic_id=self.clinic.id, type=order_type,
                          status="completed" if status == "paid" else "closed", channel=channel,
                          amount_fen=amount_fen, refunded_fen=0, description="dashboard test",
                          expires_at=paid_at or datetime.now(UTC), paid_at=paid_at,
                          item_id=self.clinic.item_id if order_type == "booking" else None)
            session.add(order)
            session.flush()
            attempt = PaymentAttempt(order_id=order.id, merchant_account_id=self.clinic.accounts[channel],
                                     channel=channel, out_trade_no=f"{order_no}P01", amount_fen=amount_fen,
                                     status=status, paid_at=paid_at if status == "paid" else None)
            session.add(attempt)
            session.flush()
            return attempt.id

    def refund(self, attempt_id: int, amount_fen: int, succeeded_at: datetime | None, status: str = "succeeded"):
        with self.rt.db.session() as session:
            attempt = session.get(PaymentAttempt, attempt_id)
            request = RefundRequest(refund_request_no=f"R{uuid.uuid4().hex[:20]}", clinic_id=self.clinic.id,
                                    origin="admin", order_id=attempt.order_id, amount_fen=amount_fen,
                                    status="done" if status == "succeeded" else "processing")
            session.add(request)
            session.flush()
            session.add(Refund(refund_no=f"{attempt.out_trade_no}R{uuid.uuid4().hex[:4]}", refund_request_id=request.id,
                               payment_attempt_id=attempt.id, order_id=attempt.order_id, amount_fen=amount_fen,
                               status=status, succeeded_at=succeeded_at if status == "succeeded" else None))


@pytest.fixture()
def clinic(rt, demo_clinic):
    return StatementClinic(rt, "dash")


def _by_key(rows: list[dict]) -> dict[str, tuple[int, int]]:
    return {row["key"]: (row["amount_fen"], row["count"]) for row in rows}


def test_income_and_refunds_by_shanghai_day_channel_and_order_type(client, rt, clinic):
    today = datetime.now(SHANGHAI).date()
    yesterday = today - timedelta(days=1)
    ledger = Ledger(rt, clinic)
    # Today from its first minute (16:00 UTC the day before), yesterday up to its last minute.
    first = ledger.payment("wechat", 10000, _at(today, 0, 0, 5), order_type="booking")
    ledger.payment("alipay", 2500, min(_at(today, 0, 1), datetime.now(SHANGHAI)), order_type="topup")
    late = ledger.payment("wechat", 700, _at(yesterday, 23, 59, 55), order_type="visit_bill")
    ledger.payment("alipay", 99999, _at(today - timedelta(days=40), 12, 0))  # outside every window
    ledger.payment("wechat", 123, None, status="pending")
    ledger.payment("wechat", 456, None, status="closed")
    ledger.refund(first, 4000, min(_at(today, 0, 2), datetime.now(SHANGHAI)))
    ledger.refund(late, 700, _at(yesterday, 23, 59, 58))
    ledger.refund(first, 1000, None, status="failed")
    ledger.refund(first, 500, None, status="pending")
    headers = staff_headers(client, rt, "finance", clinic)

    resp = client.get(f"{ADMIN}/dashboard", headers=headers)

    assert resp.status_code == 200, resp.get_json()
    board = resp.get_json()
    assert (board["today"], board["month"], board["clinic_codes"]) == (today.isoformat(), today.strftime("%Y-%m"),
                                                                      [clinic.code])
    income, refunds = board["income"], board["refunds"]
    assert (income["today"]["amount_fen"], income["today"]["count"]) == (12500, 2)
    assert _by_key(income["today"]["by_channel"]) == {"wechat": (10000, 1), "alipay": (2500, 1)}
    assert _by_key(income["today"]["by_order_type"]) == {"booking": (10000, 1), "topup": (2500, 1),
                                                         "visit_bill": (0, 0)}
    assert (refunds["today"]["amount_fen"], refunds["today"]["count"]) == (4000, 1)
    assert _by_key(refunds["today"]["by_order_type"])["booking"] == (4000, 1)
    same_month = yesterday.month == today.month
    assert income["month"]["amount_fen"] == 12500 + (700 if same_month else 0)
    assert refunds["month"]["amount_fen"] == 4000 + (700 if same_month else 0)

    daily = {(row["date"], row["channel"]): (row["income_fen"], row["refund_fen"]) for row in board["daily"]}
    assert len(board["daily"]) == 60 and board["daily"][0]["date"] == (today - timedelta(days=29)).isoformat()
    assert daily[(today.isoformat(), "wechat")] == (10000, 4000)
    assert daily[(today.isoformat(), "alipay")] == (2500, 0)
    assert daily[(yesterday.isoformat(), "wechat")] == (700, 700)
    assert sum(i for i, _ in daily.values()) == 13200 and sum(r for _, r in daily.values()) == 4700


def test_only_the_users_clinics_are_counted_and_another_clinic_is_404(client, rt, clinic, demo_clinic):
    now = datetime.now(SHANGHAI)
    other = StatementClinic(rt, "dash-other")
    Ledger(rt, clinic).payment("wechat", 300, now)
    Ledger(rt, other).payment("wechat", 50000, now)
    mine = staff_headers(client, rt, "finance", clinic)
    both = staff_headers(client, rt, "finance", clinic, other)

    assert client.get(f"{ADMIN}/dashboard", headers=mine).get_json()["income"]["today"]["amount_fen"] == 300
    assert client.get(f"{ADMIN}/dashboard", headers=both).get_json()["income"]["today"]["amount_fen"] == 50300
    picked = client.get(f"{ADMIN}/dashboard", headers=both, query_string={"clinic_code": other.code}).get_json()
    assert (picked["clinic_codes"], picked["income"]["today"]["amount_fen"]) == ([other.code], 50000)
    refused = client.get(f"{ADMIN}/dashboard", headers=mine, query_string={"clinic_code": other.code})
    assert (refused.status_code, refused.get_json()["error"]) == (404, "clinic_not_found")
    assert "50000" not in refused.get_data(as_text=True)


def test_the_latest_run_of_each_source_with_its_open_discrepancies(client, rt, clinic):
    today = datetime.now(SHANGHAI).date()
    older = start_run(rt, today - timedelta(days=3), "his", clinic.id)
    finish_run(rt, older, RunOutcome())
    newer = start_run(rt, today - timedelta(days=2), "his", clinic.id)
    finish_run(rt, newer, RunOutcome(findings=[Finding(UNKNOWN_IN_HIS, OPEN, "recharge", f"dash:{newer.run_id}",
                                                       their_amount_fen=100)]))
    failed = start_run(rt, today - timedelta(days=1), "wechat", clinic.id, clinic.accounts["wechat"])
    fail_run(rt, failed, "the bill could not be downloaded")
    headers = staff_headers(client, rt, "finance", clinic)

    board = client.get(f"{ADMIN}/dashboard", headers=headers).get_json()

    states = {row["source"]: row for row in board["reconciliation"]}
    assert [row["source"] for row in board["reconciliation"]] == ["wechat", "alipay", "his"]
    his = states["his"]["last_run"]
    assert (his["id"], his["date"], his["status"], his["discrepancies"], his["open"]) == (
        newer.run_id, (today - timedelta(days=2)).isoformat(), "done", 1, 1)
    assert (states["wechat"]["last_run"]["id"], states["wechat"]["last_run"]["status"]) == (failed.run_id, "failed")
    assert states["wechat"]["app_id"] == f"wechat-{clinic.code.rsplit('-', 1)[1]}"
    assert states["alipay"]["last_run"] is None


def test_finance_and_admin_may_read_it_and_staff_may_not(client, rt, clinic, demo_clinic):
    for role, expected in (("finance", 200), ("admin", 200), ("staff", 403)):
        headers = staff_headers(client, rt, role, clinic)
        assert client.get(f"{ADMIN}/dashboard", headers=headers).status_code == expected, role
    assert client.get(f"{ADMIN}/dashboard").status_code == 401


@pytest.mark.parametrize("query", [{"days": 0}, {"days": 93}, {"days": "x"}, {"clinic_code": ""}])
def test_bad_queries_are_422(client, rt, clinic, query):
    headers = staff_headers(client, rt, "finance", clinic)
    assert client.get(f"{ADMIN}/dashboard", headers=headers, query_string=query).status_code == 422


def test_a_user_of_several_clinics_without_a_pick_sees_them_all(client, rt, demo_clinic):
    first, second = StatementClinic(rt, "dash-a"), StatementClinic(rt, "dash-b")
    headers = staff_headers(client, rt, "finance", first, second)
    board = client.get(f"{ADMIN}/dashboard", headers=headers).get_json()
    assert board["clinic_codes"] == sorted([first.code, second.code])
    assert {row["clinic_code"] for row in board["reconciliation"]} == {first.code, second.code}
