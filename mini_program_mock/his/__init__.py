"""Sandbox HIS: the hospital's own system (patients, cards, card ledger, registrations, visit bills).

JSON over HTTP under `/his/`; `app.his.http_client.HttpHisClient` mirrors it (base URL `<sandbox>/his`).

Authentication: every call is HMAC-signed with a HIS key from `GET /sandbox/merchants` (`his[]`):
`X-HIS-Key-Id`, `X-HIS-Timestamp`, `X-HIS-Nonce`, `X-HIS-Signature` (the scheme is in his/auth.py, the
same as the platform's HIS API). Missing, wrong, stale or bearer-only -> 401 `unauthorized`; a nonce
used again -> 401 `replayed_request`.

Errors: `{"error": "<snake_case code>", "message": "..."}` with 400 (`invalid_json`), 401, 404
(`card_not_found`, `patient_not_found`, `bill_not_found`, `registration_not_found`), 409 (business
refusals below), 422 (`invalid_request` naming the field, `amount_mismatch`, `bill_not_on_card`,
`card_not_of_patient`) or 503 (`his_unavailable`, nothing written).

Shapes:
- patient `{id: "P000001", name, phone, id_number|null, card_nos: [card_no]}`; two patients may share a phone
- card `{card_no: "D0000001", balance_fen, patient: <patient>}`
- bill `{bill_id: "B00000001", card_no, kind: exam|lab|prescription|treatment|charge, title, amount_fen,
  status: unpaid|paid|cancelled, paid_by: order_no|"window"|null, created_at, cancelled_at|null}`
- registration `{order_no, card_no|null, patient_id, item_code, appointment_at, amount_fen,
  status: active|reverted, created_at, reverted_at|null}`
- write result `{record_id: "R00000001", idempotency_key, kind, card_no|null, amount_fen, order_no,
  recorded_at, balance_fen|null (card balance after the write), extra: {...}}`
- record (export row) `{idempotency_key, kind, card_no, amount_fen, order_no, recorded_at}`
Times are ISO 8601 with offset, Asia/Shanghai, to the second, on the sandbox clock (`POST /sandbox/clock`).

Reads:
- `GET /his/cards/{card_no}` -> card
- `GET /his/cards/{card_no}/balance` -> `{card_no, balance_fen}`
- `GET /his/cards/{card_no}/bills` -> `{card_no, bills: [unpaid bills]}`
- `GET /his/bills/{bill_id}` -> bill (either status)
- `POST /his/patients/search {phone?, id_number?}` (at least one) -> `{patients: [patient]}`; a POST so
  that phone and ID numbers stay out of URLs and access logs
- `GET /his/patients/{patient_id}` -> patient
- `GET /his/registrations/{order_no}` -> the order's latest registration
- `GET /his/export?date=YYYY-MM-DD` -> `{date, records: [record]}`: the ledger rows whose recorded_at
  falls on that Asia/Shanghai date, in write order

Writes. `idempotency_key` goes in the body. A repeat with the same key and body answers the first
result again (200 instead of the first 201) and writes nothing; the same key with another body is
409 `idempotency_conflict`; concurrent duplicates write once. A refusal stores nothing, so a retry
with the same key is judged afresh. Master data (key optional):
- `POST /his/patients {name, phone (11-digit mobile), id_number?, idempotency_key?}` -> patient
- `POST /his/patients/{patient_id}/cards {idempotency_key?}` (body optional) -> a new card with balance 0
- `POST /his/cards/{card_no}/bills {kind, title, amount_fen, idempotency_key?}` -> an unpaid bill
  (e.g. an extra charge at redemption)
Ledger writes (key required; each leaves one `his_records` row of the named kind):
- `POST /his/recharges {card_no, amount_fen, order_no, idempotency_key}` -> `recharge`, balance += amount
- `POST /his/bill-settlements {card_no, bill_ids[], amount_fen, order_no, idempotency_key}` ->
  `bill_settlement`, bills paid_by order_no, `extra.bill_ids`; 409 `bill_already_paid` if any bill is
  paid already, 409 `bill_cancelled` if any was cancelled; amount_fen must equal the bills' sum
  (422 `amount_mismatch`); balance unchanged
- `POST /his/registrations {order_no, card_no? | patient_id?, item_code, appointment_at, amount_fen? (default 0),
  idempotency_key}` -> `registration`; 409 `already_registered` while the order has an active one
- `POST /his/registrations/{order_no}/revert {idempotency_key}` -> `registration_revert` (same card and
  amount as the registration); 409 `registration_not_active` if already reverted
- `POST /his/charges {order_no, card_no, amount_fen (>= 0), settlement_type, idempotency_key}` -> `charge`
  for a redeemed package, `extra.settlement_type`; balance unchanged
- `POST /his/refund-holds {card_no, amount_fen, order_no (the refund reference), idempotency_key}` ->
  `refund_hold`, balance -= amount; 409 `insufficient_balance` if it would go negative
- `POST /his/bill-settlement-reversals {card_no, amount_fen, order_no (the visit-bill order), idempotency_key}`
  -> `bill_settlement_reversal` (a refund of part or all of what the order settled); 409
  `reversal_exceeds_settlement` beyond what its settlements hold after earlier reversals; balance unchanged
- `POST /his/charge-adjustments {card_no, amount_fen, order_no (the redeemed booking), idempotency_key}` ->
  `charge_adjustment`: the package's charge reduced by amount_fen (a refund after redemption); 409
  `adjustment_exceeds_charge` beyond what its charges hold after earlier adjustments; balance unchanged
- `POST /his/refund-restores {card_no, amount_fen, order_no, idempotency_key}` -> `refund_restore`,
  balance += amount; 409 `restore_exceeds_hold` beyond what that order_no still holds on the card

Faults (`POST /sandbox/faults`) apply to every authenticated /his/ call: `his_latency_ms` sleeps
first; `his_error_rate` answers 503 without doing anything; `his_timeout_rate` does the work, then
stalls the answer 15 s (unscaled), the ambiguous case the idempotency keys exist for. A counted fault,
`POST /sandbox/his/fail-next {path, count}`, makes the next `count` calls to that path (e.g.
`/his/cards/D0000001/bills`) answer 503 like `his_error_rate`; `DELETE /sandbox/his/fail-next` clears it.

Demo seed (first start of a data directory): patients P000001..P000010 owning cards `D0000001`..`D0000010`,
50,000 fen each. P000001 (张伟) and P000002 (张小雨) share phone 13800000001; the others use
1380000000N / 13800000010. Unpaid bills: D0000001 B00000001 exam 12,000, B00000002 lab 2,500,
B00000003 prescription 3,680; D0000002 B00000004 treatment 4,500, B00000005 lab 1,500; D0000003
B00000006 exam 16,000.

Control routes (no key, no faults): `GET /sandbox/his/records?date=` (the export's rows as a bare
list), `GET /sandbox/cards/{card_no}` (card), `POST /sandbox/his/cards {name, phone, id_number?,
balance_fen?}` -> 201 card of a new patient, `POST /sandbox/his/bills {card_no, kind, title, amount_fen}`
-> 201 bill (a doctor opens it: announced as `bill_created`), `POST /sandbox/his/bills/{bill_id}/cancel`
-> the bill, cancelled (announced as `bill_cancelled`; 409 `bill_already_paid` / `bill_cancelled`),
`POST /sandbox/his/bills/{bill_id}/pay-elsewhere` -> the bill, paid at the window (409 `bill_already_paid`
if paid, `bill_cancelled` if cancelled). `GET, POST {url, key_id?}, DELETE /sandbox/his/events`: where the
HIS announces bills to the platform (events.py); the answer is `{url, key_id}` (both null when unset).
Bills made through the HIS API itself (`POST /his/cards/{card_no}/bills`, the platform's own extra
charges) are not announced.
"""
from __future__ import annotations

from flask import Flask

from . import auth, control, gateway
from .events import HisEvents
from .ledger import HisLedger
from .store import SCHEMA, seed, upgrade


def register(app: Flask) -> None:
    world = app.extensions["sandbox_world"]
    world.execute_script(SCHEMA)
    upgrade(world)
    world.execute_script(auth.SCHEMA)
    seed(world)
    app.extensions["sandbox_his_ledger"] = HisLedger(world)
    events = HisEvents(world, app.extensions["sandbox_merchants"], app.extensions["sandbox_notifier"])
    events.configure_from_env()
    app.extensions["sandbox_his_events"] = events
    app.register_blueprint(gateway.bp)
    app.register_blueprint(control.bp)
