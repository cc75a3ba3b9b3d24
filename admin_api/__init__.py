"""The admin API under /api/admin/v1, for clinic staff, finance and administrators.

Every module of this package that defines a flask-smorest Blueprint `blp` is served: a
new module is picked up without editing this file. Each view declares its access with
`admin_api.security.staff_required` (or `public_endpoint`); a view that declares none is
refused at request time and fails the role-matrix test.
"""
from __future__ import annotations

import importlib
import pkgutil

from flask_smorest import Blueprint

from admin_api.security import refuse_undeclared_endpoints

_GUARDED = "_admin_access_guard"


def blueprints() -> list[Blueprint]:
    found = []
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        blp = getattr(module, "blp", None)
        if isinstance(blp, Blueprint):
            if not getattr(blp, _GUARDED, False):
                blp.before_request(refuse_undeclared_endpoints)
                setattr(blp, _GUARDED, True)
            found.append(blp)
    return found
