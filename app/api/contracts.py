"""The contracts of the systems the platform calls, published beside its own `/openapi.json`.

`/his-contract.json` is the OpenAPI document of the calls the platform makes to a hospital's HIS
(app/his/contract/his-openapi.json: paths, bodies, errors, retries, idempotency, HMAC signing), for a HIS
vendor to build against. The docs UI at /docs lists it next to the platform's own API (a document picker:
the template app/templates/swagger_ui.html turns Swagger UI's `urls` on).
"""
from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Flask, Response

HIS_CONTRACT_FILE = Path(__file__).resolve().parent.parent / "his" / "contract" / "his-openapi.json"
HIS_CONTRACT_PATH = "/his-contract.json"


def register_contracts(app: Flask) -> None:
    blueprint = Blueprint("contracts", __name__)
    his_contract = HIS_CONTRACT_FILE.read_bytes()  # at start-up: a release without it does not start

    @blueprint.get(HIS_CONTRACT_PATH)
    def his_contract_json():
        return Response(his_contract, mimetype="application/json")

    app.register_blueprint(blueprint)
    parts = (app.config.get("OPENAPI_URL_PREFIX") or "", app.config.get("OPENAPI_JSON_PATH") or "openapi.json")
    own = "/" + "/".join(part.strip("/") for part in parts if part.strip("/"))
    app.config["OPENAPI_SWAGGER_UI_CONFIG"] = {
        **app.config.get("OPENAPI_SWAGGER_UI_CONFIG", {}),
        "urls": [{"url": own, "name": app.config.get("API_TITLE") or "Platform API"},
                 {"url": HIS_CONTRACT_PATH, "name": "HIS contract (the calls the platform makes to a HIS)"}],
    }
