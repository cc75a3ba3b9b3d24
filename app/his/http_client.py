"""The HIS over its JSON HTTP API (the sandbox's `/his/` speaks the same; see mini_program_mock.his).

Every call is HMAC-signed with the clinic's key pair (app.his.signing), never a bearer secret. Reads
(GETs) are retried within the call when the HIS does not answer (a few tries, short backoff, within a
time budget); writes are not, since their caller retries them with the same idempotency key.
"""
from __future__ import annotations

import logging
import time
from datetime import date, datetime
from typing import Any
from urllib.parse import quote

import requests

from app.domain.secrets import WeakSecret

from . import signing
from .base import (
    HisAuthFailed,
    HisBill,
    HisCard,
    HisClient,
    HisNotFound,
    HisPatient,
    HisRecord,
    HisRegistration,
    HisRejected,
    HisUnavailable,
    HisUnreachable,
    HisUnrecognised,
    HisWriteResult,
)

log = logging.getLogger(__name__)


def _segment(value: str) -> str:
    return quote(str(value), safe="")


def _patient(data: dict) -> HisPatient:
    return HisPatient(id=data["id"], name=data["name"], phone=data["phone"], id_number=data.get("id_number"),
                      card_nos=tuple(data.get("card_nos") or ()))


def _card(data: dict) -> HisCard:
    return HisCard(card_no=data["card_no"], balance_fen=int(data["balance_fen"]), patient=_patient(data["patient"]))


def _bill(data: dict) -> HisBill:
    return HisBill(bill_id=data["bill_id"], card_no=data["card_no"], kind=data["kind"], title=data["title"],
                   amount_fen=int(data["amount_fen"]), status=data["status"], paid_by=data.get("paid_by"))


def _registration(data: dict) -> HisRegistration:
    return HisRegistration(order_no=data["order_no"], card_no=data.get("card_no"), patient_id=data["patient_id"],
                           item_code=data["item_code"], appointment_at=datetime.fromisoformat(data["appointment_at"]),
                           amount_fen=int(data["amount_fen"]), status=data["status"])


def _record(data: dict) -> HisRecord:
    return HisRecord(idempotency_key=data["idempotency_key"], kind=data["kind"], card_no=data.get("card_no"),
                     amount_fen=int(data["amount_fen"]), order_no=data["order_no"],
                     recorded_at=datetime.fromisoformat(data["recorded_at"]))


def _write_result(data: dict, replayed: bool) -> HisWriteResult:
    balance = data.get("balance_fen")
    return HisWriteResult(idempotency_key=data["idempotency_key"], kind=data["kind"], record_id=data["record_id"],
                          card_no=data.get("card_no"), amount_fen=int(data["amount_fen"]), order_no=data["order_no"],
                          recorded_at=datetime.fromisoformat(data["recorded_at"]),
                          balance_fen=None if balance is None else int(balance), extra=dict(data.get("extra") or {}),
                          replayed=replayed)


READ_ATTEMPTS = 3
READ_BACKOFF_S = (0.1, 0.3)
# A read gives up once this many HIS timeouts have gone by, however many tries are left: a patient
# waits at most 1.5 timeouts for a bill list, not 3.
READ_BUDGET_TIMEOUTS = 1.5
# A try with less time than this left is not worth making.
MIN_TRY_S = 0.2


class HttpHisClient(HisClient):
    """`base_url` is the HIS API root, e.g. `http://127.0.0.1:8100/his`.

    One requests.Session per client (connection reuse); use one client per thread or process.
    A secret shorter than 16 characters is never used: every call raises HisAuthFailed without
    reaching the HIS, as a refused key would.
    """

    def __init__(self, base_url: str, key_id: str, secret: str, timeout: float = 5.0, *,
                 read_attempts: int = READ_ATTEMPTS, read_budget_s: float | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.key_id = key_id
        self.timeout = timeout
        self.read_attempts = max(1, read_attempts)
        self.read_budget_s = read_budget_s if read_budget_s is not None else timeout * READ_BUDGET_TIMEOUTS
        self._secret = secret
        self._session = requests.Session()
        self._session.headers.update({"Accept": "application/json"})

    def __repr__(self) -> str:
        return f"HttpHisClient({self.base_url!r}, key_id={self.key_id!r})"

    def close(self) -> None:
        self._session.close()

    # --- transport ------------------------------------------------------------------
    def _send(self, method: str, path: str, params: dict | None, body: dict | None,
              timeout: float) -> requests.Response:
        """Sign exactly what goes on the wire: the prepared URL and body."""
        if not self.base_url:
            raise HisAuthFailed("no HIS connection is configured for this clinic")
        try:
            signing.require_secret(self._secret)
        except WeakSecret:
            log.error("HIS key %s has an empty or short secret; refusing to sign with it", self.key_id)
            raise HisAuthFailed(f"HIS key {self.key_id}: the secret is empty or shorter than "
                                f"{signing.MIN_SECRET_LENGTH} characters; refusing to sign") from None
        prepared = self._session.prepare_request(
            requests.Request(method, self.base_url + path, params=params, json=body))
        prepared.headers.update(signing.signed_headers(self.key_id, self._secret, method,
                                                       signing.target_of_url(prepared.url), prepared.body or b""))
        environment = self._session.merge_environment_settings(prepared.url, {}, None, None, None)
        return self._session.send(prepared, timeout=timeout, **environment)

    def _call(self, method: str, path: str, *, params: dict | None = None,
              body: dict | None = None, timeout: float | None = None) -> tuple[Any, int]:
        """The decoded JSON answer and its status, or the HisError the answer means."""
        timeout = self.timeout if timeout is None else timeout
        try:
            response = self._send(method, path, params, body, timeout)
        except requests.Timeout as exc:
            log.warning("HIS %s %s timed out after %ss", method, path, timeout)
            raise HisUnreachable(f"HIS timed out after {timeout}s: {method} {path}") from exc
        except requests.RequestException as exc:
            log.warning("HIS %s %s failed: %s", method, path, exc.__class__.__name__)
            raise HisUnreachable(f"HIS unreachable: {exc.__class__.__name__}") from exc
        try:
            payload = response.json()
        except ValueError:
            payload = None
        status = response.status_code
        if 200 <= status < 300:
            if payload is None:
                raise HisUnrecognised(f"HIS answered {status} without JSON: {method} {path}")
            return payload, status
        code = payload.get("error") if isinstance(payload, dict) else None
        message = payload.get("message", "") if isinstance(payload, dict) else response.text[:200]
        if status >= 500:
            log.warning("HIS %s %s answered %s", method, path, status)
            raise HisUnavailable(f"HIS answered {status}: {message}")
        if status in (401, 403):
            log.error("HIS refused our key %s (%s)", self.key_id, status)
            raise HisAuthFailed(f"HIS refused key {self.key_id}: {message}")
        if not code:
            # Not the HIS's verdict on our request (a wrong base URL, a proxy): the outcome is still open.
            raise HisUnrecognised(f"HIS answered {status} without an error code: {method} {path}")
        if status == 404:
            raise HisNotFound(code, message, status)
        raise HisRejected(code, message, status)

    def _read(self, path: str, convert, **params: Any):
        """A GET, tried again when the HIS does not answer (never when it refuses our key or says no)."""
        deadline = time.monotonic() + self.read_budget_s
        for attempt in range(1, self.read_attempts + 1):
            remaining = deadline - time.monotonic()
            try:
                payload, _ = self._call("GET", path, params=params or None, timeout=min(self.timeout, remaining))
                return self._decoded(payload, convert)
            except HisAuthFailed:
                raise
            except HisUnavailable as exc:
                backoff = READ_BACKOFF_S[min(attempt, len(READ_BACKOFF_S)) - 1]
                if attempt == self.read_attempts or deadline - time.monotonic() - backoff < MIN_TRY_S:
                    raise
                log.info("HIS GET %s failed (try %s of %s): %s; trying again", path, attempt, self.read_attempts,
                         exc)
                time.sleep(backoff)
        raise AssertionError("unreachable")  # pragma: no cover

    def _post(self, path: str, body: dict) -> tuple[Any, bool]:
        payload, status = self._call("POST", path, body={k: v for k, v in body.items() if v is not None})
        return payload, status == 200

    def _write(self, path: str, body: dict) -> HisWriteResult:
        payload, replayed = self._post(path, body)
        return self._decoded(payload, lambda data: _write_result(data, replayed))

    @staticmethod
    def _decoded(payload: Any, convert):
        """Our value types from a 2xx answer; an answer of the wrong shape is as good as none."""
        try:
            return convert(payload)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise HisUnrecognised(f"unreadable HIS answer: {exc!r}") from exc

    # --- patients and cards --------------------------------------------------------------
    def get_card(self, card_no: str) -> HisCard:
        return self._read(f"/cards/{_segment(card_no)}", _card)

    def get_balance(self, card_no: str) -> int:
        return self._read(f"/cards/{_segment(card_no)}/balance", lambda data: int(data["balance_fen"]))

    def find_patients(self, phone: str | None = None, *, id_number: str | None = None) -> list[HisPatient]:
        payload, _ = self._post("/patients/search", {"phone": phone, "id_number": id_number})
        return self._decoded(payload, lambda data: [_patient(p) for p in data["patients"]])

    def get_patient(self, patient_id: str) -> HisPatient:
        return self._read(f"/patients/{_segment(patient_id)}", _patient)

    def create_patient(self, name: str, phone: str, id_number: str | None = None,
                       idempotency_key: str | None = None) -> HisPatient:
        payload, _ = self._post("/patients", {"name": name, "phone": phone, "id_number": id_number,
                                              "idempotency_key": idempotency_key})
        return self._decoded(payload, _patient)

    def open_card(self, patient_id: str, idempotency_key: str | None = None) -> HisCard:
        payload, _ = self._post(f"/patients/{_segment(patient_id)}/cards", {"idempotency_key": idempotency_key})
        return self._decoded(payload, _card)

    # --- visit bills -------------------------------------------------------------------------
    def unpaid_bills(self, card_no: str) -> list[HisBill]:
        return self._read(f"/cards/{_segment(card_no)}/bills", lambda data: [_bill(b) for b in data["bills"]])

    def get_bill(self, bill_id: str) -> HisBill:
        return self._read(f"/bills/{_segment(bill_id)}", _bill)

    def create_bill(self, card_no: str, kind: str, title: str, amount_fen: int,
                    idempotency_key: str | None = None) -> HisBill:
        payload, _ = self._post(f"/cards/{_segment(card_no)}/bills", {
            "kind": kind, "title": title, "amount_fen": amount_fen, "idempotency_key": idempotency_key})
        return self._decoded(payload, _bill)

    # --- ledger writes --------------------------------------------------------------------------
    def recharge(self, card_no: str, amount_fen: int, order_no: str, idempotency_key: str) -> HisWriteResult:
        return self._write("/recharges", {"card_no": card_no, "amount_fen": amount_fen, "order_no": order_no,
                                          "idempotency_key": idempotency_key})

    def settle_bills(self, card_no: str, bill_ids: list[str], amount_fen: int, order_no: str,
                     idempotency_key: str) -> HisWriteResult:
        return self._write("/bill-settlements", {"card_no": card_no, "bill_ids": list(bill_ids),
                                                 "amount_fen": amount_fen, "order_no": order_no,
                                                 "idempotency_key": idempotency_key})

    def register(self, order_no: str, item_code: str, appointment_at: datetime, idempotency_key: str, *,
                 card_no: str | None = None, patient_id: str | None = None, amount_fen: int = 0) -> HisWriteResult:
        if appointment_at.tzinfo is None:
            raise ValueError("appointment_at must be timezone-aware")
        return self._write("/registrations", {
            "order_no": order_no, "card_no": card_no, "patient_id": patient_id, "item_code": item_code,
            "appointment_at": appointment_at.isoformat(), "amount_fen": amount_fen,
            "idempotency_key": idempotency_key})

    def revert_registration(self, order_no: str, idempotency_key: str) -> HisWriteResult:
        return self._write(f"/registrations/{_segment(order_no)}/revert", {"idempotency_key": idempotency_key})

    def get_registration(self, order_no: str) -> HisRegistration:
        return self._read(f"/registrations/{_segment(order_no)}", _registration)

    def charge(self, order_no: str, card_no: str, amount_fen: int, settlement_type: str,
               idempotency_key: str) -> HisWriteResult:
        return self._write("/charges", {"order_no": order_no, "card_no": card_no, "amount_fen": amount_fen,
                                        "settlement_type": settlement_type, "idempotency_key": idempotency_key})

    def refund_hold(self, card_no: str, amount_fen: int, order_no: str, idempotency_key: str) -> HisWriteResult:
        return self._write("/refund-holds", {"card_no": card_no, "amount_fen": amount_fen, "order_no": order_no,
                                             "idempotency_key": idempotency_key})

    def refund_restore(self, card_no: str, amount_fen: int, order_no: str, idempotency_key: str) -> HisWriteResult:
        return self._write("/refund-restores", {"card_no": card_no, "amount_fen": amount_fen, "order_no": order_no,
                                                "idempotency_key": idempotency_key})

    def reverse_bill_settlement(self, card_no: str, amount_fen: int, order_no: str,
                                idempotency_key: str) -> HisWriteResult:
        return self._write("/bill-settlement-reversals", {"card_no": card_no, "amount_fen": amount_fen,
                                                          "order_no": order_no, "idempotency_key": idempotency_key})

    def adjust_charge(self, order_no: str, card_no: str, amount_fen: int, idempotency_key: str) -> HisWriteResult:
        return self._write("/charge-adjustments", {"order_no": order_no, "card_no": card_no, "amount_fen": amount_fen,
                                                   "idempotency_key": idempotency_key})

    # --- reconciliation ------------------------------------------------------------------------
    def export(self, day: date) -> list[HisRecord]:
        return self._read("/export", lambda data: [_record(r) for r in data["records"]], date=day.isoformat())
