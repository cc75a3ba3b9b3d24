"""The console is typed against the admin API's OpenAPI document committed in admin_api/web/openapi.json. When
the app would publish another one, this fails: run `make console-client` (which regenerates
src/api/schema.d.ts), and the console's type check (vue-tsc, part of its build) names every screen the change
breaks, before any user meets it."""
from __future__ import annotations

import json

from app.cli import console_build


def test_the_committed_admin_api_document_is_the_one_the_app_publishes(app):
    committed = console_build.SPEC_FILE.read_text(encoding="utf-8")
    current = console_build.spec_text(app)
    assert json.loads(committed) == json.loads(current), (
        "the admin API changed: run `make console-client` and commit admin_api/web/openapi.json and "
        "admin_api/web/src/api/schema.d.ts")
    assert committed == current, "openapi.json is not in its canonical form: run `make console-client`"


def test_the_document_holds_the_admin_api_only_with_every_schema_it_refers_to(app):
    spec = console_build.admin_openapi(app)
    assert spec["paths"] and all(path.startswith("/api/admin/v1/") for path in spec["paths"])
    assert "/api/admin/v1/dashboard" in spec["paths"] and "/api/admin/v1/auth/login" in spec["paths"]
    referred: set[str] = set()
    console_build._refs(spec, referred)
    missing = [ref for ref in referred if ref.split("/")[3] not in spec["components"].get(ref.split("/")[2], {})]
    assert not missing
    everything = app.extensions["hpay_api"].spec.to_dict()["components"]["schemas"]
    left_out = set(everything) - set(spec["components"]["schemas"])
    assert left_out, "the mini-program and HIS schemas are left out"


def test_the_generated_types_were_made_from_the_committed_document():
    types = console_build.SCHEMA_TYPES.read_text(encoding="utf-8")
    spec = json.loads(console_build.SPEC_FILE.read_text(encoding="utf-8"))
    for path in spec["paths"]:
        assert f'"{path}": {{' in types, f"{path} is missing from schema.d.ts: run `make console-client`"
    for name in spec["components"]["schemas"]:
        assert f"        {name}: {{" in types, f"schema {name} is missing from schema.d.ts: run `make console-client`"
