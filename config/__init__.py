"""Settings classes read from HPAY_* environment variables, and the logging setup."""
from config.settings import DevelopmentSettings, ProductionSettings, Settings, TestSettings, load_settings

__all__ = ["Settings", "DevelopmentSettings", "TestSettings", "ProductionSettings", "load_settings"]
