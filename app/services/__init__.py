"""Use cases, grouped by capability, one package each; views and worker jobs call these, and these call
the domain, the database and the adapters of the Runtime.

This package is the composition root of the use cases: importing it loads the packages that own HIS write
kinds, so every kind is registered with his.delivery before anything is sent.
"""
from app.services import booking, payments, refunds  # noqa: F401  (each registers its HIS write kinds)
