"""create_app(): settings, logging, the Runtime, the APIs, metrics, rate limits, security headers, error mapping and
the console's files. The CLI (app.cli.create_cli_app) is built on it."""
from __future__ import annotations

import time

import swagger_ui_bundle
from flask import Flask, g, request, send_from_directory
from flask_smorest import Api
from werkzeug.middleware.proxy_fix import ProxyFix

from admin_api import blueprints as admin_blueprints
from admin_api.onboarding_cli import COMMANDS as ONBOARDING_COMMANDS  # noqa: F401  (app.cli registers them)
from admin_api.security import PUBLIC, declared_access
from app import monitoring, ratelimit
from app.api.contracts import register_contracts
from app.api.health import blp as health_blp
from app.api.his.views import blp as his_blp
from app.api.mp import blueprints as mp_blueprints
from app.api.mp.sold_out_edge import SoldOutEdge
from app.api.notify import blp as notify_blp
from app.console import register_console
from app.cors import install_cors
from app.errors import document_unavailable, register_error_handlers
from app.http_basics import ALWAYS_SET, REQUEST_ID_HEADER, log_access, request_id, security_headers
from app.openapi import document_operations, platform_api
from app.runtime import Runtime
from config.logging import configure_logging, request_id_var
from config.settings import Settings, load_settings

DOCS_STATIC = "/docs/static"


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or load_settings()
    configure_logging(settings.LOG_LEVEL, settings.LOG_JSON)

    app = Flask("app")
    # No SECRET_KEY for Flask: nothing uses its cookie session, so the platform's key stays with the code that
    # signs with it, and no request parses a session cookie.
    app.config.update(
        HPAY_SETTINGS=settings,
        API_TITLE="Clinic payment platform",
        API_VERSION="1.0",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL=f"{DOCS_STATIC}/",
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,
        JSON_SORT_KEYS=False,
    )
    app.json.ensure_ascii = False
    app.extensions["hpay_runtime"] = Runtime(settings)
    if settings.BOOKING_GATE_ENABLED and settings.BOOKING_GATE_SOLD_OUT_MEMO_S > 0:
        # A crowd's sold-out answers this process remembers are given before Flask, exactly as the view gives them.
        app.wsgi_app = SoldOutEdge(app.wsgi_app, app.extensions["hpay_runtime"],
                                   encode=lambda document: app.json.dumps(document, separators=(",", ":")),
                                   hsts=settings.ENV == "production", vary_origin=bool(settings.cors_origins()))
    if settings.PROXY_COUNT:
        # Behind N reverse proxies the client address is the Nth from the end of X-Forwarded-For; one
        # the client wrote itself further left is never believed.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.PROXY_COUNT, x_proto=settings.PROXY_COUNT)

    _install_request_id(app)
    _install_security_headers(app, hsts=settings.ENV == "production")

    api = platform_api(app)
    app.extensions["hpay_api"] = api
    _register_blueprints(api)
    # Before the rate limits, so that a refused request is counted too.
    monitoring.install(app, api)
    # After the Api, whose own HTTPException handler ours replaces.
    register_error_handlers(app)
    document_unavailable(app, api)
    ratelimit.install(app, api, settings)
    install_cors(app, settings)
    # Last: the operations' ids, tags and security schemes, once every blueprint and response is documented.
    document_operations(app, api, declared_access, PUBLIC)

    @app.get(f"{DOCS_STATIC}/<path:filename>")
    def docs_static(filename: str):
        return send_from_directory(swagger_ui_bundle.swagger_ui_path, filename)

    register_console(app)
    register_contracts(app)
    return app


def _register_blueprints(api: Api) -> None:

    api.register_blueprint(health_blp)
    api.register_blueprint(notify_blp)
    api.register_blueprint(his_blp)
    for blp in mp_blueprints():
        api.register_blueprint(blp)
    for blp in admin_blueprints():
        api.register_blueprint(blp)


def _install_security_headers(app: Flask, hsts: bool) -> None:
    @app.after_request
    def add_security_headers(response):
        headers = response.headers
        for name, value in security_headers(request.path, response.mimetype, hsts):
            if name in ALWAYS_SET:
                headers[name] = value
            else:
                headers.setdefault(name, value)
        return response


def _install_request_id(app: Flask) -> None:
    @app.before_request
    def assign_request_id():
        g.request_id = request_id(request.headers.get(REQUEST_ID_HEADER))
        g.request_id_token = request_id_var.set(g.request_id)
        g.started = time.perf_counter()

    @app.after_request
    def echo_request_id(response):
        if "request_id" in g:
            response.headers[REQUEST_ID_HEADER] = g.request_id
            log_access(request.method, request.path, response.status_code, g.started)
        return response

    @app.teardown_request
    def clear_request_id(_exc):
        token = g.pop("request_id_token", None)
        if token is not None:
            request_id_var.reset(token)
