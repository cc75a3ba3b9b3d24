"""Every patient flow on both channels, end to end on real processes: exactly one HIS write each."""
from __future__ import annotations

import time

import pytest

from mini_program_mock.patient import MiniProgramClient
from tests.api.mp_helpers import channel_user_id

EXPECTED = {"booking": ("paid", "registration"), "topup": ("completed", "recharge"),
            "bills": ("completed", "bill_settlement")}


def wait_for_his_records(client: MiniProgramClient, order_no: str, timeout: float = 30.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        records = client.his_records(order_no)
        if records:
            return records
        time.sleep(0.3)
    return []


@pytest.mark.parametrize("channel", ["wechat", "alipay"])
@pytest.mark.parametrize("flow", ["booking", "topup", "bills"])
def test_flow_ends_with_exactly_one_his_write(platform, sandbox, channel, flow):
    lines: list[str] = []
    client = MiniProgramClient(platform.url, sandbox.url, channel, say=lines.append)
    client.login(channel_user_id(channel, f"e2e-{flow}-{channel}"))
    order = getattr(client, flow)()
    status, kind = EXPECTED[flow]
    assert order["status"] == status, lines
    [payment] = order["payments"]
    assert payment["status"] == "paid" and payment["channel_trade_no"] and payment["amount_fen"] == order["amount_fen"]
    records = wait_for_his_records(client, order["order_no"])
    assert [r["kind"] for r in records] == [kind], (records, lines)
    assert records[0]["amount_fen"] == order["amount_fen"]
    time.sleep(2)  # a duplicate write would have been dispatched by now
    assert len(client.his_records(order["order_no"])) == 1
