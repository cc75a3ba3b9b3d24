"""Reconciliation you can hand on, against the sandbox's real bills on both channels: decisions that act
(trust_channel repairs through the automatic repair, trust_platform records a claim), claims settled once, and
a run's export listing every line with its outcome."""
from __future__ import annotations

import csv
import io
import secrets
from datetime import UTC, datetime, timedelta

import openpyxl
import pytest
from sqlalchemy import select

from app.db.models import AuditEvent, HisOutbox, Order, PaymentAttempt, ReconciliationDiscrepancy
from app.domain.errors import Conflict, InvalidInput, NotFound
from app.services import reconciliation
from app.services.common.principals import StaffPrincipal
from app.services.reconciliation import MISSING_ON_PLATFORM, claims, run_export
from app.services.reconciliation.repairs import payment_key
from tests.integration.reconciliation_support import (
    adapter,
    own_clinic,
    own_runtime,
    paid,
    patient_pays,
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
    runtime = own_runtime(settings, postgres_url, "hpay_recon_handover")
    yield runtime
    runtime.close()


def _finance(clinic) -> StaffPrincipal:
    return StaffPrincipal(user_id=7, username="finance-handover", role="finance", clinic_ids=(clinic.id,))


def _stranger_trade(rt, clinic, channel: str, amount_fen: int) -> str:
    number = "X" + secrets.token_hex(10)
    payer = "oStranger" if channel == "wechat" else "2088000000000001"
    prepay = adapter(rt, clinic, channel).create_payment(number, amount_fen, "窗口外收款", payer,
                                                         "http://127.0.0.1:1/notify",
                                                         datetime.now(UTC) + timedelta(minutes=15), "127.0.0.1")
    if channel == "wechat":
        sandbox_post(clinic.sandbox_url, "/sandbox/wechat/pay", {"prepay_id": prepay.prepay_id, "outcome": "success"})
    else:
        sandbox_post(clinic.sandbox_url, "/sandbox/alipay/pay", {"trade_no": prepay.trade_no, "outcome": "success"})
    return number


def _left_open(rt, run_id: int, type_: str, kind: str, ref: str, their: int | None, our: int | None) -> int:
    """A discrepancy as a run leaves it open when the channel did not answer its repair query."""
    with rt.db.session() as session:
        row = ReconciliationDiscrepancy(run_id=run_id, type=type_, status="open", kind=kind, ref=ref,
                                        their_amount_fen=their, our_amount_fen=our, their_status="SUCCESS",
                                        our_status="pending", occurred_at=datetime.now(UTC),
                                        detail="the channel did not answer the query; the next run tries again")
        session.add(row)
        session.flush()
        return row.id


def _run(rt, clinic, channel: str) -> dict:
    return reconciliation.reconcile(rt, today_shanghai(), channel, clinic.id, clinic.account(channel))


@pytest.mark.parametrize("channel", CHANNELS)
def test_trust_channel_repairs_a_payment_missing_on_our_side_as_the_automatic_repair_does(rt, world, channel):
    clinic = own_clinic(rt, world.url)
    run = _run(rt, clinic, channel)
    unheard = patient_pays(rt, clinic, channel, 2300)
    discrepancy_id = _left_open(rt, run["id"], MISSING_ON_PLATFORM, "payment", unheard.out_trade_no, 2300, 2300)

    resolved = reconciliation.resolve_discrepancy(rt, _finance(clinic), discrepancy_id, "trust_channel",
                                                  "渠道已收款，补记")

    assert (resolved["status"], resolved["resolution"]) == ("resolved", "trust_channel")
    assert resolved["repair"]["action"] == "record_payment" and resolved["repair"]["outcome"] == "paid"
    with rt.db.session() as session:
        attempt = session.get(PaymentAttempt, unheard.attempt_id)
        order = session.get(Order, attempt.order_id)
        writes = list(session.scalars(select(HisOutbox.kind).where(HisOutbox.order_id == order.id)))
        audit = session.scalar(select(AuditEvent).where(AuditEvent.action == "reconciliation_resolve",
                                                        AuditEvent.target_id == str(discrepancy_id)))
    assert attempt.status == "paid" and order.status == "paid" and writes == ["recharge"]
    assert send_his_writes(rt, unheard.order_no) == ["sent"]
    assert audit.before["status"] == "open" and audit.after["status"] == "resolved"
    assert audit.after["repair_id"] == resolved["repair"]["id"] and audit.actor_name == "finance-handover"
    # The day run again finds the payment recorded: nothing is repaired a second time.
    _run(rt, clinic, channel)
    assert repairs_of(rt, payment_key(unheard.out_trade_no)) == 1


@pytest.mark.parametrize("channel", CHANNELS)
def test_trust_channel_is_refused_when_the_channel_does_not_confirm_and_the_discrepancy_stays_open(
        rt, world, channel):
    clinic = own_clinic(rt, world.url)
    run = _run(rt, clinic, channel)
    order_no, pay, _ = unpaid_topup(rt, clinic, channel, 1800)
    discrepancy_id = _left_open(rt, run["id"], MISSING_ON_PLATFORM, "payment", pay.out_trade_no, 1800, 1800)

    with pytest.raises(Conflict) as refused:
        reconciliation.resolve_discrepancy(rt, _finance(clinic), discrepancy_id, "trust_channel", "看起来付了")

    assert refused.value.code == "repair_refused"
    with rt.db.session() as session:
        assert session.get(ReconciliationDiscrepancy, discrepancy_id).status == "open"
        assert session.scalar(select(PaymentAttempt.status)
                              .where(PaymentAttempt.out_trade_no == pay.out_trade_no)) == "pending"


@pytest.mark.parametrize("channel", CHANNELS)
def test_trust_platform_records_a_claim_against_the_channel_settled_once(rt, world, channel):
    clinic = own_clinic(rt, world.url)
    kept = paid(rt, clinic, channel, 4200)
    run = _run(rt, clinic, channel)
    discrepancy_id = _left_open(rt, run["id"], "amount_mismatch", "payment", kept.out_trade_no, 4000, 4200)
    finance = _finance(clinic)

    resolved = reconciliation.resolve_discrepancy(rt, finance, discrepancy_id, "trust_platform", "渠道少结 2 元")

    [claim] = claims.list_claims(rt, finance, status="open")["items"]
    assert resolved["claim_id"] == claim["id"]
    assert (claim["channel"], claim["amount_fen"], claim["ref"], claim["discrepancy_type"], claim["run_id"]) == (
        channel, 200, kept.out_trade_no, "amount_mismatch", run["id"])
    settled = claims.settle_claim(rt, finance, claim["id"], "渠道已补款")
    assert settled["status"] == "settled" and settled["settled_by"] == "finance-handover"
    with pytest.raises(Conflict) as refused:
        claims.settle_claim(rt, finance, claim["id"], "again")
    assert refused.value.code == "claim_already_settled"
    other = own_clinic(rt, world.url)
    with pytest.raises(NotFound):
        claims.settle_claim(rt, _finance(other), claim["id"], "not mine")
    assert claims.list_claims(rt, _finance(other))["items"] == []


def test_every_decision_needs_a_note(rt, world):
    clinic = own_clinic(rt, world.url)
    run = _run(rt, clinic, "wechat")
    discrepancy_id = _left_open(rt, run["id"], "missing_at_channel", "payment", "P" + secrets.token_hex(8), None, 900)
    for resolution in ("ignore", "trust_platform", "trust_channel"):
        with pytest.raises(InvalidInput) as refused:
            reconciliation.resolve_discrepancy(rt, _finance(clinic), discrepancy_id, resolution, "   ")
        assert refused.value.code == "note_required"


def _csv(exported) -> list[list[str]]:
    data = b"".join(exported.chunks)
    assert data.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_runs_export_lists_every_line_with_its_outcome(rt, world, channel):
    clinic = own_clinic(rt, world.url)
    matched = [paid(rt, clinic, channel, 1100), paid(rt, clinic, channel, 1200)]
    stranger = _stranger_trade(rt, clinic, channel, 5000)
    run = _run(rt, clinic, channel)
    assert run["counts"]["matched"] == 2 and run["counts"]["discrepancies"] == 1

    table = _csv(run_export.export_run(rt, _finance(clinic), run["id"], "csv"))

    header, rows = table[0], table[1:]
    by_ref = {row[header.index("单号")]: row for row in rows}
    assert set(by_ref) == {stranger, *(m.out_trade_no for m in matched)}
    assert by_ref[stranger][header.index("结果代码")] == "missing_on_platform"
    assert by_ref[stranger][header.index("渠道金额")] == "50.00"
    for payment in matched:
        line = by_ref[payment.out_trade_no]
        assert (line[header.index("结果代码")], line[header.index("平台金额")]) == (
            "matched", f"{payment.amount_fen / 100:.2f}")
    sheet = openpyxl.load_workbook(io.BytesIO(b"".join(run_export.export_run(
        rt, _finance(clinic), run["id"], "xlsx").chunks)), read_only=True).active
    cells = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert cells[0] == header and len(cells) == len(table)
    with pytest.raises(NotFound):
        run_export.export_run(rt, _finance(own_clinic(rt, world.url)), run["id"], "csv")
    with pytest.raises(InvalidInput):
        run_export.export_run(rt, _finance(clinic), run["id"], "pdf")
