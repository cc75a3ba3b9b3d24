"""The platform's OpenAPI document (`/openapi.json`, `flask openapi write`): the rules every operation follows.

Each operation belongs to one audience, decided by its path: the mini-program API, the admin API, the HIS API,
the channels' notifications, or operations (probes, metrics). `document_operations`, called once after every
blueprint is registered, gives each operation from its audience:

- an operationId: the audience's prefix and the view function's name (`mp_create_order`), or the readable name
  of `OPERATION_IDS` where the function's name alone says too little (`cancel` -> `admin_cancel_booking`);
- its tags: the audience's tag; in the admin API, one tag per role the route names (staff, finance, clinic admin,
  operator), so that each group of users finds what it may call;
- its security scheme: the audience's own (a view documents `bearer`; the mini-program's and the admin API's
  tokens are different schemes), and for the channels' notifications the signature of that channel.

Errors have one schema, `ApiError` (app.errors.ApiErrorSchema): flask-smorest's own default and 422 responses
refer to it too. An operation added later follows the same rules without touching this file.
"""
from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from flask_smorest import Api
from flask_smorest.spec.plugins import FlaskPlugin

from app.errors import ApiErrorSchema
from app.his import signing
from app.services.people import ADMIN, FINANCE, OPERATOR, ROLES, STAFF

MP_BEARER = "mp_bearer"
ADMIN_BEARER = "admin_bearer"
METRICS_BEARER = "metrics_bearer"
HIS_HMAC = "his_hmac"
HIS_KEY_ID, HIS_TIMESTAMP, HIS_NONCE = "his_key_id", "his_timestamp", "his_nonce"
WECHAT_PAY_SIGN = "wechat_pay_sign"
WECHAT_REFUND_REQ_INFO = "wechat_refund_req_info"
ALIPAY_SIGN = "alipay_sign"
DOCUMENTED_BEARER = "bearer"  # what a view declares (`@blp.doc(security=[{"bearer": []}])`); its audience decides

MP, ADMIN_API, HIS, NOTIFY, OPS = "mp", "admin", "his", "notify", "ops"
# Path prefix -> audience; the first that matches wins, and what matches none is operations.
AUDIENCE_PREFIXES = (("/api/mp/", MP), ("/api/admin/", ADMIN_API), ("/api/his/", HIS), ("/notify/", NOTIFY))

TAG_MP = "Mini-program API"
TAG_ADMIN_SESSION = "Admin API: sign-in"
TAG_ADMIN_ROLE = {STAFF: "Admin API: staff", FINANCE: "Admin API: finance", ADMIN: "Admin API: clinic admin",
                  OPERATOR: "Admin API: operator"}
TAG_HIS = "HIS API"
TAG_NOTIFY = "Channel notifications"
TAG_OPS = "Operations"
AUDIENCE_TAG = {MP: TAG_MP, HIS: TAG_HIS, NOTIFY: TAG_NOTIFY, OPS: TAG_OPS}

_ADMIN_AUTH = (f"Sign in with `POST /api/admin/v1/auth/login` and send `Authorization: Bearer <token>` "
               f"(security scheme `{ADMIN_BEARER}`); the token is refused once it expires, is logged out or the "
               "user's password changes. Clinic data is scoped to the user's clinics: another clinic's record "
               "answers 404.")
TAGS = (
    (TAG_MP, "Called by a clinic's WeChat or Alipay mini-program for the patient using it. Sign in with "
             "`POST /api/mp/v1/auth/login` (the code of wx.login / my.getAuthCode) and send "
             f"`Authorization: Bearer <token>` (security scheme `{MP_BEARER}`); every answer is about that user's "
             "patients, cards and orders only. Creating POSTs take an `Idempotency-Key` header."),
    (TAG_ADMIN_SESSION, "Every staff user of the admin console (any role): sign in, who am I, change the password, "
                        f"log out. {_ADMIN_AUTH}"),
    (TAG_ADMIN_ROLE[STAFF], "Front-desk staff of a clinic (clinic admins too): bookings, redemption, patients, "
                            f"orders and their story. {_ADMIN_AUTH}"),
    (TAG_ADMIN_ROLE[FINANCE], "A clinic's finance users (clinic admins too): reconciliation, statements, "
                              f"settlements, transactions, the dashboard. {_ADMIN_AUTH}"),
    (TAG_ADMIN_ROLE[ADMIN], "A clinic's administrators: catalog, schedules, inventory, settings, users, "
                            f"operations queues, the audit trail. {_ADMIN_AUTH}"),
    (TAG_ADMIN_ROLE[OPERATOR], "The platform's operators (platform-wide, never a clinic's internal data): clinics, "
                               f"their HIS and channel apps, admin users. {_ADMIN_AUTH}"),
    (TAG_HIS, "Called by a hospital's HIS: window refunds, bill events, the platform's daily record of HIS writes. "
              f"Every request is signed with the clinic's HIS key pair (security scheme `{HIS_HMAC}` with "
              f"`{HIS_KEY_ID}`, `{HIS_TIMESTAMP}` and `{HIS_NONCE}`: HMAC-SHA256, see its description); an unsigned "
              "or badly signed request is refused 401 before its body is read. The calls the platform makes to "
              "the HIS are a separate document: `/his-contract.json`."),
    (TAG_NOTIFY, "Called by WeChat Pay and Alipay when a payment or refund settles; the URL names the clinic. No "
                 "credentials: each notification is signed by the channel and verified against the clinic's "
                 f"channel app keys (schemes `{WECHAT_PAY_SIGN}`, `{WECHAT_REFUND_REQ_INFO}`, `{ALIPAY_SIGN}`) "
                 "before anything is believed; the answer is the channel's own format (XML, or `success`/`fail`), "
                 "never the JSON error body. A notification that fails verification changes nothing."),
    (TAG_OPS, "Called by the load balancer or orchestrator (`/healthz`, `/readyz`: no credentials) and by "
              f"Prometheus (`/metrics`: scheme `{METRICS_BEARER}`, or a client on the same host)."),
)

# Where the rule's `<audience>_<function name>` says too little: endpoint -> operationId.
OPERATION_IDS = {
    "admin_auth.me": "admin_get_me",
    "admin_bookings.cancel": "admin_cancel_booking",
    "admin_bookings.confirm": "admin_confirm_booking",
    "admin_bookings.no_show": "admin_mark_no_show",
    "admin_bookings.reschedule": "admin_reschedule_booking",
    "admin_bookings.redeem": "admin_redeem_order",
    "admin_onboarding.get_app": "admin_get_channel_app",
    "admin_onboarding.update_app": "admin_update_channel_app",
    "admin_onboarding.check_app": "admin_check_channel_app",
    "admin_onboarding.set_his": "admin_set_clinic_his",
    "admin_onboarding.check_his": "admin_check_clinic_his",
    "admin_onboarding.list_clinic_apps": "admin_list_clinic_channel_apps",
    "admin_onboarding.create_clinic_app": "admin_create_clinic_channel_app",
    "admin_onboarding.list_platform_apps": "admin_list_platform_channel_apps",
    "admin_onboarding.create_platform_app": "admin_create_platform_channel_app",
    "admin_ops.queues": "admin_list_queues",
    "admin_ops.failed_jobs": "admin_list_failed_jobs",
    "admin_ops.flagged": "admin_list_flagged_his_writes",
    "admin_ops.retry_flagged": "admin_retry_flagged_his_write",
    "admin_order_story.get_story": "admin_get_order_story",
    "admin_order_story.inquire": "admin_inquire_order",
    "admin_order_story.receipt": "admin_get_receipt",
    "admin_reconciliation.resolve": "admin_resolve_discrepancy",
    "admin_reconciliation.list_runs": "admin_list_reconciliation_runs",
    "admin_reconciliation.start_run": "admin_start_reconciliation_run",
    "admin_reconciliation.get_run": "admin_get_reconciliation_run",
    "admin_statements.list_lines": "admin_list_statement_lines",
    "admin_ops.requeue_job": "admin_requeue_failed_job",
    "admin_catalog.post_schedule": "admin_create_schedule",
    "admin_transactions.export": "admin_export_transactions",
    "admin_users.unlock": "admin_unlock_user",
    "his_api.bill_event": "his_post_bill_event",
    "his_api.reconciliation_day": "his_get_reconciliation_day",
    "his_api.window_refund": "his_create_window_refund",
    "mp_orders.inquire": "mp_inquire_order",
    "mp_orders.receipt": "mp_get_receipt",
    "mp_refunds.refund_card": "mp_create_card_refund",
    "notify.alipay": "notify_alipay",
    "notify.wechat_pay": "notify_wechat_pay",
    "notify.wechat_refund": "notify_wechat_refund",
    "monitoring.metrics_endpoint": "ops_metrics",
}

# The signing example of the HIS scheme's description, computed by the signer itself so that it cannot go stale.
_EXAMPLE_SECRET, _EXAMPLE_TS, _EXAMPLE_NONCE = "0123456789abcdef0123", "1767225600", "n0nce-0000000000000"
_EXAMPLE_PATH = "/api/his/v1/reconciliation/2026-01-01"
HIS_SCHEME_DESCRIPTION = f"""\
HMAC-SHA256 with the clinic's HIS key pair: the `key_id` and `secret` an operator sets with \
`PUT /api/admin/v1/clinics/{{code}}/his` (the same pair signs the platform's calls to that HIS). Every request \
carries four headers, all required:

| header | value |
|---|---|
| `{signing.KEY_ID_HEADER}` | the key id (1-100 of `A-Z a-z 0-9 . _ -`); it names the clinic |
| `{signing.TIMESTAMP_HEADER}` | unix seconds when signed (1-12 ASCII digits) |
| `{signing.NONCE_HEADER}` | 16-64 of `A-Z a-z 0-9 _ -`, new for every request (a retry is signed again) |
| `{signing.SIGNATURE_HEADER}` | hex HMAC-SHA256(secret, signing string): 64 hex digits |

    signing string = timestamp + "\\n" + nonce + "\\n" + METHOD + "\\n" + path + "\\n" + raw_body

`METHOD` is upper case; `path` is the request path as routed (percent-decoded), plus `?` and the query string \
exactly as sent when there is one; `raw_body` is the body's bytes exactly as sent (empty for a GET); the secret is \
used as its UTF-8 bytes and must be at least {signing.MIN_SECRET_LENGTH} characters (a shorter one is never used: \
the clinic cannot call).

Refused with 401 `invalid_signature`: a missing or malformed header, an unknown key id, a wrong signature, a \
timestamp more than {signing.MAX_AGE_S} s older or more than {signing.MAX_AHEAD_S} s newer than the platform's \
clock. Refused with 401 `replayed_request`: a nonce this key already used within the window. A request is \
authenticated before its body is validated.

Example: secret `{_EXAMPLE_SECRET}`, `GET {_EXAMPLE_PATH}` at timestamp `{_EXAMPLE_TS}` with nonce \
`{_EXAMPLE_NONCE}` signs `{_EXAMPLE_TS}\\n{_EXAMPLE_NONCE}\\nGET\\n{_EXAMPLE_PATH}\\n` and sends \
`{signing.SIGNATURE_HEADER}: \
{signing.signature(_EXAMPLE_SECRET, _EXAMPLE_TS, _EXAMPLE_NONCE, "GET", _EXAMPLE_PATH, b"")}`."""

_NOT_A_HEADER = ("OpenAPI 3.0 has no scheme for a signature carried inside the body, so this scheme's `in` is "
                 "nominal: send nothing besides the channel's own body.")
SECURITY_SCHEMES = {
    MP_BEARER: {"type": "http", "scheme": "bearer", "description": (
        "The mini-program user's token from `POST /api/mp/v1/auth/login`, as `Authorization: Bearer <token>`; "
        "valid for `expires_in` seconds or until `POST /api/mp/v1/auth/logout`.")},
    ADMIN_BEARER: {"type": "http", "scheme": "bearer", "description": (
        "A staff user's token from `POST /api/admin/v1/auth/login`, as `Authorization: Bearer <token>`; valid for "
        "`expires_in` seconds, until `POST /api/admin/v1/auth/logout`, or until the user's password changes. "
        "The user's role decides which operations answer (403 `role_not_allowed` otherwise).")},
    METRICS_BEARER: {"type": "http", "scheme": "bearer", "description": (
        "`HPAY_METRICS_TOKEN`, as `Authorization: Bearer <token>`, when it is set; without it only a client on "
        "the same host is answered.")},
    HIS_HMAC: {"type": "apiKey", "in": "header", "name": signing.SIGNATURE_HEADER,
               "description": HIS_SCHEME_DESCRIPTION},
    HIS_KEY_ID: {"type": "apiKey", "in": "header", "name": signing.KEY_ID_HEADER,
                 "description": f"The clinic's HIS key id: part of the `{HIS_HMAC}` scheme."},
    HIS_TIMESTAMP: {"type": "apiKey", "in": "header", "name": signing.TIMESTAMP_HEADER,
                    "description": f"Unix seconds when signed: part of the `{HIS_HMAC}` scheme."},
    HIS_NONCE: {"type": "apiKey", "in": "header", "name": signing.NONCE_HEADER,
                "description": f"A new nonce for every request: part of the `{HIS_HMAC}` scheme."},
    WECHAT_PAY_SIGN: {"type": "apiKey", "in": "query", "name": "sign", "description": (
        "WeChat Pay v2: the `sign` element of the notification's XML, over every other non-empty element sorted "
        "by name (`k=v&...&key=<API key>`), MD5 or HMAC-SHA256 as `sign_type` says, upper-case hex; verified with "
        "the API key of the clinic's WeChat channel app whose `appid`/`mch_id` the notification names. "
        + _NOT_A_HEADER)},
    WECHAT_REFUND_REQ_INFO: {"type": "apiKey", "in": "query", "name": "req_info", "description": (
        "WeChat Pay v2 refund notification: unsigned outer XML whose `req_info` is base64 of AES-256-ECB "
        "(PKCS#7) under the lowercase hex MD5 of the clinic's API key; only a `req_info` that decrypts under "
        "that key is believed. " + _NOT_A_HEADER)},
    ALIPAY_SIGN: {"type": "apiKey", "in": "query", "name": "sign", "description": (
        "Alipay: the form's `sign` field, RSA2 (SHA256withRSA, base64) over every other non-empty field but "
        "`sign_type`, sorted by name (`k=v&...`), verified with the Alipay public key of the clinic's Alipay "
        "channel app whose `app_id` the notification names. " + _NOT_A_HEADER)},
}
HIS_SECURITY = [{HIS_KEY_ID: [], HIS_TIMESTAMP: [], HIS_NONCE: [], HIS_HMAC: []}]
NOTIFY_SECURITY = {"notify.wechat_pay": [{WECHAT_PAY_SIGN: []}], "notify.wechat_refund": [{WECHAT_REFUND_REQ_INFO: []}],
                   "notify.alipay": [{ALIPAY_SIGN: []}]}
BEARER_OF_AUDIENCE = {MP: MP_BEARER, ADMIN_API: ADMIN_BEARER, OPS: METRICS_BEARER}


class PlatformApi(Api):
    """flask-smorest's Api whose default and 422 responses document the error body the app really answers."""

    ERROR_SCHEMA = ApiErrorSchema


def platform_api(app: Flask) -> Api:
    return PlatformApi(app, spec_kwargs={"components": {"securitySchemes": dict(SECURITY_SCHEMES)}})


def audience(path: str) -> str:
    return next((name for prefix, name in AUDIENCE_PREFIXES if path.startswith(prefix)), OPS)


def admin_tags(access, public: str) -> list[str]:
    """The tags of an admin route: one per role it names (admins, admitted to every clinic route, only where no
    other clinic role is named); sign-in where any user may call."""
    if access == public or set(access or ()) >= set(ROLES):
        return [TAG_ADMIN_SESSION]
    if not access:  # declares nothing: refused at request time, and the role-matrix test names it
        return []
    named = set(access) - ({ADMIN} if set(access) & {STAFF, FINANCE} else set())
    return [TAG_ADMIN_ROLE[role] for role in (STAFF, FINANCE, ADMIN, OPERATOR) if role in named]


def _security(operation: dict, endpoint: str, group: str) -> list[dict] | None:
    if group == NOTIFY:
        return NOTIFY_SECURITY.get(endpoint)
    if group == HIS:
        return HIS_SECURITY
    declared = operation.get("security")
    if declared is None:
        return None
    bearer = BEARER_OF_AUDIENCE[group]
    return [{(bearer if name == DOCUMENTED_BEARER else name): scopes for name, scopes in requirement.items()}
            for requirement in declared]


def _fold_form_fields(operation: dict, components: dict) -> None:
    """A form field parsed next to files (`location="form"` beside `location="files"`) is documented by
    flask-smorest as an OpenAPI 2 `formData` parameter, which 3.0 does not have: fold it into the multipart body's
    schema (inlined, since the files' schema allows no other property)."""
    form = [param for param in operation.get("parameters", ()) if param.get("in") == "formData"]
    body = operation.get("requestBody", {}).get("content", {}).get("multipart/form-data")
    if not form or body is None:
        return
    operation["parameters"] = [param for param in operation["parameters"] if param.get("in") != "formData"]
    schema = body["schema"]
    if "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    body["schema"] = {
        **schema,
        "properties": {**schema.get("properties", {}),
                       **{param["name"]: {**param.get("schema", {}), "description": param.get("description", "")}
                          for param in form}},
        "required": [*schema.get("required", ()), *(param["name"] for param in form if param.get("required"))],
    }


def document_operations(app: Flask, api: Api, access_of: Callable, public: str) -> None:
    """Give every operation its operationId, tags and security scheme by its audience (see the module's doc);
    call once, after every blueprint is registered. `access_of(view)` is the roles an admin view declares (or
    `public`): given by the factory, the one place app knows the admin API."""
    paths = api.spec._paths  # apispec keeps the registered operations here until the document is built
    for rule in app.url_map.iter_rules():
        operations = paths.get(FlaskPlugin.flaskpath2openapi(rule.rule), {})
        for method in sorted(rule.methods or ()):
            operation = operations.get(method.lower())
            if operation is None:
                continue
            _fold_form_fields(operation, api.spec.components.schemas)
            group = audience(rule.rule)
            function = rule.endpoint.rsplit(".", 1)[-1]
            operation["operationId"] = operation.get("operationId") or OPERATION_IDS.get(
                rule.endpoint, f"{group}_{function}")
            if group == ADMIN_API:
                operation["tags"] = admin_tags(access_of(app.view_functions[rule.endpoint]), public)
            else:
                operation["tags"] = [AUDIENCE_TAG[group]]
            security = _security(operation, rule.endpoint, group)
            if security is not None:
                operation["security"] = security
    api.spec._tags[:] = [{"name": name, "description": description} for name, description in TAGS]
