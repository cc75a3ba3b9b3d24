"""Reconciliation you can hand on, over HTTP: a run's export and the claims against the channels."""
from __future__ import annotations

import csv
import io

from sqlalchemy import select

from app.db.models import MerchantAccount
from app.services import reconciliation
from app.services.common.principals import StaffPrincipal
from app.services.reconciliation.findings import MISSING_AT_CHANNEL, OPEN, Finding, RunOutcome
from app.services.reconciliation.runs import finish_run, start_run
from tests.api.admin_helpers import clinic_id, make_user, sign_in
from tests.api.test_admin_reconciliation import _demo, _elsewhere, _matrix_day, _run_with_open_discrepancy
from tests.api.test_admin_role_matrix import Call, Case

ADMIN = "/api/admin/v1"


def _claim(rt, clinic: int) -> int:
    """A claim against the channel: a WeChat run's missing_at_channel decided trust_platform."""
    with rt.db.session() as session:
        account = session.scalar(select(MerchantAccount.id).where(MerchantAccount.clinic_id == clinic,
                                                                  MerchantAccount.channel == "wechat")
                                 .order_by(MerchantAccount.id))
        if account is None:  # a clinic of the test's own without apps
            made = MerchantAccount(clinic_id=clinic, channel="wechat", app_id=f"wxclaim{clinic}", sign_type="MD5",
                                   api_base_url="http://127.0.0.1:1/")
            session.add(made)
            session.flush()
            account = made.id
    ticket = start_run(rt, _matrix_day(), "wechat", clinic, account)
    finish_run(rt, ticket, RunOutcome(findings=[Finding(MISSING_AT_CHANNEL, OPEN, "payment",
                                                          f"matrix-claim:{ticket.run_id}", our_amount_fen=700)]))
    run = reconciliation.list_discrepancies(rt, StaffPrincipal(0, "setup", "finance", (clinic,)), ticket.run_id)
    resolved = reconciliation.resolve_discrepancy(rt, StaffPrincipal(0, "setup", "finance", (clinic,)),
                                                  run["items"][0]["id"], "trust_platform", "渠道漏单")
    return resolved["claim_id"]


ROLE_MATRIX_CASES = {
    "admin_reconciliation_files.export_run": Case(
        lambda w: Call("GET", f"/reconciliation/runs/{_run_with_open_discrepancy(w.rt, _demo(w))[0]}/export",
                       {"query_string": {"format": "csv"}}),
        lambda w: Call("GET", f"/reconciliation/runs/{_run_with_open_discrepancy(w.rt, _elsewhere(w))[0]}/export",
                       {"query_string": {"format": "csv"}})),
    "admin_reconciliation_files.list_claims": Case(
        lambda w: Call("GET", "/reconciliation/claims"),
        lambda w: Call("GET", "/reconciliation/claims", {"query_string": {"clinic_code": w.other.code}})),
    "admin_reconciliation_files.settle_claim": Case(
        lambda w: Call("POST", f"/reconciliation/claims/{_claim(w.rt, _demo(w))}/settle", {"json": {"note": "已补款"}}),
        lambda w: Call("POST", f"/reconciliation/claims/{_claim(w.rt, _elsewhere(w))}/settle",
                       {"json": {"note": "已补款"}})),
}


def test_finance_downloads_a_run_and_settles_a_claim_over_http(client, rt, demo_clinic):
    username, password = make_user(rt, "finance")
    headers = sign_in(client, username, password)
    run_id, _ = _run_with_open_discrepancy(rt, clinic_id(rt))

    resp = client.get(f"{ADMIN}/reconciliation/runs/{run_id}/export", query_string={"format": "csv"},
                      headers=headers)
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert f"run{run_id}.csv" in resp.headers["Content-Disposition"]
    table = list(csv.reader(io.StringIO(resp.get_data().decode("utf-8-sig"))))
    assert table[0][:2] == ["结果", "结果代码"]
    assert [row[1] for row in table[1:] if row[5] == f"matrix:{run_id}"] == ["unknown_in_his"]
    assert client.get(f"{ADMIN}/reconciliation/runs/{run_id}/export", query_string={"format": "pdf"},
                      headers=headers).status_code == 422

    claim_id = _claim(rt, clinic_id(rt))
    listed = client.get(f"{ADMIN}/reconciliation/claims", query_string={"status": "open"}, headers=headers).get_json()
    assert claim_id in {item["id"] for item in listed["items"]}
    assert next(i for i in listed["items"] if i["id"] == claim_id)["amount_fen"] == 700
    assert client.post(f"{ADMIN}/reconciliation/claims/{claim_id}/settle", json={"note": ""},
                       headers=headers).status_code == 422
    first = client.post(f"{ADMIN}/reconciliation/claims/{claim_id}/settle", json={"note": "渠道已补款"},
                        headers=headers)
    second = client.post(f"{ADMIN}/reconciliation/claims/{claim_id}/settle", json={"note": "渠道已补款"},
                         headers=headers)
    assert first.status_code == 200 and first.get_json()["status"] == "settled"
    assert (second.status_code, second.get_json()["error"]) == (409, "claim_already_settled")
