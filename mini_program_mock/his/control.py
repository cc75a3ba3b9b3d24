"""/sandbox/ control routes for the HIS: what it recorded, its cards, and test set-up helpers.

These stand outside the HIS's own API: no HIS key, no faults.
"""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from ..world import current_world
from . import fail_next, store
from .validation import (
    BILL_KINDS,
    HisRefusal,
    amount,
    business_date,
    choice,
    id_number,
    json_body,
    mask_phone,
    phone,
    text,
)

bp = Blueprint("sandbox_his_control", __name__, url_prefix="/sandbox")


@bp.errorhandler(HisRefusal)
def refused(exc: HisRefusal):
    return exc.response()


@bp.get("/his/records")
def his_records():
    day = business_date(request.args.get("date"))
    return jsonify(store.records_on(current_world().conn(), day))


@bp.get("/cards/<card_no>")
def card(card_no: str):
    return jsonify(store.card_json(current_world().conn(), card_no))


@bp.post("/his/cards")
def new_patient_with_card():
    body = json_body()
    name, mobile, id_no = text(body, "name", max_len=40), phone(body), id_number(body)
    balance_fen = amount(body, "balance_fen", minimum=0, default=0)
    world = current_world()
    with world.tx() as conn:
        now = store.stamp(world)
        patient_id = store.insert_patient(conn, now, name, mobile, id_no)
        answer = store.card_json(conn, store.insert_card(conn, now, patient_id, balance_fen))
    world.log("his_control", action="new_card", card_no=answer["card_no"], phone=mask_phone(mobile))
    return jsonify(answer), 201


@bp.post("/his/bills")
def new_bill():
    body = json_body()
    card_no, kind = text(body, "card_no"), choice(body, "kind", BILL_KINDS)
    title, amount_fen = text(body, "title"), amount(body)
    world = current_world()
    with world.tx() as conn:
        store.card_row(conn, card_no)
        bill_id = store.insert_bill(conn, store.stamp(world), card_no, kind, title, amount_fen)
        answer = store.bill_json(store.bill_row(conn, bill_id))
        # Queued in the bill's own transaction: a bill is never left unannounced by a crash in between.
        _events().announce("bill_created", card_no, bill_id)
    world.log("his_control", action="new_bill", card_no=card_no, bill_id=bill_id, amount_fen=amount_fen)
    return jsonify(answer), 201


def _events():
    return current_app.extensions["sandbox_his_events"]


def _require_unpaid(bill) -> None:
    if bill["status"] == "paid":
        raise HisRefusal(409, "bill_already_paid", f"bill {bill['bill_id']} is already paid by {bill['paid_by']}")
    if bill["status"] == "cancelled":
        raise HisRefusal(409, "bill_cancelled", f"bill {bill['bill_id']} was cancelled")


@bp.post("/his/bills/<bill_id>/cancel")
def cancel_bill(bill_id: str):
    """The doctor withdraws an unpaid bill; the HIS announces it so the platform stops offering it."""
    world = current_world()
    with world.tx() as conn:
        bill = store.bill_row(conn, bill_id)
        _require_unpaid(bill)
        conn.execute("UPDATE his_bills SET status = 'cancelled', cancelled_at = ? WHERE bill_id = ?"
                     " AND status = 'unpaid'", (store.stamp(world), bill_id))
        answer = store.bill_json(store.bill_row(conn, bill_id))
        _events().announce("bill_cancelled", answer["card_no"], bill_id)
    world.log("his_control", action="cancel_bill", bill_id=bill_id)
    return jsonify(answer)


@bp.post("/his/bills/<bill_id>/pay-elsewhere")
def pay_elsewhere(bill_id: str):
    """The patient pays the bill at the hospital window, so a later online settlement is refused."""
    world = current_world()
    with world.tx() as conn:
        _require_unpaid(store.bill_row(conn, bill_id))
        conn.execute("UPDATE his_bills SET status = 'paid', paid_by = ?, paid_at = ? WHERE bill_id = ?"
                     " AND status = 'unpaid'", (store.WINDOW_PAYER, store.stamp(world), bill_id))
        answer = store.bill_json(store.bill_row(conn, bill_id))
    world.log("his_control", action="pay_elsewhere", bill_id=bill_id)
    return jsonify(answer)


@bp.get("/his/events")
def events_config():
    return jsonify(_events().config())


@bp.post("/his/events")
def configure_events():
    body = json_body()
    return jsonify(_events().configure(body.get("url"), body.get("key_id")))


@bp.delete("/his/events")
def clear_events():
    return jsonify(_events().clear())


@bp.post("/his/fail-next")
def set_fail_next():
    """The next `count` calls to the HIS path `path` answer 503 (see fail_next.py)."""
    body = json_body()
    path, count = text(body, "path", max_len=500), body.get("count")
    if not path.startswith("/his/"):
        raise HisRefusal(422, "invalid_request", "path must be a HIS path such as /his/cards/D0000001/bills")
    if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= 100:
        raise HisRefusal(422, "invalid_request", "count must be an integer from 0 to 100")
    return jsonify(fail_next.set_count(current_world(), path, count))


@bp.delete("/his/fail-next")
def clear_fail_next():
    fail_next.clear(current_world())
    return jsonify({})
