"""The Runtime's production factories: the channel adapters wait HPAY_CHANNEL_TIMEOUT_S (wechatpy's and
python-alipay-sdk's own timeouts), the HIS client HPAY_HIS_TIMEOUT_S; production refuses sandbox addresses
whatever the factory; a factory given to the Runtime is what every adapter comes from."""
from __future__ import annotations

import pytest
from Cryptodome.PublicKey import RSA
from cryptography.fernet import Fernet

from app.channels.base import MerchantConfig
from app.his.base import HisConfig
from app.runtime import Runtime, production_channel, production_his
from config.settings import ConfigurationError, ProductionSettings, Settings, TestSettings


def _wechat(base: str = "https://api.mch.weixin.qq.com/") -> MerchantConfig:
    return MerchantConfig(channel="wechat", clinic_code="c1", app_id="wx1234567890", mch_id="1900000109",
                          api_key="k" * 32, app_secret="s" * 32, sign_type="MD5", app_private_key=None,
                          alipay_public_key=None, api_base_url=base, login_base_url="https://api.weixin.qq.com/")


def _alipay() -> MerchantConfig:
    key = RSA.generate(2048)
    return MerchantConfig(channel="alipay", clinic_code="c1", app_id="2021000000000001", mch_id=None, api_key=None,
                          app_secret=None, sign_type="RSA2", app_private_key=key.export_key().decode(),
                          alipay_public_key=key.publickey().export_key().decode(),
                          api_base_url="https://openapi.alipay.com/gateway.do", login_base_url=None)


def test_the_channel_timeout_reaches_both_sdks():
    settings = Settings(CHANNEL_TIMEOUT_S=3.5)
    wechat = production_channel(_wechat(), settings)
    alipay = production_channel(_alipay(), settings)
    assert wechat._pay.timeout == 3.5 and wechat._login.timeout == 3.5
    assert alipay._ali._config.timeout == 3.5


def test_the_his_timeout_reaches_the_http_client():
    client = production_his(HisConfig("c1", "https://his.example.test/his", "his-1", "h" * 16),
                            Settings(HIS_TIMEOUT_S=2.5))
    assert client.timeout == 2.5


@pytest.mark.parametrize("name", ["HPAY_CHANNEL_TIMEOUT_S", "HPAY_HIS_TIMEOUT_S", "HPAY_DISPATCH_INTERVAL_S"])
def test_a_timeout_or_interval_that_is_not_positive_is_refused(name):
    with pytest.raises(ConfigurationError, match=name):
        TestSettings.from_env({name: "0"})


def test_the_dispatch_interval_is_a_setting():
    assert TestSettings.from_env({"HPAY_DISPATCH_INTERVAL_S": "5"}).DISPATCH_INTERVAL_S == 5


def test_production_refuses_sandbox_adapters_whatever_the_factory(tmp_path):
    built = []
    settings = ProductionSettings(DATABASE_URL=f"sqlite:///{tmp_path / 'p.db'}", SECRET_KEY="x" * 48,
                                  DATA_KEYS=Fernet.generate_key().decode())
    rt = Runtime(settings,
                 channel_factory=lambda config, settings: built.append(config),
                 his_factory=lambda config, settings: built.append(config))
    try:
        with pytest.raises(RuntimeError, match="sandbox"):
            rt.channel(_wechat("http://127.0.0.1:8100/wxpay/"))
        with pytest.raises(RuntimeError, match="sandbox"):
            rt.his(HisConfig("c1", "http://127.0.0.1:8100/his", "his-1", "h" * 16))
        rt.channel(_wechat())
        rt.his(HisConfig("c1", "https://his.example.test/his", "his-1", "h" * 16))
        assert len(built) == 2
    finally:
        rt.close()
