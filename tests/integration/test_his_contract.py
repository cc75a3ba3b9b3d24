"""The HIS contract (app/his/contract/his-openapi.json, served at /his-contract.json): a valid OpenAPI
document, and what the platform and the sandbox HIS really exchange.

Every operation is called through the real HttpHisClient against the session's sandbox over HTTP; a
requests response hook records each exchange on the wire, and each request body and response body is
validated against the contract's schema for that operation and status (success, replay and the error
answers), so the contract can drift from neither the client nor the sandbox. What the client never sends
(a body that is not JSON, a replayed nonce) is sent with the independent signer of tests/his_auth.py.
"""
from __future__ import annotations

import json
import re
import secrets
import uuid
from datetime import datetime, timedelta, timezone
from urllib.parse import unquote, urlsplit

import pytest
import requests
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from openapi_spec_validator import validate as validate_spec

from app.api.contracts import HIS_CONTRACT_FILE
from app.his import HisAuthFailed, HisNotFound, HisRejected, HisUnavailable, HttpHisClient, signing
from tests.his_auth import HisHmac, his_headers

SHANGHAI = timezone(timedelta(hours=8))
CONTRACT = json.loads(HIS_CONTRACT_FILE.read_text())
HIS_PREFIX = "/his"  # the sandbox HIS's base URL is <sandbox>/his


def _operations() -> list[tuple[str, re.Pattern, str, dict]]:
    found = []
    for template, item in CONTRACT["paths"].items():
        pattern = re.compile("^" + re.sub(r"\\{\w+\\}", "[^/]+", re.escape(template)) + "$")
        for method in ("get", "post"):
            if method in item:
                found.append((method.upper(), pattern, template, item[method]))
    return found


OPERATIONS = _operations()


def _resolve(node: dict) -> dict:
    while "$ref" in node:
        _, section, kind, name = node["$ref"].split("/")
        node = CONTRACT[section][kind][name]
    return node


def _validate(instance, schema: dict, what: str) -> None:
    rooted = {**schema, "components": CONTRACT["components"]}  # "#/components/..." resolves against this root
    errors = sorted(OAS30Validator(rooted, format_checker=oas30_format_checker).iter_errors(instance), key=str)
    assert not errors, f"{what}: {[f'{list(e.path)}: {e.message}' for e in errors[:5]]}\n{instance}"


def operation_of(method: str, path: str) -> tuple[str, dict]:
    matches = [(template, op) for m, pattern, template, op in OPERATIONS if m == method and pattern.match(path)]
    # /patients/search also matches /patients/{patient_id} only for GET; a literal path wins over a template.
    matches.sort(key=lambda found: found[0].count("{"))
    assert matches, f"{method} {path}: the contract has no such operation"
    return matches[0]


class Exchange:
    def __init__(self, response: requests.Response) -> None:
        request = response.request
        parts = urlsplit(request.url)
        assert parts.path.startswith(HIS_PREFIX + "/")
        self.method = request.method
        self.path = unquote(parts.path[len(HIS_PREFIX):])
        self.status = response.status_code
        body = request.body or b""
        self.request_body = body.encode() if isinstance(body, str) else body
        self.response_body = response.content

    def check(self) -> str:
        """Validates both bodies against the contract; returns the operationId."""
        template, op = operation_of(self.method, self.path)
        what = f"{self.method} {template} -> {self.status}"
        if "requestBody" in op and self.request_body:
            schema = op["requestBody"]["content"]["application/json"]["schema"]
            _validate(json.loads(self.request_body), schema, f"{what} request")
        documented = op["responses"].get(str(self.status))
        assert documented is not None, f"{what}: the contract does not document this status"
        _validate(json.loads(self.response_body), _resolve(documented)["content"]["application/json"]["schema"],
                  f"{what} response")
        return op["operationId"]


@pytest.fixture()
def his(sandbox):
    """The real client on the session's sandbox HIS, recording every exchange on the wire."""
    account = sandbox.merchants()["his"][0]
    client = HttpHisClient(f"{sandbox.url}{HIS_PREFIX}", account["key_id"], account["secret"], timeout=5)
    exchanges: list[Exchange] = []
    client._session.hooks["response"].append(lambda response, *_a, **_k: exchanges.append(Exchange(response)))
    yield client, exchanges
    client.close()


def _phone() -> str:
    return "136" + f"{secrets.randbelow(10**8):08d}"


def test_the_contract_is_a_valid_openapi_3_document():
    validate_spec(CONTRACT)
    assert CONTRACT["openapi"].startswith("3.")
    writes = [op for method, _p, _t, op in OPERATIONS if method == "POST" and op["operationId"] != "findPatients"]
    for op in writes:  # every write documents the replay (200), the first write (201) and the conflict (409)
        assert {"200", "201", "409"} <= set(op["responses"]), op["operationId"]
        assert "idempotency_key" in _resolve(op["requestBody"]["content"]["application/json"]["schema"])["properties"]
    assert set(CONTRACT["security"][0]) == set(CONTRACT["components"]["securitySchemes"])
    headers = {s["name"] for s in CONTRACT["components"]["securitySchemes"].values()}
    assert headers == {signing.KEY_ID_HEADER, signing.TIMESTAMP_HEADER, signing.NONCE_HEADER, signing.SIGNATURE_HEADER}


def test_the_documented_signing_example_is_what_both_signers_compute():
    description = CONTRACT["info"]["description"]
    found = re.search(r"secret `(?P<secret>[^`]+)`, `(?P<method>GET) (?P<path>[^`]+)` at timestamp `(?P<ts>\d+)`\s+"
                      r"with nonce `(?P<nonce>[^`]+)`.*?X-HIS-Signature: (?P<sig>[0-9a-f]{64})", description, re.S)
    assert found, "the contract's signing example is missing"
    ours = signing.signature(found["secret"], found["ts"], found["nonce"], found["method"], found["path"], b"")
    independent = his_headers("his-demo", found["secret"], found["method"], found["path"], b"",
                              timestamp=found["ts"], nonce=found["nonce"])["X-HIS-Signature"]
    assert ours == independent == found["sig"]
    assert f"older or more than {signing.MAX_AHEAD_S} s newer" in " ".join(description.split())
    assert f"more than {signing.MAX_AGE_S} s" in description


def test_the_platform_publishes_the_contract_and_lists_it_in_the_docs(client):
    answer = client.get("/his-contract.json")
    assert answer.status_code == 200 and answer.mimetype == "application/json"
    assert answer.get_json() == CONTRACT
    page = client.get("/docs").get_data(as_text=True)
    assert '"url": "/his-contract.json"' in page and '"url": "/openapi.json"' in page
    assert "StandaloneLayout" in page


def test_every_operation_answers_by_the_contract(his):
    client, exchanges = his
    tag = uuid.uuid4().hex[:10]
    phone = _phone()
    patient = client.create_patient("合同测试", phone, idempotency_key=f"ct-patient-{tag}")
    assert client.create_patient("合同测试", phone, idempotency_key=f"ct-patient-{tag}").id == patient.id
    assert [p.id for p in client.find_patients(phone)] == [patient.id]
    assert client.get_patient(patient.id).name == "合同测试"
    card = client.open_card(patient.id, idempotency_key=f"ct-card-{tag}")
    assert client.get_card(card.card_no).balance_fen == 0 and client.get_balance(card.card_no) == 0
    bill = client.create_bill(card.card_no, "lab", "血常规", 1500, idempotency_key=f"ct-bill-{tag}")
    assert [b.bill_id for b in client.unpaid_bills(card.card_no)] == [bill.bill_id]

    first = client.recharge(card.card_no, 5000, f"CT{tag}1", f"ct-recharge-{tag}")
    again = client.recharge(card.card_no, 5000, f"CT{tag}1", f"ct-recharge-{tag}")
    assert (first.replayed, again.replayed, again.record_id, again.balance_fen) == (False, True, first.record_id, 5000)
    client.settle_bills(card.card_no, [bill.bill_id], 1500, f"CT{tag}2", f"ct-settle-{tag}")
    assert client.get_bill(bill.bill_id).paid_by == f"CT{tag}2"
    appointment = (datetime.now(SHANGHAI) + timedelta(days=1)).replace(microsecond=0)
    client.register(f"CT{tag}3", "ITEM-CT", appointment, f"ct-register-{tag}", card_no=card.card_no, amount_fen=800)
    assert client.get_registration(f"CT{tag}3").appointment_at == appointment
    assert client.revert_registration(f"CT{tag}3", f"ct-revert-{tag}").kind == "registration_revert"
    client.charge(f"CT{tag}4", card.card_no, 2000, "wechat", f"ct-charge-{tag}")
    assert client.refund_hold(card.card_no, 1000, f"RF{tag}", f"ct-hold-{tag}").balance_fen == 4000
    assert client.refund_restore(card.card_no, 400, f"RF{tag}", f"ct-restore-{tag}").balance_fen == 4400
    reversed_ = client.reverse_bill_settlement(card.card_no, 500, f"CT{tag}2", f"ct-reversal-{tag}")
    assert (reversed_.kind, reversed_.amount_fen, reversed_.balance_fen) == ("bill_settlement_reversal", 500, 4400)
    with pytest.raises(HisRejected) as over_reversed:
        client.reverse_bill_settlement(card.card_no, 1001, f"CT{tag}2", f"ct-reversal2-{tag}")
    assert over_reversed.value.code == "reversal_exceeds_settlement"
    assert client.adjust_charge(f"CT{tag}4", card.card_no, 700, f"ct-adjust-{tag}").kind == "charge_adjustment"
    with pytest.raises(HisRejected) as over_adjusted:
        client.adjust_charge(f"CT{tag}4", card.card_no, 1301, f"ct-adjust2-{tag}")
    assert over_adjusted.value.code == "adjustment_exceeds_charge"
    exported = client.export(datetime.now(SHANGHAI).date())
    assert {f"ct-{kind}-{tag}" for kind in ("recharge", "settle", "hold", "reversal", "adjust")} <= {
        r.idempotency_key for r in exported}

    called = {exchange.check() for exchange in exchanges}
    assert called == {op["operationId"] for _m, _p, _t, op in OPERATIONS}
    assert {(e.status, e.path) for e in exchanges if e.method == "POST" and e.path == "/recharges"} == {
        (201, "/recharges"), (200, "/recharges")}


def test_error_answers_are_the_contracts_error_body_with_its_status(his, sandbox):
    client, exchanges = his
    tag = uuid.uuid4().hex[:10]
    with pytest.raises(HisNotFound) as missing:
        client.get_card(f"NOCARD{tag}")
    assert missing.value.code == "card_not_found"
    patient = client.create_patient("合同测试", _phone())
    card = client.open_card(patient.id)
    with pytest.raises(HisRejected) as short:
        client.refund_hold(card.card_no, 100, f"RF{tag}", f"ct-hold-{tag}")
    assert (short.value.code, short.value.status) == ("insufficient_balance", 409)
    client.recharge(card.card_no, 300, f"CT{tag}", f"ct-recharge-{tag}")
    with pytest.raises(HisRejected) as reused:
        client.recharge(card.card_no, 301, f"CT{tag}", f"ct-recharge-{tag}")
    assert (reused.value.code, reused.value.status) == ("idempotency_conflict", 409)
    with pytest.raises(HisRejected) as invalid:
        client.register(f"CT{tag}", "ITEM-CT", datetime.now(SHANGHAI), f"ct-register-{tag}")
    assert (invalid.value.code, invalid.value.status) == ("invalid_request", 422)
    # An outage answers 503: a read is tried again within the call, then given up as unavailable.
    requests.post(f"{sandbox.url}/sandbox/his/fail-next", json={"path": f"/his/cards/{card.card_no}/balance",
                                                                 "count": 3}, timeout=5).raise_for_status()
    with pytest.raises(HisUnavailable):
        client.get_balance(card.card_no)

    statuses = sorted(e.status for e in exchanges if e.status >= 400)
    assert statuses == [404, 409, 409, 422, 503, 503, 503]
    for exchange in exchanges:
        exchange.check()
        if exchange.status >= 400:
            assert json.loads(exchange.response_body)["error"] in CONTRACT["x-error-codes"]


def test_a_refused_key_a_replayed_nonce_and_a_body_that_is_not_json(sandbox):
    account = sandbox.merchants()["his"][0]
    wrong = HttpHisClient(f"{sandbox.url}{HIS_PREFIX}", account["key_id"], "a-guessed-secret-of-some-length")
    exchanges: list[Exchange] = []
    wrong._session.hooks["response"].append(lambda response, *_a, **_k: exchanges.append(Exchange(response)))
    with pytest.raises(HisAuthFailed):
        wrong.get_card("D0000001")
    wrong.close()

    path = f"{HIS_PREFIX}/cards/D0000001"
    headers = his_headers(account["key_id"], account["secret"], "GET", path)
    first = requests.get(f"{sandbox.url}{path}", headers=headers, timeout=5)
    replayed = requests.get(f"{sandbox.url}{path}", headers=headers, timeout=5)
    assert (first.status_code, replayed.status_code) == (200, 401)
    assert replayed.json()["error"] == "replayed_request"
    not_json = requests.post(f"{sandbox.url}{HIS_PREFIX}/recharges", data=b"card_no=D0000001",
                             auth=HisHmac(account["key_id"], account["secret"]), timeout=5)
    assert not_json.status_code == 400 and not_json.json()["error"] == "invalid_json"

    exchanges += [Exchange(first), Exchange(replayed)]
    bad_body = Exchange(not_json)
    bad_body.request_body = b""  # what was sent is not JSON by design; the answer is what is checked
    exchanges.append(bad_body)
    assert [e.status for e in exchanges] == [401, 200, 401, 400]
    assert [e.check() for e in exchanges] == ["getCard", "getCard", "getCard", "recharge"]
