"""POST /api/mp/v1/auth/login through the real SDKs and the sandbox, for both channels."""
from __future__ import annotations

import pytest

from tests.api.mp_helpers import channel_user_id, login, login_code


@pytest.mark.parametrize("channel", ["wechat", "alipay"])
def test_login_issues_our_token_and_keeps_one_user_per_openid(client, sandbox, demo_clinic, channel):
    first = login(client, sandbox, channel, openid=f"patient-{channel}-1")
    again = login(client, sandbox, channel, openid=f"patient-{channel}-1")
    other = login(client, sandbox, channel, openid=f"patient-{channel}-2")
    assert first["token"] and first["expires_in"] > 0
    assert first["user"]["channel"] == channel
    assert first["user"]["openid"] == channel_user_id(channel, f"patient-{channel}-1")
    assert again["user"]["id"] == first["user"]["id"]
    assert other["user"]["id"] != first["user"]["id"]


@pytest.mark.parametrize("channel", ["wechat", "alipay"])
def test_a_bad_or_reused_code_is_401(client, sandbox, demo_clinic, channel):
    bad = client.post("/api/mp/v1/auth/login", json={"clinic_code": "demo", "channel": channel,
                                                     "code": "not-a-code"})
    assert bad.status_code == 401 and bad.get_json()["error"] == "invalid_login_code"
    code = login_code(sandbox, channel)
    assert client.post("/api/mp/v1/auth/login",
                       json={"clinic_code": "demo", "channel": channel, "code": code}).status_code == 200
    reused = client.post("/api/mp/v1/auth/login", json={"clinic_code": "demo", "channel": channel, "code": code})
    assert reused.status_code == 401


def test_unknown_clinic_is_404_and_missing_code_422(client, demo_clinic):
    unknown = client.post("/api/mp/v1/auth/login", json={"clinic_code": "nope", "channel": "wechat", "code": "c"})
    assert unknown.status_code == 404 and unknown.get_json()["error"] == "clinic_not_found"
    missing = client.post("/api/mp/v1/auth/login", json={"clinic_code": "demo", "channel": "wechat"})
    assert missing.status_code == 422


def test_control_characters_in_the_clinic_code_are_422(client, demo_clinic):
    for code in ("de\x00mo", "demo\n", "\x7f"):
        resp = client.post("/api/mp/v1/auth/login", json={"clinic_code": code, "channel": "wechat", "code": "c"})
        assert resp.status_code == 422, (code, resp.get_json())
