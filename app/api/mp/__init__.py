"""The mini-program API under /api/mp/v1."""
from __future__ import annotations


def blueprints():
    from app.api.mp.auth import blp as auth_blp

    return [auth_blp]
