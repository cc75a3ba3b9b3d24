"""Schemathesis over the routes that set clinics up, signed in as the roles that may call them (the API-wide fuzz
test calls admin routes with a patient's token, which stops at 401): no generated request gets a 5xx.

It runs on a database of its own: generated requests change users, clinics and apps at random ids, which must not
touch the session's demo clinic and users that other tests sign in as.
"""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tests.api.admin_helpers import ADMIN, make_user, sign_in
from tests.integration.reconciliation_support import own_settings

EXAMPLES_PER_MODE = 20
ROUTES = ("/clinics", "/platform/channel-apps", "/channel-apps", "/items", "/slots", "/users")


@pytest.fixture(scope="module")
def fuzz_app(settings, postgres_url, sandbox):
    from app.cli import create_cli_app
    from app.cli.demo import seed_demo

    flask_app = create_cli_app(own_settings(settings, postgres_url, "hpay_onboarding_fuzz"))
    seed_demo(flask_app.extensions["hpay_runtime"], sandbox.url)
    yield flask_app
    flask_app.extensions["hpay_runtime"].close()


@pytest.fixture(scope="module")
def tokens(fuzz_app):
    rt, client = fuzz_app.extensions["hpay_runtime"], fuzz_app.test_client()
    signed = {}
    for role, clinics in (("operator", ()), ("admin", ("demo",))):
        username, password = make_user(rt, role, clinics=clinics)
        signed[role] = sign_in(client, username, password)
    return signed


def _operations(fuzz_app):
    schema = schemathesis.openapi.from_wsgi("/openapi.json", fuzz_app)
    return [op for op in (result.ok() for result in schema.get_all_operations())
            if any(op.path.startswith(ADMIN + route) for route in ROUTES)
            and not op.path.endswith("/inventory")]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_generated_request_to_the_setup_routes_gets_a_server_error(fuzz_app, tokens, mode):
    from admin_api.security import declared_access

    operations = _operations(fuzz_app)
    assert len(operations) >= 20
    failures, skipped, answered, revoked = [], set(), [], []
    for operation in operations:
        endpoint = fuzz_app.url_map.bind("localhost").match(
            operation.path.replace("{", "<").replace("}", ">").replace("<code>", "x").replace("<app_id>", "1")
            .replace("<item_id>", "1").replace("<slot_id>", "1").replace("<user_id>", "1"),
            method=operation.method.upper())[0]
        # /users is open to both: fuzzed as the admin, or the operator's random changes to admin users would end
        # the fuzzing admin's own session.
        role = "admin" if "admin" in declared_access(fuzz_app.view_functions[endpoint]) else "operator"

        check = _checker(operation, mode, tokens[role], role, answered, revoked, failures)
        try:
            check()
        except Unsatisfiable:
            skipped.add(f"{operation.method.upper()} {operation.path}")
    assert not failures, "\n".join(failures[:20])
    assert not skipped
    # The fuzzing reached the routes signed in: no session ended (a 401 only where the negative mode left the
    # token out on purpose), and most requests were answered past the sign-in.
    assert revoked == []
    assert len(answered) > 10 * len(operations) and answered.count(401) < len(answered) / 2


def _checker(operation, mode, token, role, answered, revoked, failures):
    @settings(max_examples=EXAMPLES_PER_MODE, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case):
        generated = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
        response = case.call(headers={**generated, **token})
        answered.append(response.status_code)
        if response.status_code == 401 and "missing_token" not in response.text:
            revoked.append(f"{case.method} {case.formatted_path}: {response.text[:100]}")
        if response.status_code >= 500:
            failures.append(f"{case.method} {case.formatted_path} as {role} -> {response.status_code}: "
                            f"{response.text[:200]}")

    return check
