"""HIS reconciliation: the HIS's daily export against the writes we made, on a sandbox of this module's own."""
from __future__ import annotations

import pytest
import requests
from sqlalchemy import select, update

from app.db.models import Clinic, HisOutbox, Order
from app.db.types import utcnow
from app.services import reconciliation
from app.services.his.gateway import his_client
from app.services.payments import attempts
from app.services.reconciliation import AMOUNT_MISMATCH, MISSING_IN_HIS, OPEN, REPAIRED, STATUS_MISMATCH, UNKNOWN_IN_HIS
from app.services.reconciliation.repairs import his_key
from tests.integration.reconciliation_support import (
    findings,
    his_records,
    own_clinic,
    paid,
    patient_pays,
    repairs_of,
    send_his_writes,
    today_shanghai,
)
from tests.processes import SandboxProcess


@pytest.fixture(scope="module")
def world():
    proc = SandboxProcess().start()
    yield proc
    proc.stop()


def _write(rt, order_no: str) -> HisOutbox:
    with rt.db.session() as session:
        order = session.scalar(select(Order).where(Order.order_no == order_no))
        return session.scalar(select(HisOutbox).where(HisOutbox.order_id == order.id))


def _set_write(rt, outbox_id: int, **values) -> None:
    with rt.db.session() as session:
        session.execute(update(HisOutbox).where(HisOutbox.id == outbox_id).values(**values))


def _balance(sandbox_url: str, card_no: str) -> int:
    return requests.get(f"{sandbox_url}/sandbox/cards/{card_no}", timeout=10).json()["balance_fen"]


def _order_status(rt, order_no: str) -> str:
    with rt.db.session() as session:
        return session.scalar(select(Order.status).where(Order.order_no == order_no))


def test_a_lost_his_write_is_re_driven_once(rt, world):
    clinic = own_clinic(rt, world.url)
    today = today_shanghai()
    kept = paid(rt, clinic, "wechat", 1400)
    lost = patient_pays(rt, clinic, "wechat", 1500)
    assert attempts.query_attempt(rt, lost.attempt_id) == "paid"
    write = _write(rt, lost.order_no)
    # Acknowledged, then lost by the HIS (restored from a backup, say): we hold it sent, the HIS holds nothing.
    _set_write(rt, write.id, status="sent", sent_at=utcnow(), his_record_id="R-LOST")

    run = reconciliation.reconcile(rt, today, "his", clinic.id)

    key = f"{lost.order_no}:recharge"
    assert write.idempotency_key == key
    assert findings(rt, run["id"]) == {key: (MISSING_IN_HIS, REPAIRED)}
    assert run["counts"] == {"matched": 1, "discrepancies": 0, "repaired": 1, "held": 0}
    assert _write(rt, lost.order_no).status == "pending", "re-driven under its own idempotency key"
    assert send_his_writes(rt, lost.order_no) == ["sent"]
    assert [r["amount_fen"] for r in his_records(world.url, lost.order_no, today)] == [1500]
    assert _balance(world.url, lost.card_no) == 1500

    again = reconciliation.reconcile(rt, today, "his", clinic.id)

    assert findings(rt, again["id"]) == {key: (MISSING_IN_HIS, REPAIRED)}
    assert again["counts"] == run["counts"]
    assert repairs_of(rt, his_key(key)) == 1 and _write(rt, lost.order_no).status == "sent"
    assert len(his_records(world.url, lost.order_no, today)) == 1 and _balance(world.url, lost.card_no) == 1500
    assert len(his_records(world.url, kept.order_no, today)) == 1


def test_a_write_given_up_on_that_the_his_recorded_completes_the_order(rt, world):
    clinic = own_clinic(rt, world.url)
    today = today_shanghai()
    payment = patient_pays(rt, clinic, "alipay", 1600)
    assert attempts.query_attempt(rt, payment.attempt_id) == "paid"
    write = _write(rt, payment.order_no)
    with rt.db.session() as session:
        client = his_client(rt, session.get(Clinic, clinic.id))
    # The HIS wrote it, but every answer was lost: the outbox gave up after its retry horizon.
    client.recharge(payment.card_no, 1600, payment.order_no, write.idempotency_key)
    _set_write(rt, write.id, status="flagged", last_error="HisUnavailable: timed out")
    assert _order_status(rt, payment.order_no) == "paid"

    run = reconciliation.reconcile(rt, today, "his", clinic.id)

    assert findings(rt, run["id"]) == {write.idempotency_key: (STATUS_MISMATCH, REPAIRED)}
    assert send_his_writes(rt, payment.order_no) == ["sent"]
    assert _order_status(rt, payment.order_no) == "completed"
    assert len(his_records(world.url, payment.order_no, today)) == 1 and _balance(world.url, payment.card_no) == 1600


@pytest.fixture()
def lone_world():
    """A HIS no other test writes to: its export holds only this test's records."""
    proc = SandboxProcess().start()
    yield proc
    proc.stop()


def test_unknown_records_and_amounts_the_his_disagrees_with(rt, lone_world):
    clinic = own_clinic(rt, lone_world.url)
    today = today_shanghai()
    agreed = paid(rt, clinic, "wechat", 1700)
    disputed = paid(rt, clinic, "wechat", 1800)
    write = _write(rt, disputed.order_no)
    _set_write(rt, write.id, payload={**write.payload, "amount_fen": 1801})
    with rt.db.session() as session:
        client = his_client(rt, session.get(Clinic, clinic.id))
    client.recharge(agreed.card_no, 999, "T-WINDOW-0001", "window:T-WINDOW-0001:recharge")

    run = reconciliation.reconcile(rt, today, "his", clinic.id)

    assert findings(rt, run["id"]) == {write.idempotency_key: (AMOUNT_MISMATCH, OPEN),
                                       "window:T-WINDOW-0001:recharge": (UNKNOWN_IN_HIS, OPEN)}
    assert run["counts"] == {"matched": 1, "discrepancies": 2, "repaired": 0, "held": 0}
    assert run["totals"]["his_records"] == 3 and run["totals"]["platform_writes"] == 2
