"""Channel reconciliation against bills the sandbox's own ledger produces, on both channels.

A sandbox of this module's own (its clock and bills are nobody else's), a database of its own (the tests send
the HIS writes and follow the refunds themselves and assert who did what; a platform left running by an e2e
test would otherwise send them first), and a clinic of each test's own (its merchant accounts' bills hold only
that test's trades).
"""
from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select, update

from app.db.models import AuditEvent, Order, PaymentAttempt, ReconciliationRun, Refund, RefundRequest
from app.db.types import utcnow
from app.domain import ids
from app.domain.bills import AlipayBill, BillIntegrityError, WeChatBill
from app.domain.errors import Conflict
from app.services import reconciliation
from app.services.common.principals import StaffPrincipal
from app.services.reconciliation import (
    AMOUNT_MISMATCH,
    HELD,
    MISSING_AT_CHANNEL,
    MISSING_ON_PLATFORM,
    OPEN,
    REPAIRED,
    STATUS_MISMATCH,
)
from app.services.reconciliation.repairs import payment_key, refund_key
from app.services.refunds import executor
from tests.integration.reconciliation_support import (
    adapter,
    findings,
    his_records,
    own_clinic,
    own_runtime,
    paid,
    paid_events,
    patient_pays,
    refund,
    repairs_of,
    sandbox_post,
    send_his_writes,
    today_shanghai,
    unpaid_topup,
)
from tests.processes import SandboxProcess

CHANNELS = ["wechat", "alipay"]


@pytest.fixture(scope="module")
def world():
    proc = SandboxProcess().start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def rt(settings, postgres_url):
    runtime = own_runtime(settings, postgres_url, "hpay_recon_channel")
    yield runtime
    runtime.close()


def _set(rt, model, row_id: int, **values) -> None:
    with rt.db.session() as session:
        session.execute(update(model).where(model.id == row_id).values(**values))


def _unheard_refund(rt, clinic, channel: str, payment, amount_fen: int, final_status: str = "processing") -> str:
    """A refund the channel made that the platform holds as `final_status` (it never heard the outcome)."""
    with rt.db.session() as session:
        attempt = session.get(PaymentAttempt, payment.attempt_id)
        request = RefundRequest(refund_request_no=ids.new_business_no("refund", utcnow()), clinic_id=clinic.id,
                                origin="admin", order_id=attempt.order_id, amount_fen=amount_fen,
                                status="processing", reason="reconciliation test")
        session.add(request)
        part = executor.add_refund(session, request, attempt, amount_fen)
        session.flush()
        part.status, part.next_query_at = "processing", None
        refund_id, refund_no = part.id, part.refund_no
    adapter(rt, clinic, channel).refund(payment.out_trade_no, refund_no, payment.amount_fen, amount_fen, "测试", None)
    _set(rt, Refund, refund_id, status=final_status, next_query_at=None)
    return refund_no


def _phantom_payment(rt, clinic, channel: str, amount_fen: int, paid_at: datetime) -> str:
    """A payment the platform holds as paid that the channel never took (the patient never paid)."""
    _order_no, pay, _card = unpaid_topup(rt, clinic, channel, amount_fen)
    with rt.db.session() as session:
        session.execute(update(PaymentAttempt).where(PaymentAttempt.out_trade_no == pay.out_trade_no).values(
            status="paid", paid_at=paid_at, channel_trade_no="PHANTOM", next_query_at=None))
    return pay.out_trade_no


def _stranger_trade(rt, clinic, channel: str, amount_fen: int) -> str:
    """A trade on the merchant account that the platform never created."""
    channel_api = adapter(rt, clinic, channel)
    number = "X" + secrets.token_hex(10)
    payer = "oStranger" if channel == "wechat" else "2088000000000001"
    prepay = channel_api.create_payment(number, amount_fen, "窗口外收款", payer, "http://127.0.0.1:1/notify",
                                        datetime.now(UTC) + timedelta(minutes=15), "127.0.0.1")
    if channel == "wechat":
        sandbox_post(clinic.sandbox_url, "/sandbox/wechat/pay", {"prepay_id": prepay.prepay_id, "outcome": "success"})
    else:
        sandbox_post(clinic.sandbox_url, "/sandbox/alipay/pay", {"trade_no": prepay.trade_no, "outcome": "success"})
    return number


def _bill_fees(rt, clinic, channel: str, day, tmp_path: Path) -> int:
    path = adapter(rt, clinic, channel).download_bill(day, tmp_path / f"{channel}.bill")
    if channel == "wechat":
        with open(path, encoding="utf-8", newline="") as lines:
            return sum(row.fee_fen for row in WeChatBill(lines))
    return sum(row.fee_fen for row in AlipayBill(path))


@pytest.mark.parametrize("channel", CHANNELS)
def test_every_outcome_and_a_second_run_changes_nothing(rt, world, channel, tmp_path):
    clinic = own_clinic(rt, world.url)
    today = today_shanghai()
    matched = paid(rt, clinic, channel, 1000)
    unheard = patient_pays(rt, clinic, channel, 2000)
    wrong = paid(rt, clinic, channel, 3000)
    _set(rt, PaymentAttempt, wrong.attempt_id, amount_fen=3001)
    phantom = _phantom_payment(rt, clinic, channel, 4000, utcnow())
    stranger = _stranger_trade(rt, clinic, channel, 5000)
    refund(rt, matched, 300)  # settled on both sides: a match
    refunded_later = paid(rt, clinic, channel, 6000)
    refund_unheard = _unheard_refund(rt, clinic, channel, refunded_later, 600)
    refunded_failed = paid(rt, clinic, channel, 7000)
    refund_failed = _unheard_refund(rt, clinic, channel, refunded_failed, 700, final_status="failed")

    run = reconciliation.reconcile(rt, today, channel, clinic.id, clinic.account(channel))

    assert run["status"] == "done" and run["provisional"] is True
    assert findings(rt, run["id"]) == {
        unheard.out_trade_no: (MISSING_ON_PLATFORM, REPAIRED),
        wrong.out_trade_no: (AMOUNT_MISMATCH, OPEN),
        phantom: (MISSING_AT_CHANNEL, HELD),
        stranger: (MISSING_ON_PLATFORM, OPEN),
        refund_unheard: (MISSING_ON_PLATFORM, REPAIRED),
        refund_failed: (STATUS_MISMATCH, OPEN),
    }
    # matched: three payments, their refund that settled normally.
    assert run["counts"] == {"matched": 4, "discrepancies": 3, "repaired": 2, "held": 1}
    totals = run["totals"]
    assert (totals["bill_payments"], totals["bill_refunds"]) == (6, 3)
    assert totals["bill_fee_fen"] == _bill_fees(rt, clinic, channel, today, tmp_path) > 0
    assert totals["platform_payments"] == 5 and totals["platform_refunds"] == 1

    # The repair completed the order as its notification would have, and its HIS write goes out once.
    assert send_his_writes(rt, unheard.order_no) == ["sent"]
    with rt.db.session() as session:
        assert session.scalar(select(Order.status).where(Order.order_no == unheard.order_no)) == "completed"
        assert session.get(Refund, session.scalar(select(Refund.id).where(Refund.refund_no == refund_unheard))
                           ).status == "succeeded"
    assert len(his_records(world.url, unheard.order_no, today)) == 1

    again = reconciliation.reconcile(rt, today, channel, clinic.id, clinic.account(channel))

    assert again["id"] == run["id"] and again["attempt"] == run["attempt"] + 1
    assert again["counts"] == run["counts"] and findings(rt, again["id"]) == findings(rt, run["id"])
    assert repairs_of(rt, payment_key(unheard.out_trade_no)) == 1 and repairs_of(rt, refund_key(refund_unheard)) == 1
    assert paid_events(rt, unheard.order_no) == 1
    assert send_his_writes(rt, unheard.order_no) == []
    assert len(his_records(world.url, unheard.order_no, today)) == 1


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_day_without_trades(rt, world, channel):
    clinic = own_clinic(rt, world.url)
    run = reconciliation.reconcile(rt, today_shanghai(), channel, clinic.id, clinic.account(channel))
    assert run["status"] == "done" and run["counts"] == {"matched": 0, "discrepancies": 0, "repaired": 0,
                                                         "held": 0}
    # WeChat answers "No Bill Exist"; Alipay serves a bill with an empty table.
    assert run["totals"]["bill_exists"] is (channel == "alipay") and run["totals"]["bill_rows"] == 0
    assert findings(rt, run["id"]) == {}


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_record_missing_from_its_bill_is_held_one_day_then_flagged(rt, world, channel):
    clinic = own_clinic(rt, world.url)
    today = today_shanghai()
    late_row = paid(rt, clinic, channel, 1100)  # billed today, recorded by us as of yesterday 23:59:59
    yesterday_end = datetime.combine(today, datetime.min.time(), timezone(timedelta(hours=8))) - timedelta(seconds=1)
    _set(rt, PaymentAttempt, late_row.attempt_id, paid_at=yesterday_end)
    held = _phantom_payment(rt, clinic, channel, 1200, yesterday_end)
    flagged = _phantom_payment(rt, clinic, channel, 1300, yesterday_end - timedelta(days=1))

    yesterday = reconciliation.reconcile(rt, today - timedelta(days=1), channel, clinic.id, clinic.account(channel))
    before = reconciliation.reconcile(rt, today - timedelta(days=2), channel, clinic.id, clinic.account(channel))

    assert findings(rt, yesterday["id"]) == {held: (MISSING_AT_CHANNEL, HELD)}
    assert yesterday["counts"]["matched"] == 1, "the row billed the next day matches"
    assert findings(rt, before["id"]) == {flagged: (MISSING_AT_CHANNEL, OPEN)}
    assert not yesterday["provisional"] and not before["provisional"]


def test_a_bill_whose_totals_do_not_add_up_fails_the_run_and_repairs_nothing(rt, world, tmp_path):
    clinic = own_clinic(rt, world.url)
    today = today_shanghai()
    paid(rt, clinic, "wechat", 1000)
    unheard = patient_pays(rt, clinic, "wechat", 2000)
    channel_api = adapter(rt, clinic, "wechat")

    def tampered(day, dest: Path):
        path = channel_api.download_bill(day, dest)
        text = path.read_bytes().decode()
        head, trailer = text.rsplit("总交易单数", 1)
        values = trailer.split("\r\n")[1].split(",`")
        values[4] = "9999.99"  # 手续费总金额
        lines = trailer.split("\r\n")
        lines[1] = ",`".join(values)
        path.write_bytes((head + "总交易单数" + "\r\n".join(lines)).encode())
        return path

    with pytest.raises(BillIntegrityError, match="手续费总金额"):
        reconciliation.reconcile(rt, today, "wechat", clinic.id, clinic.account("wechat"), fetch=tampered)

    with rt.db.session() as session:
        run = session.scalar(select(ReconciliationRun).where(ReconciliationRun.clinic_id == clinic.id))
        attempt = session.get(PaymentAttempt, unheard.attempt_id)
    assert run.status == "failed" and "手续费总金额" in run.error
    assert attempt.status == "pending", "nothing is repaired from a bill that fails its own totals"
    assert repairs_of(rt, payment_key(unheard.out_trade_no)) == 0

    fixed = reconciliation.reconcile(rt, today, "wechat", clinic.id, clinic.account("wechat"))
    assert fixed["id"] == run.id and fixed["status"] == "done" and fixed["counts"]["repaired"] == 1


def test_a_resolution_survives_the_day_being_run_again_and_is_audited(rt, world):
    clinic = own_clinic(rt, world.url)
    today = today_shanghai()
    strangers = {_stranger_trade(rt, clinic, "alipay", 5000), _stranger_trade(rt, clinic, "alipay", 5100)}
    run = reconciliation.reconcile(rt, today, "alipay", clinic.id, clinic.account("alipay"))
    finance = StaffPrincipal(user_id=1, username="finance-recon", role="finance", clinic_ids=(clinic.id,))
    items = reconciliation.list_discrepancies(rt, finance, run["id"], type_=MISSING_ON_PLATFORM)["items"]
    assert {i["ref"] for i in items} == strangers
    # The second row resolved: a result's rows are written in one executemany, the first row naming the columns.
    first, item = items[0]["ref"], items[1]
    stranger = item["ref"]
    assert item["their_amount_fen"] in (5000, 5100) and item["our_amount_fen"] is None

    resolved = reconciliation.resolve_discrepancy(rt, finance, item["id"], "trust_channel", "窗口外收款，已入账")

    assert resolved["status"] == "resolved" and resolved["resolved_by"] == "finance-recon"
    again = reconciliation.reconcile(rt, today, "alipay", clinic.id, clinic.account("alipay"))
    kept = {i["ref"]: i for i in reconciliation.list_discrepancies(rt, finance, again["id"])["items"]}
    assert (kept[first]["status"], kept[first]["resolution"]) == ("open", None)
    assert (kept[stranger]["status"], kept[stranger]["resolution"], kept[stranger]["note"]) == (
        "resolved", "trust_channel", "窗口外收款，已入账")
    assert again["counts"]["discrepancies"] == 2
    with rt.db.session() as session:
        audit = session.scalars(select(AuditEvent).where(AuditEvent.clinic_id == clinic.id)
                                .order_by(AuditEvent.id)).all()
    actions = [(a.action, a.actor_name) for a in audit]
    assert ("reconciliation_resolve", "finance-recon") in actions
    assert actions.count(("reconciliation_run", "platform")) == 2
    with pytest.raises(Conflict, match="only open ones"):
        reconciliation.resolve_discrepancy(rt, finance, kept[stranger]["id"], "ignore", "again")
