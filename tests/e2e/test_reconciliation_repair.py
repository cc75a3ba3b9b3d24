"""A payment whose notification the channel dropped is found in the day's bill and completed, once.

The platform runs on real processes; its scheduler is stopped while the patient pays, so that nothing
but the reconciliation can learn of the payment (the query schedule would otherwise find it first).
"""
from __future__ import annotations

import secrets

from app.services import reconciliation
from app.services.reconciliation import MISSING_ON_PLATFORM, REPAIRED
from app.services.reconciliation.repairs import payment_key
from mini_program_mock.patient import MiniProgramClient
from tests.api.mp_helpers import channel_user_id
from tests.e2e.fault_helpers import (
    assert_applied_once,
    new_topup,
    own_card,
    patient_pays,
    sandbox_faults,
    start_payment,
    stopped,
    wait_for_status,
)
from tests.e2e.helpers import order_row
from tests.integration.channel_helpers import sandbox_today
from tests.integration.reconciliation_support import findings, own_clinic, repairs_of


def test_a_dropped_notification_is_repaired_by_reconciliation_exactly_once(platform, sandbox, rt):
    clinic = own_clinic(rt, sandbox.url)
    card_no = own_card(sandbox)
    client = MiniProgramClient(platform.url, sandbox.url, "wechat", clinic_code=clinic.code, say=lambda _: None)
    client.login(channel_user_id("wechat", f"recon-{secrets.token_hex(4)}"))
    client.patient_with_card(card_no)
    order = new_topup(client, card_no, 2500)
    day = sandbox_today(sandbox.url)

    with stopped(platform.cron):
        pay = start_payment(client, order["order_no"])
        with sandbox_faults(sandbox, notify_drop_rate=1.0):
            patient_pays(client, pay)
        assert order_row(rt, order["order_no"]).status == "created", "the platform has not heard of the payment"

        run = reconciliation.reconcile(rt, day, "wechat", clinic.id, clinic.account("wechat"))

        assert findings(rt, run["id"]) == {pay["out_trade_no"]: (MISSING_ON_PLATFORM, REPAIRED)}
        assert run["counts"] == {"matched": 0, "discrepancies": 0, "repaired": 1, "held": 0}
        assert order_row(rt, order["order_no"]).status == "paid"

    wait_for_status(rt, order["order_no"], "completed")  # the dispatcher sends the HIS write it owes
    assert_applied_once(rt, client, order)

    again = reconciliation.reconcile(rt, day, "wechat", clinic.id, clinic.account("wechat"))

    assert again["id"] == run["id"] and again["counts"] == run["counts"]
    assert findings(rt, again["id"]) == findings(rt, run["id"])
    assert repairs_of(rt, payment_key(pay["out_trade_no"])) == 1
    assert_applied_once(rt, client, order)
