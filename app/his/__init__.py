"""The HIS (the hospital's own system) behind an interface: `HisClient` and its HTTP implementation."""
from __future__ import annotations

from . import signing
from .base import (
    BILL_KINDS,
    RECORD_KINDS,
    HisAuthFailed,
    HisBill,
    HisCard,
    HisClient,
    HisConfig,
    HisError,
    HisNotFound,
    HisPatient,
    HisRecord,
    HisRegistration,
    HisRejected,
    HisUnavailable,
    HisUnreachable,
    HisUnrecognised,
    HisWriteResult,
)
from .http_client import HttpHisClient

__all__ = [
    "BILL_KINDS", "RECORD_KINDS", "HisAuthFailed", "HisBill", "HisCard", "HisClient", "HisConfig", "HisError",
    "HisNotFound", "HisPatient", "HisRecord", "HisRegistration", "HisRejected", "HisUnavailable", "HisUnreachable",
    "HisUnrecognised", "HisWriteResult",
    "HttpHisClient", "signing",
]
