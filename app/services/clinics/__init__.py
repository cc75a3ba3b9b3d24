"""Clinics: onboarding (clinics, their HIS connection and its check), channel apps of a clinic or of the platform
(their keys, rotation, checks, and the adapters the Runtime builds for them), the catalog of items and packages,
schedules and slots, per-channel inventory and settlement-type settings.

What other packages may call:
"""
from app.services.clinics.catalog import clinic_item_criteria, clinic_item_or_refusal, require_clinic_item
from app.services.clinics.his_connection import his_client, his_config
from app.services.clinics.merchants import (
    CHANNELS,
    CLINIC,
    PLATFORM,
    PLATFORM_CODE,
    account_code,
    accounts_for_notifications,
    channel_for_account,
    get_clinic,
    login_account,
    merchant_config,
    paying_account_or_refusal,
    require_active,
    require_paying_account,
    user_account,
)
from app.services.clinics.settlement_types import settlement_setting

__all__ = ["CHANNELS", "CLINIC", "PLATFORM", "PLATFORM_CODE", "account_code", "accounts_for_notifications",
           "channel_for_account", "clinic_item_criteria", "clinic_item_or_refusal", "get_clinic", "his_client",
           "his_config", "login_account", "merchant_config", "paying_account_or_refusal", "require_active",
           "require_clinic_item", "require_paying_account", "settlement_setting", "user_account"]
