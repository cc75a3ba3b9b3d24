"""The mini-program API under /api/mp/v1."""
from __future__ import annotations

import importlib

MODULES = ["auth", "patients", "cards", "catalog", "orders", "refunds", "messages"]


def blueprints():
    return [importlib.import_module(f"app.api.mp.{name}").blp for name in MODULES]
