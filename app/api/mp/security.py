"""Bearer authentication for the mini-program API."""
from __future__ import annotations

from functools import wraps

from flask import g, request

from app.domain.errors import Unauthorized
from app.extensions import runtime
from app.services.common.principals import MpPrincipal
from app.services.people.mp_auth import authenticate


def bearer_token() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("log in first: send Authorization: Bearer <token>", "missing_token")
    return token.strip()


def login_required(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        g.mp_principal = authenticate(runtime(), bearer_token())
        return view(*args, **kwargs)

    return wrapper


def current_principal() -> MpPrincipal:
    return g.mp_principal
