"""The sandbox HIS's JSON API under /his/ (documented in the package docstring)."""
from __future__ import annotations

import time

from flask import Blueprint, current_app, g, jsonify, request

from ..world import SHANGHAI, current_world
from . import fail_next, store
from .auth import Refused, authenticate
from .validation import (
    BILL_KINDS,
    HisRefusal,
    amount,
    aware_datetime,
    business_date,
    choice,
    id_number,
    idempotency_key,
    invalid,
    json_body,
    mask_id_number,
    mask_phone,
    phone,
    text,
)

# Long enough that any sane client gives up first: the write is done, the answer never comes in time.
TIMEOUT_FAULT_SLEEP_S = 15.0

bp = Blueprint("sandbox_his", __name__, url_prefix="/his")


def _ledger():
    return current_app.extensions["sandbox_his_ledger"]


def _conn():
    return current_world().conn()


@bp.before_request
def authenticate_and_inject_faults():
    g.his_log = {}
    g.his_timeout_fault = False
    g.his_key_id = None
    world = current_world()
    try:
        g.his_key_id = authenticate(request, current_app.extensions["sandbox_merchants"].all("his"), world)
    except Refused as refused:
        g.his_log["error"] = refused.error
        return jsonify(error=refused.error, message=refused.message), 401
    faults = world.faults()
    if faults["his_latency_ms"]:
        time.sleep(faults["his_latency_ms"] / 1000)
    if fail_next.take(world, request.path) or world.chance(faults["his_error_rate"]):
        g.his_log["fault"] = "error"
        return jsonify(error="his_unavailable", message="sandbox fault: HIS temporarily unavailable"), 503
    g.his_timeout_fault = world.chance(faults["his_timeout_rate"])
    return None


@bp.after_request
def log_and_maybe_stall(response):
    world = current_world()
    details = getattr(g, "his_log", {})
    if getattr(g, "his_timeout_fault", False):
        details["fault"] = "timeout"
    world.log("his", method=request.method, path=request.path, status=response.status_code,
              client=getattr(g, "his_key_id", None), **details)
    if getattr(g, "his_timeout_fault", False):
        time.sleep(TIMEOUT_FAULT_SLEEP_S)
    return response


@bp.errorhandler(HisRefusal)
def refused(exc: HisRefusal):
    g.his_log["error"] = exc.error
    return exc.response()


def _written(operation: str, params: dict, key: str | None, **log_details):
    answer, replayed = _ledger().write(operation, params, key)
    g.his_log.update(operation=operation, idempotency_key=key, replayed=replayed, **log_details)
    return jsonify(answer), 200 if replayed else 201


def _money_write(operation: str, body: dict, **extra_params):
    params = {"card_no": text(body, "card_no"), "amount_fen": amount(body), "order_no": text(body, "order_no"),
              **extra_params}
    key = idempotency_key(body)
    return _written(operation, params, key, card_no=params["card_no"], order_no=params["order_no"],
                    amount_fen=params["amount_fen"])


# --- patients and cards ---------------------------------------------------------
@bp.post("/patients/search")
def find_patients():
    """A POST so that phone and ID numbers stay out of URLs and access logs."""
    body = json_body()
    by_phone = phone(body) if body.get("phone") is not None else None
    by_id = id_number(body)
    if by_phone is None and by_id is None:
        raise invalid("give phone or id_number to search patients")
    g.his_log.update(phone=mask_phone(by_phone) if by_phone else None, id_number=mask_id_number(by_id))
    return jsonify(patients=store.find_patients(_conn(), by_phone, by_id))


@bp.post("/patients")
def create_patient():
    body = json_body()
    params = {"name": text(body, "name", max_len=40), "phone": phone(body), "id_number": id_number(body)}
    return _written("create_patient", params, idempotency_key(body, required=False),
                    phone=mask_phone(params["phone"]), id_number=mask_id_number(params["id_number"]))


@bp.get("/patients/<patient_id>")
def get_patient(patient_id: str):
    return jsonify(store.require_patient(_conn(), patient_id))


@bp.post("/patients/<patient_id>/cards")
def open_card(patient_id: str):
    body = json_body() if request.get_data() else {}
    return _written("open_card", {"patient_id": patient_id}, idempotency_key(body, required=False),
                    patient_id=patient_id)


@bp.get("/cards/<card_no>")
def get_card(card_no: str):
    return jsonify(store.card_json(_conn(), card_no))


@bp.get("/cards/<card_no>/balance")
def get_balance(card_no: str):
    return jsonify(card_no=card_no, balance_fen=store.card_row(_conn(), card_no)["balance_fen"])


# --- visit bills -----------------------------------------------------------------
@bp.get("/cards/<card_no>/bills")
def list_unpaid_bills(card_no: str):
    return jsonify(card_no=card_no, bills=store.unpaid_bills(_conn(), card_no))


@bp.post("/cards/<card_no>/bills")
def create_bill(card_no: str):
    body = json_body()
    params = {"card_no": card_no, "kind": choice(body, "kind", BILL_KINDS), "title": text(body, "title"),
              "amount_fen": amount(body)}
    return _written("create_bill", params, idempotency_key(body, required=False), card_no=card_no,
                    amount_fen=params["amount_fen"])


@bp.get("/bills/<bill_id>")
def get_bill(bill_id: str):
    return jsonify(store.bill_json(store.bill_row(_conn(), bill_id)))


# --- ledger writes -----------------------------------------------------------------
@bp.post("/recharges")
def recharge():
    return _money_write("recharge", json_body())


@bp.post("/bill-settlements")
def settle_bills():
    body = json_body()
    bill_ids = body.get("bill_ids")
    if (not isinstance(bill_ids, list) or not bill_ids or len(bill_ids) > 100
            or not all(isinstance(b, str) and b for b in bill_ids)):
        raise invalid("bill_ids must be a non-empty list of bill ids")
    if len(set(bill_ids)) != len(bill_ids):
        raise invalid("bill_ids must not repeat a bill")
    return _money_write("settle_bills", body, bill_ids=bill_ids)


@bp.post("/charges")
def charge():
    body = json_body()
    params = {"order_no": text(body, "order_no"), "card_no": text(body, "card_no"),
              "amount_fen": amount(body, minimum=0), "settlement_type": text(body, "settlement_type")}
    return _written("charge", params, idempotency_key(body), card_no=params["card_no"],
                    order_no=params["order_no"], amount_fen=params["amount_fen"])


@bp.post("/refund-holds")
def refund_hold():
    return _money_write("refund_hold", json_body())


@bp.post("/refund-restores")
def refund_restore():
    return _money_write("refund_restore", json_body())


@bp.post("/bill-settlement-reversals")
def reverse_bill_settlement():
    return _money_write("reverse_bill_settlement", json_body())


@bp.post("/charge-adjustments")
def adjust_charge():
    return _money_write("adjust_charge", json_body())


@bp.post("/registrations")
def register():
    body = json_body()
    params = {"order_no": text(body, "order_no"), "card_no": text(body, "card_no", required=False),
              "patient_id": text(body, "patient_id", required=False), "item_code": text(body, "item_code"),
              "appointment_at": aware_datetime(body, "appointment_at").astimezone(SHANGHAI).isoformat(),
              "amount_fen": amount(body, minimum=0, default=0)}
    if params["card_no"] is None and params["patient_id"] is None:
        raise invalid("card_no or patient_id is required")
    return _written("register", params, idempotency_key(body), card_no=params["card_no"],
                    order_no=params["order_no"])


@bp.get("/registrations/<order_no>")
def get_registration(order_no: str):
    return jsonify(store.registration_json(store.latest_registration(_conn(), order_no)))


@bp.post("/registrations/<order_no>/revert")
def revert_registration(order_no: str):
    body = json_body()
    return _written("revert_registration", {"order_no": order_no}, idempotency_key(body), order_no=order_no)


# --- daily export ------------------------------------------------------------------
@bp.get("/export")
def export():
    day = business_date(request.args.get("date"))
    return jsonify(date=day, records=store.records_on(_conn(), day))
