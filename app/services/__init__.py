"""Use cases, grouped by capability, one package each; views and worker jobs call these, and these call
the domain, the database and the adapters of the Runtime.

This package is the composition root of the use cases: importing it loads every capability package, so
every HIS write kind is registered with his.delivery before anything is sent.
"""
from app.services import booking, payments, reconciliation, refunds  # noqa: F401  (each registers its his_kinds)
