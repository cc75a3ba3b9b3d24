"""Starting reconciliation by hand (`flask reconcile`) and on the daily schedule."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from croniter import croniter
from sqlalchemy import update

from app.db.models import Clinic, PaymentAttempt
from app.services import reconciliation
from app.services.reconciliation import HELD, MISSING_AT_CHANNEL, OPEN, daily_cron
from app.services.reconciliation.findings import SHANGHAI, Finding, RunOutcome
from app.services.reconciliation.runs import finish_run, start_run
from config.settings import ConfigurationError
from tests.integration.reconciliation_support import findings, own_clinic, paid, today_shanghai, unpaid_topup
from tests.processes import SandboxProcess


@pytest.fixture(scope="module")
def world():
    proc = SandboxProcess().start()
    yield proc
    proc.stop()


def test_the_command_reconciles_every_account_of_a_clinic_and_fails_loudly(app, rt, world):
    clinic = own_clinic(rt, world.url)
    paid(rt, clinic, "wechat", 1000)
    runner = app.test_cli_runner()
    today = today_shanghai().isoformat()

    done = runner.invoke(args=["reconcile", "--date", today, "--source", "wechat", "--clinic", clinic.code])

    assert done.exit_code == 0, done.output
    assert f"{today} wechat" in done.output and "done, matched 1, discrepancies 0, repaired 0, held 0" in done.output
    assert "bill rows 1, fees 0.06 yuan" in done.output and "provisional" in done.output

    unknown = runner.invoke(args=["reconcile", "--date", today, "--source", "his", "--clinic", "no-such-clinic"])
    assert unknown.exit_code != 0 and "no clinic no-such-clinic" in unknown.output
    bad_date = runner.invoke(args=["reconcile", "--date", "2026-13-01", "--source", "his"])
    assert bad_date.exit_code == 2

    with rt.db.session() as session:
        session.get(Clinic, clinic.id).his_base_url = "http://127.0.0.1:1/his/"  # a HIS that does not answer
    failed = runner.invoke(args=["reconcile", "--date", today, "--source", "his", "--clinic", clinic.code])
    assert failed.exit_code == 1 and "FAILED: HisUnreachable" in failed.output
    assert "1 of 1 reconciliation runs failed" in failed.output


def test_the_daily_job_runs_yesterday_and_settles_the_day_before_that_held(rt, world):
    clinic = own_clinic(rt, world.url)
    today = today_shanghai()
    before = today - timedelta(days=2)
    _order_no, pay, _card = unpaid_topup(rt, clinic, "alipay", 1900)
    at = datetime.combine(before, datetime.min.time(), SHANGHAI) + timedelta(hours=12)
    with rt.db.session() as session:
        session.execute(update(PaymentAttempt).where(PaymentAttempt.out_trade_no == pay.out_trade_no)
                        .values(status="paid", paid_at=at, channel_trade_no="PHANTOM", next_query_at=None))
    # As the run of that day found it while its next day was still going on: held.
    ticket = start_run(rt, before, "alipay", clinic.id, clinic.account("alipay"))
    finish_run(rt, ticket, RunOutcome(findings=[Finding(MISSING_AT_CHANNEL, HELD, "payment", pay.out_trade_no)]))

    results = reconciliation.run_daily(rt, today, clinic_code=clinic.code)

    assert sorted((r["source"], r["date"], r["status"]) for r in results) == sorted([
        ("wechat", (today - timedelta(days=1)).isoformat(), "done"),
        ("alipay", (today - timedelta(days=1)).isoformat(), "done"),
        ("alipay", before.isoformat(), "done"),
        ("his", (today - timedelta(days=1)).isoformat(), "done"),
    ])
    [settled] = [r for r in results if r["date"] == before.isoformat()]
    assert settled["id"] == ticket.run_id
    assert findings(rt, settled["id"]) == {pay.out_trade_no: (MISSING_AT_CHANNEL, OPEN)}


def test_the_schedule_fires_at_the_configured_shanghai_time():
    cron = daily_cron("10:30")
    local_now = datetime.now().astimezone()
    fire = croniter(cron, local_now.replace(tzinfo=None)).get_next(datetime).replace(tzinfo=local_now.tzinfo)
    assert (fire.astimezone(SHANGHAI).hour, fire.astimezone(SHANGHAI).minute) == (10, 30)
    assert daily_cron("00:05").split()[:2] != cron.split()[:2]
    for wrong in ("25:00", "10.30", "", "7:5"):
        with pytest.raises(ConfigurationError):
            daily_cron(wrong)
