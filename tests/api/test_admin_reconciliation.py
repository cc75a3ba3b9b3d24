"""The admin reconciliation endpoints: start a run (a worker does it), read it and its discrepancies, resolve."""
from __future__ import annotations

import itertools
import secrets
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from app.db.models import ReconciliationDiscrepancy, ReconciliationRun
from app.services import reconciliation
from app.services.reconciliation.findings import OPEN, UNKNOWN_IN_HIS, Finding, RunOutcome
from app.services.reconciliation.runs import RunTicket, finish_run, start_run
from tests.api.admin_helpers import clinic_id, make_user, sign_in
from tests.api.test_admin_role_matrix import Call, Case
from tests.integration.reconciliation_support import adapter, own_clinic, sandbox_post, today_shanghai

ADMIN = "/api/admin/v1"
# Days of the year 2001 are the role matrix's own: a new one for every call, so no run is ever running twice.
_matrix_days = itertools.count()


def _matrix_day() -> date:
    return date(2001, 1, 1) + timedelta(days=next(_matrix_days))


def _run_with_open_discrepancy(rt, clinic: int) -> tuple[int, int]:
    """A finished HIS run of a matrix day holding one open discrepancy: (run id, discrepancy id)."""
    ticket = start_run(rt, _matrix_day(), "his", clinic)
    finish_run(rt, ticket, RunOutcome(findings=[Finding(UNKNOWN_IN_HIS, OPEN, "recharge", f"matrix:{ticket.run_id}",
                                                        their_amount_fen=100)]))
    with rt.db.session() as session:
        discrepancy_id = session.scalar(select(ReconciliationDiscrepancy.id).where(
            ReconciliationDiscrepancy.run_id == ticket.run_id))
    return ticket.run_id, discrepancy_id


def _demo(w) -> int:
    return clinic_id(w.rt)


def _elsewhere(w) -> int:
    return clinic_id(w.rt, w.other.code)


ROLE_MATRIX_CASES = {
    "admin_reconciliation.list_runs": Case(
        lambda w: Call("GET", "/reconciliation/runs"),
        lambda w: Call("GET", "/reconciliation/runs", {"query_string": {"clinic_code": w.other.code}})),
    "admin_reconciliation.start_run": Case(
        lambda w: Call("POST", "/reconciliation/runs", {"json": {"date": _matrix_day().isoformat(), "source": "his"}}),
        lambda w: Call("POST", "/reconciliation/runs", {"json": {"date": _matrix_day().isoformat(), "source": "his",
                                                                 "clinic_code": w.other.code}})),
    "admin_reconciliation.get_run": Case(
        lambda w: Call("GET", f"/reconciliation/runs/{_run_with_open_discrepancy(w.rt, _demo(w))[0]}"),
        lambda w: Call("GET", f"/reconciliation/runs/{_run_with_open_discrepancy(w.rt, _elsewhere(w))[0]}")),
    "admin_reconciliation.list_discrepancies": Case(
        lambda w: Call("GET", f"/reconciliation/runs/{_run_with_open_discrepancy(w.rt, _demo(w))[0]}/discrepancies"),
        lambda w: Call("GET",
                       f"/reconciliation/runs/{_run_with_open_discrepancy(w.rt, _elsewhere(w))[0]}/discrepancies")),
    "admin_reconciliation.resolve": Case(
        lambda w: Call("POST", f"/reconciliation/discrepancies/{_run_with_open_discrepancy(w.rt, _demo(w))[1]}/resolve",
                       {"json": {"resolution": "ignore", "note": "矩阵测试"}}),
        lambda w: Call("POST",
                       f"/reconciliation/discrepancies/{_run_with_open_discrepancy(w.rt, _elsewhere(w))[1]}/resolve",
                       {"json": {"resolution": "ignore", "note": "矩阵测试"}})),
}


def _stranger_trade(rt, clinic, sandbox_url: str) -> str:
    number = "X" + secrets.token_hex(10)
    prepay = adapter(rt, clinic, "wechat").create_payment(number, 4321, "窗口外收款", "oStranger",
                                                          "http://127.0.0.1:1/notify",
                                                          datetime.now(UTC) + timedelta(minutes=15),
                                                          "127.0.0.1")
    sandbox_post(sandbox_url, "/sandbox/wechat/pay", {"prepay_id": prepay.prepay_id, "outcome": "success"})
    return number


def test_finance_starts_a_run_reads_its_discrepancies_and_resolves_one(client, rt, sandbox, demo_clinic):
    clinic = own_clinic(rt, sandbox.url)
    stranger = _stranger_trade(rt, clinic, sandbox.url)
    headers = sign_in(client, *make_user(rt, "finance", (clinic.code,)))
    today = today_shanghai()

    started = client.post(f"{ADMIN}/reconciliation/runs", headers=headers,
                          json={"date": today.isoformat(), "source": "wechat"})

    assert started.status_code == 202, started.get_json()
    run = started.get_json()
    assert (run["status"], run["source"], run["date"], run["clinic_code"]) == ("running", "wechat",
                                                                              today.isoformat(), clinic.code)
    # The worker's half (a platform worker may have done it already: running it again is the same result).
    reconciliation.execute_started(rt, run["id"], run["attempt"])
    done = client.get(f"{ADMIN}/reconciliation/runs/{run['id']}", headers=headers).get_json()
    assert done["status"] == "done" and done["provisional"] is True
    assert done["counts"] == {"matched": 0, "discrepancies": 1, "repaired": 0, "held": 0}
    assert done["totals"]["bill_rows"] == 1 and done["totals"]["bill_fee_fen"] == 26

    listed = client.get(f"{ADMIN}/reconciliation/runs/{run['id']}/discrepancies", headers=headers,
                        query_string={"type": "missing_on_platform", "status": "open"}).get_json()
    [item] = listed["items"]
    assert (item["ref"], item["their_amount_fen"], item["our_amount_fen"]) == (stranger, 4321, None)
    assert client.get(f"{ADMIN}/reconciliation/runs/{run['id']}/discrepancies", headers=headers,
                      query_string={"type": "amount_mismatch"}).get_json()["total"] == 0
    runs = client.get(f"{ADMIN}/reconciliation/runs", headers=headers,
                      query_string={"source": "wechat", "date": today.isoformat()}).get_json()
    assert [r["id"] for r in runs["items"]] == [run["id"]]

    resolved = client.post(f"{ADMIN}/reconciliation/discrepancies/{item['id']}/resolve", headers=headers,
                           json={"resolution": "trust_channel", "note": "窗口外收款"})
    assert resolved.status_code == 200, resolved.get_json()
    assert (resolved.get_json()["status"], resolved.get_json()["resolution"]) == ("resolved", "trust_channel")
    again = client.post(f"{ADMIN}/reconciliation/discrepancies/{item['id']}/resolve", headers=headers,
                        json={"resolution": "ignore", "note": "twice"})
    assert (again.status_code, again.get_json()["error"]) == (409, "discrepancy_not_open")


def test_a_run_delivered_twice_keeps_the_discrepancies_finance_is_working_on(rt, demo_clinic):
    """A redelivered job executing the same attempt again must not replace the rows (and ids) of its result."""
    run_id, discrepancy_id = _run_with_open_discrepancy(rt, clinic_id(rt))
    with rt.db.session() as session:
        run = session.get(ReconciliationRun, run_id)
        ticket = RunTicket(run.id, run.attempt, run.business_date, run.source, run.clinic_id, None, "platform")

    stored = finish_run(rt, ticket, RunOutcome(findings=[Finding(UNKNOWN_IN_HIS, OPEN, "recharge", "another",
                                                                 their_amount_fen=1)]))
    again = reconciliation.execute_started(rt, run_id, ticket.attempt)

    assert stored is False
    assert again["status"] == "done"
    with rt.db.session() as session:
        rows = session.execute(select(ReconciliationDiscrepancy.id, ReconciliationDiscrepancy.ref).where(
            ReconciliationDiscrepancy.run_id == run_id)).all()
    assert rows == [(discrepancy_id, f"matrix:{run_id}")]


def test_refusals(client, rt, sandbox, demo_clinic):
    clinic = own_clinic(rt, sandbox.url)
    headers = sign_in(client, *make_user(rt, "finance", (clinic.code,)))
    tomorrow = (today_shanghai() + timedelta(days=1)).isoformat()

    def post(body):
        return client.post(f"{ADMIN}/reconciliation/runs", headers=headers, json=body)

    assert post({"date": tomorrow, "source": "his"}).get_json()["error"] == "date_in_future"
    assert post({"date": "2024-01-01", "source": "unionpay"}).status_code == 422
    assert post({"date": "1999-12-31", "source": "his"}).status_code == 422
    held = start_run(rt, date(2002, 3, 4), "his", clinic.id)  # nobody runs it: it stays running
    busy = post({"date": "2002-03-04", "source": "his"})
    assert (busy.status_code, busy.get_json()["error"]) == (409, "reconciliation_running")
    assert client.get(f"{ADMIN}/reconciliation/runs/{held.run_id}/discrepancies", headers=headers,
                      query_string={"type": "nonsense"}).status_code == 422
    assert client.get(f"{ADMIN}/reconciliation/runs/2147483647", headers=headers).status_code == 404
    assert client.post(f"{ADMIN}/reconciliation/discrepancies/1/resolve", headers=headers,
                       json={"resolution": "maybe", "note": "x"}).status_code == 422
    assert client.post(f"{ADMIN}/reconciliation/discrepancies/1/resolve", headers=headers,
                       json={"resolution": "ignore", "note": ""}).status_code == 422
