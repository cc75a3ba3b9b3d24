"""The OpenAPI document (/openapi.json) as a contract others build against: committed as `flask openapi write`
writes it, a valid OpenAPI 3 document, every operation with a unique operationId, its audience's tags and security
scheme, an example for every request body that validates against its schema, and every documented error the
error body the app really answers (which real error answers are checked against).

The rules walk the whole document, so an operation added later is held to them without touching this file; a
failure names the operation and what it lacks.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from openapi_schema_validator import OAS30ReadValidator, OAS30WriteValidator, oas30_format_checker
from openapi_spec_validator import validate as validate_spec

from app import openapi
from app.his import signing
from tests.api.admin_helpers import ADMIN, staff_headers
from tests.his_auth import his_headers

COMMITTED = Path(__file__).resolve().parents[2] / "app" / "api" / "openapi.json"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
ERROR_REF = {"$ref": "#/components/schemas/ApiError"}
# Errors answered in another system's format, on purpose: the channels expect their own FAIL (XML, or `fail`) and
# /readyz's 503 is the probe's own report of each check.
OWN_FORMAT_ERRORS = {("post", "/notify/wechat/{clinic_code}/pay"), ("post", "/notify/wechat/{clinic_code}/refund"),
                     ("post", "/notify/alipay/{clinic_code}"), ("get", "/readyz")}
OPERATION_ID = re.compile(r"^(mp|admin|his|notify|ops)_[a-z][a-z0-9]*(_[a-z0-9]+)*$")
PUBLIC_OPERATIONS = {("post", "/api/mp/v1/auth/login"), ("post", "/api/admin/v1/auth/login"), ("get", "/healthz"),
                     ("get", "/readyz")}


@pytest.fixture(scope="module")
def spec(app):
    return app.extensions["hpay_api"].spec.to_dict()


def _operations(spec):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield method, path, operation


def _resolve(spec, node):
    while isinstance(node, dict) and "$ref" in node:
        section, name = node["$ref"].split("/")[2:]
        node = spec["components"][section][name]
    return node


def test_the_committed_document_is_what_flask_openapi_write_writes(app, tmp_path, client):
    written = tmp_path / "openapi.json"
    outcome = app.test_cli_runner().invoke(args=["openapi", "write", str(written)])
    assert outcome.exit_code == 0, outcome.output
    assert json.loads(written.read_text(encoding="utf-8")) == client.get("/openapi.json").get_json()
    assert written.read_text(encoding="utf-8") == COMMITTED.read_text(encoding="utf-8"), (
        "app/api/openapi.json is not what the app publishes: run `make openapi` and commit it")


def test_the_document_is_valid_openapi_3(spec):
    validate_spec(spec)
    assert spec["openapi"].startswith("3.0")


def test_every_operation_has_a_unique_readable_operation_id(spec):
    seen: dict[str, str] = {}
    problems = []
    for method, path, operation in _operations(spec):
        where = f"{method.upper()} {path}"
        operation_id = operation.get("operationId")
        if not operation_id:
            problems.append(f"{where}: no operationId")
        elif not OPERATION_ID.match(operation_id):
            problems.append(f"{where}: operationId {operation_id!r} is not <audience>_<snake_case name>")
        elif operation_id in seen:
            problems.append(f"{where}: operationId {operation_id!r} is also {seen[operation_id]}'s "
                            "(give one a readable name in app/openapi.py OPERATION_IDS)")
        else:
            seen[operation_id] = where
    assert not problems, "\n".join(problems)
    assert seen["mp_create_order"] == "POST /api/mp/v1/orders"
    assert seen["admin_list_bookings"] == "GET /api/admin/v1/bookings"
    assert seen["admin_cancel_booking"] == "POST /api/admin/v1/bookings/{order_no}/cancel"
    assert seen["his_create_window_refund"] == "POST /api/his/v1/refunds"


def test_every_explicit_operation_id_names_a_route_of_the_app(app):
    assert not set(openapi.OPERATION_IDS) - set(app.view_functions), "stale entries in app/openapi.py OPERATION_IDS"


def test_every_operation_is_tagged_for_its_audience_and_every_tag_says_who_calls_and_how(spec):
    described = {tag["name"]: tag.get("description", "") for tag in spec["tags"]}
    problems = []
    for method, path, operation in _operations(spec):
        tags = operation.get("tags") or []
        if not tags:
            problems.append(f"{method.upper()} {path}: no tag")
        problems += [f"{method.upper()} {path}: tag {tag!r} is not described" for tag in tags if tag not in described]
        audience = openapi.audience(path)
        expected = {openapi.MP: {openapi.TAG_MP}, openapi.HIS: {openapi.TAG_HIS}, openapi.NOTIFY: {openapi.TAG_NOTIFY},
                    openapi.OPS: {openapi.TAG_OPS},
                    openapi.ADMIN_API: {openapi.TAG_ADMIN_SESSION, *openapi.TAG_ADMIN_ROLE.values()}}[audience]
        if not set(tags) <= expected:
            problems.append(f"{method.upper()} {path}: tags {tags} are not of the {audience} audience")
    assert not problems, "\n".join(problems)
    for name, description in described.items():  # how its callers authenticate
        assert re.search(r"Bearer|HMAC|signed|no credentials", description, re.I), f"tag {name!r} says no auth"
    bookings = spec["paths"]["/api/admin/v1/bookings"]["get"]["tags"]
    transactions = spec["paths"]["/api/admin/v1/transactions"]["get"]["tags"]
    assert bookings == [openapi.TAG_ADMIN_ROLE["staff"]]
    assert transactions == [openapi.TAG_ADMIN_ROLE["staff"], openapi.TAG_ADMIN_ROLE["finance"]]
    assert spec["paths"]["/api/admin/v1/clinics"]["post"]["tags"] == [openapi.TAG_ADMIN_ROLE["operator"]]


def test_every_request_body_has_an_example_that_validates_against_its_schema(spec):
    problems, checked = [], 0
    for method, path, operation in _operations(spec):
        body = operation.get("requestBody")
        if body is None:
            continue
        for content_type, media in _resolve(spec, body)["content"].items():
            where = f"{method.upper()} {path} ({content_type})"
            examples = ([media["example"]] if "example" in media else
                        [example["value"] for example in media.get("examples", {}).values()])
            if not examples:
                problems.append(f"{where}: the request body has no example")
                continue
            validator = OAS30WriteValidator({**media["schema"], "components": spec["components"]},
                                            format_checker=oas30_format_checker)
            for example in examples:
                checked += 1
                problems += [f"{where}: example {example!r} does not validate: {error.message}"
                             for error in validator.iter_errors(example)]
    assert not problems, "\n".join(problems)
    assert checked >= 40


def test_every_documented_error_is_the_api_error_body(spec):
    problems = []
    for method, path, operation in _operations(spec):
        if (method, path) in OWN_FORMAT_ERRORS:
            continue
        for status, response in operation.get("responses", {}).items():
            if status.startswith(("1", "2", "3")):
                continue
            content = _resolve(spec, response).get("content", {})
            schema = content.get("application/json", {}).get("schema")
            if schema != ERROR_REF or set(content) != {"application/json"}:
                problems.append(f"{method.upper()} {path} {status}: answers {content or 'no body'}, not the "
                                f"ApiError body")
    assert not problems, "\n".join(problems)
    error = spec["components"]["schemas"]["ApiError"]
    assert set(error["properties"]) == {"message", "error", "errors"} and error["required"] == ["message"]
    assert all(name not in spec["components"]["schemas"] for name in ("Error", "AdminError"))


def test_every_operation_references_its_audiences_security_scheme(spec):
    schemes = spec["components"]["securitySchemes"]
    expected = {openapi.MP: [{openapi.MP_BEARER: []}], openapi.ADMIN_API: [{openapi.ADMIN_BEARER: []}],
                openapi.HIS: openapi.HIS_SECURITY}
    notify = {"/notify/wechat/{clinic_code}/pay": openapi.WECHAT_PAY_SIGN,
              "/notify/wechat/{clinic_code}/refund": openapi.WECHAT_REFUND_REQ_INFO,
              "/notify/alipay/{clinic_code}": openapi.ALIPAY_SIGN}
    problems = []
    for method, path, operation in _operations(spec):
        where = f"{method.upper()} {path}"
        security = operation.get("security")
        if (method, path) in PUBLIC_OPERATIONS:
            if security:
                problems.append(f"{where}: a public operation declares {security}")
            continue
        if not security:
            problems.append(f"{where}: no security scheme")
            continue
        problems += [f"{where}: scheme {name!r} is not in components.securitySchemes"
                     for requirement in security for name in requirement if name not in schemes]
        audience = openapi.audience(path)
        if audience in expected and security != expected[audience]:
            problems.append(f"{where}: {security}, expected {expected[audience]}")
        if audience == openapi.NOTIFY and security != [{notify.get(path): []}]:
            problems.append(f"{where}: {security} is not the signature of its channel")
    assert not problems, "\n".join(problems)
    assert {schemes[name]["name"] for name in openapi.HIS_SECURITY[0]} == {
        signing.KEY_ID_HEADER, signing.TIMESTAMP_HEADER, signing.NONCE_HEADER, signing.SIGNATURE_HEADER}
    assert all(scheme.get("description") for scheme in schemes.values())


def test_the_his_scheme_is_described_in_full_with_an_example_an_independent_signer_reproduces(spec):
    description = spec["components"]["securitySchemes"][openapi.HIS_HMAC]["description"]
    for header in (signing.KEY_ID_HEADER, signing.TIMESTAMP_HEADER, signing.NONCE_HEADER, signing.SIGNATURE_HEADER):
        assert f"`{header}`" in description
    assert 'timestamp + "\\n" + nonce + "\\n" + METHOD + "\\n" + path + "\\n" + raw_body' in description
    assert f"more than {signing.MAX_AGE_S} s older or more than {signing.MAX_AHEAD_S} s newer" in description
    assert "`replayed_request`" in description and "`invalid_signature`" in description
    found = re.search(r"secret `(?P<secret>[^`]+)`, `GET (?P<path>[^`]+)` at timestamp `(?P<ts>\d+)` with nonce "
                      r"`(?P<nonce>[^`]+)`.*X-HIS-Signature: (?P<sig>[0-9a-f]{64})`", description, re.S)
    assert found, "the HIS scheme's signing example is missing"
    independent = his_headers("his-demo", found["secret"], "GET", found["path"], b"", timestamp=found["ts"],
                              nonce=found["nonce"])["X-HIS-Signature"]
    assert independent == found["sig"]


@pytest.fixture()
def operator_headers(client, rt):
    return staff_headers(client, rt, "operator", clinics=())[0]


def test_real_error_answers_are_the_documented_error_body(client, rt, spec, demo_clinic, operator_headers):
    staff, _ = staff_headers(client, rt, "staff")
    samples = [  # (operation in the document or None, the answer, the status it must have)
        (None, client.get("/api/mp/v1/nothing-here"), 404),
        (None, client.delete("/api/mp/v1/auth/login"), 405),
        (("post", "/api/mp/v1/auth/login"),
         client.post("/api/mp/v1/auth/login", data="{not json", content_type="application/json"), 400),
        (("post", "/api/mp/v1/auth/login"),
         client.post("/api/mp/v1/auth/login", json={"clinic_code": "demo", "channel": "paypal"}), 422),
        (("post", "/api/mp/v1/orders"), client.post("/api/mp/v1/orders", json={}), 401),
        (("get", "/api/admin/v1/bookings"), client.get(f"{ADMIN}/bookings"), 401),
        (("get", "/api/admin/v1/clinics"), client.get(f"{ADMIN}/clinics", headers=staff), 403),
        (("post", "/api/admin/v1/clinics"),
         client.post(f"{ADMIN}/clinics", json={"code": "demo", "name": "again"}, headers=operator_headers), 409),
        (("post", "/api/admin/v1/clinics"),
         client.post(f"{ADMIN}/clinics", json={"code": "", "name": 5}, headers=operator_headers), 422),
        (("get", "/api/his/v1/reconciliation/{day}"), client.get("/api/his/v1/reconciliation/2026-01-01"), 401),
        (("get", "/api/his/v1/reconciliation/{day}"),
         client.get("/api/his/v1/reconciliation/2026-01-01",
                    headers=his_headers("no-such-key", "x" * 20, "GET", "/api/his/v1/reconciliation/2026-01-01")),
         401),
        (("get", "/metrics"), client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.9"}), 403),
        (("post", "/api/admin/v1/clinics"),
         client.post(f"{ADMIN}/clinics", data=b"x" * (3 * 1024 * 1024), content_type="application/json",
                     headers=operator_headers), 413),
    ]
    validator = OAS30ReadValidator({**ERROR_REF, "components": spec["components"]},
                                   format_checker=oas30_format_checker)
    problems = []
    for operation, answer, status in samples:
        where = f"{operation or answer.request.path}: {answer.status_code}"
        body = answer.get_json(silent=True)
        if answer.status_code != status:
            problems.append(f"{where}, expected {status}: {answer.get_data(as_text=True)[:200]}")
        elif body is None:
            problems.append(f"{where}: not JSON: {answer.get_data(as_text=True)[:200]}")
        else:
            problems += [f"{where}: {body} does not validate: {error.message}" for error in validator.iter_errors(body)]
        if operation is not None:
            responses = spec["paths"][operation[1]][operation[0]]["responses"]
            if str(status) not in responses and "default" not in responses:
                problems.append(f"{where}: the operation documents neither {status} nor a default")
    assert not problems, "\n".join(problems)


def test_the_docs_ui_offers_the_platform_api_and_the_his_contract(client):
    page = client.get("/docs").get_data(as_text=True)
    assert '"url": "/openapi.json"' in page and '"url": "/his-contract.json"' in page
    assert client.get("/his-contract.json").get_json()["info"]["title"]
