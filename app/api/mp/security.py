"""Bearer authentication for the mini-program API."""
from __future__ import annotations

from functools import wraps

from flask import g, request

from app.domain.errors import Unauthorized
from app.extensions import runtime
from app.services.common.principals import MpPrincipal, MpSignedSession
from app.services.people.mp_auth import authenticate, read_session


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


def signed_in(view):
    """The token's signature and expiry only: the use case confirms the session before its first database work
    (a booking asks the admission gate first, so a crowd's sold-out answers touch no database)."""
    @wraps(view)
    def wrapper(*args, **kwargs):
        g.mp_session = read_session(runtime(), bearer_token())
        return view(*args, **kwargs)

    return wrapper


def current_session() -> MpSignedSession:
    return g.mp_session
