"""The HIS client of a clinic (the connection belongs to the clinic: app.services.clinics builds it)."""
from __future__ import annotations

from app.services.clinics import his_client, his_config

__all__ = ["his_client", "his_config"]
