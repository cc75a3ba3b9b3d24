"""Pages imitating the mini-program (`/h5/`), for browser tests."""
from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("sandbox_h5", __name__, url_prefix="/h5")


@bp.get("/")
def index():
    return ("<!doctype html><meta charset=utf-8><title>Sandbox mini-program</title>"
            "<h1>Sandbox mini-program</h1><p>Use <code>python -m mini_program_mock.patient</code> "
            "to run a scripted patient against the platform.</p>")


def register(app: Flask) -> None:
    app.register_blueprint(bp)
