"""The sandbox world as one Flask app: every gateway under its prefix of API.md."""
from __future__ import annotations

import importlib
import os
from pathlib import Path

from flask import Flask, jsonify, request

from .merchants import Merchants
from .notifier import Notifier
from .world import World

# Each package exposes register(app) adding its gateway and its /sandbox/ control routes.
GATEWAY_PACKAGES = [
    "mini_program_mock.control",
    "mini_program_mock.wechat",
    "mini_program_mock.alipay",
    "mini_program_mock.his",
    "mini_program_mock.messages.control",
    "mini_program_mock.sms",
    "mini_program_mock.h5",
]


def create_sandbox_app(data_dir: str | Path | None = None, time_scale: float | None = None,
                       public_url: str | None = None, start_notifier: bool = True) -> Flask:
    data_dir = data_dir or os.environ.get("SANDBOX_DATA_DIR", "var/sandbox")
    time_scale = time_scale if time_scale is not None else float(os.environ.get("SANDBOX_TIME_SCALE", "1"))
    public_url = public_url or os.environ.get("SANDBOX_PUBLIC_URL", "http://127.0.0.1:8100")

    app = Flask("mini_program_mock")
    world = World(data_dir, time_scale=time_scale, public_url=public_url)
    app.extensions["sandbox_world"] = world
    app.extensions["sandbox_merchants"] = Merchants(world)
    notifier = Notifier(world)
    app.extensions["sandbox_notifier"] = notifier

    for name in GATEWAY_PACKAGES:
        importlib.import_module(name).register(app)

    @app.errorhandler(404)
    def not_found(_exc):
        # Logged too: a request no gateway could route still reached the world (e.g. a HIS call with a
        # card number holding a slash), and tests check that some never do.
        if request.url_rule is None:
            world.log("unrouted", method=request.method, path=request.path)
        return jsonify(message="no such sandbox endpoint"), 404

    if start_notifier:
        notifier.start()
    return app
