"""Clinics: their channel apps (merchant accounts and the adapters the Runtime builds for them), the
catalog of items and slots, per-channel inventory and settlement-type settings.

What other packages may call:
"""
from app.services.clinics.catalog import require_clinic_item
from app.services.clinics.merchants import CHANNELS, channel_for_account, get_clinic, merchant_config, primary_account
from app.services.clinics.settlement_types import settlement_setting

__all__ = ["CHANNELS", "channel_for_account", "get_clinic", "merchant_config", "primary_account",
           "require_clinic_item", "settlement_setting"]
