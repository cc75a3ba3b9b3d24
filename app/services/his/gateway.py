"""The HIS client of a clinic, built by the Runtime's factory from the clinic's configuration."""
from __future__ import annotations

from app.db.models import Clinic
from app.his.base import HisClient, HisConfig
from app.runtime import Runtime


def his_config(clinic: Clinic) -> HisConfig:
    return HisConfig(clinic.code, clinic.his_base_url, clinic.his_key_id, clinic.his_secret)


def his_client(rt: Runtime, clinic: Clinic) -> HisClient:
    return rt.his(his_config(clinic))
