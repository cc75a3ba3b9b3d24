"""Who may call an admin endpoint: a signed-in staff user whose role allows it, on their clinics' data.

Every admin view is declared with `@staff_required(*roles)` (or `@public_endpoint`), placed
directly under `@blp.route(...)` so that authentication and the role check run before the
request is parsed: no token -> 401, a role not allowed -> 403. `admin` may call every clinic
route of its clinics: `staff_required("staff")` also admits admins, `staff_required("finance")`
finance and admins. `operator` is platform-wide and separate: it calls only the routes that name
it (`staff_required(OPERATOR)`: clinics, their HIS and channel apps; `staff_required(ADMIN,
OPERATOR)`: users), never a clinic's internal data (bookings, patients, statements), and admins
never call operator routes. `staff_required()` admits any signed-in user. Data outside
`clinic_scope()` answers 404, never its content (the services take the scope and look rows up
within it).

The declaration is kept on the view function (`declared_access(view)`); the role-matrix test
walks the registered routes and fails for any admin route without one, and a route missing it
is refused at request time (fail closed).
"""
from __future__ import annotations

import logging
from functools import wraps

from flask import current_app, g, request

from app.domain.errors import Forbidden, Unauthorized
from app.extensions import runtime
from app.services.common.principals import StaffPrincipal
from app.services.people.staff_auth import ADMIN, CLINIC_ROLES, FINANCE, OPERATOR, ROLES, STAFF, authenticate

__all__ = ["ADMIN", "FINANCE", "OPERATOR", "STAFF", "ADMIN_PREFIX", "StaffPrincipal", "admitted_roles",
           "clinic_scope", "current_staff", "declared_access", "public_endpoint", "staff_required"]

log = logging.getLogger(__name__)

ADMIN_PREFIX = "/api/admin/v1"
PUBLIC = "public"
_ACCESS_ATTR = "admin_access"
_SECURITY_DOC = [{"bearer": []}]


def _bearer_token() -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("sign in first: send Authorization: Bearer <token>", "missing_token")
    return token.strip()


def _with_security_doc(wrapper, view) -> None:
    doc = dict(getattr(view, "_apidoc", {}))
    doc["manual_doc"] = {**doc.get("manual_doc", {}), "security": _SECURITY_DOC}
    wrapper._apidoc = doc


def admitted_roles(roles: tuple[str, ...]) -> frozenset[str]:
    """Every role when none is named; else the named ones, plus admin where a clinic role is named."""
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}")
    if not roles:
        return frozenset(ROLES)
    return frozenset(roles) | ({ADMIN} if set(roles) & set(CLINIC_ROLES) else set())


def staff_required(*roles: str):
    """Admit a signed-in, active staff user whose role is one of `roles` (admins on every clinic route)."""
    allowed = admitted_roles(roles)

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            token = _bearer_token()
            principal = authenticate(runtime(), token)
            if principal.role not in allowed:
                raise Forbidden(f"the {principal.role} role may not do this", "role_not_allowed")
            g.staff_principal = principal
            return view(*args, **kwargs)

        setattr(wrapper, _ACCESS_ATTR, tuple(sorted(allowed)))
        _with_security_doc(wrapper, view)
        return wrapper

    return decorator


def public_endpoint(view):
    """Declare an admin endpoint that needs no sign-in (the login itself)."""
    setattr(view, _ACCESS_ATTR, PUBLIC)
    return view


def declared_access(view) -> tuple[str, ...] | str | None:
    """The roles a view admits, `"public"`, or None when it declares nothing."""
    return getattr(view, _ACCESS_ATTR, None)


def current_staff() -> StaffPrincipal:
    return g.staff_principal


def clinic_scope() -> tuple[int, ...]:
    """The clinic ids whose data the signed-in user may see and change."""
    return current_staff().clinic_ids


def refuse_undeclared_endpoints() -> None:
    """A blueprint before_request hook: an admin view that declares no access is never served."""
    view = current_app.view_functions.get(request.endpoint or "")
    if view is not None and declared_access(view) is None:
        log.error("admin endpoint %s declares no access; refused", request.endpoint)
        raise Forbidden("this endpoint declares no access rule", "access_undeclared")
