"""A real PostgreSQL restarted under the app (a server of this module's own, so the shared one is never touched):
the notification inbox's per-thread connection and the pool recover by themselves, and what is asked while the
server is down is a 503 (the channels' FAIL for a notification), never a 500."""
from __future__ import annotations

import secrets

import pytest
from sqlalchemy import func, select

from app.cli.demo import seed_demo
from app.db.migrate import upgrade
from app.db.models import NotificationInbox
from app.factory import create_app
from config.settings import TestSettings
from tests.api.order_helpers import add_patient, paying_booking, user, wechat_merchant
from tests.api.test_metrics import wechat_notification
from tests.conftest import _create_database
from tests.servers import PostgresServer


@pytest.fixture(scope="module")
def restartable(redis_url, sandbox, secret_key):
    """(server, app) on a PostgreSQL of this module's own, seeded like the demo."""
    server = PostgresServer()
    url = _create_database(server.start(), "hpay_restart")
    upgrade(url)
    app = create_app(TestSettings(DATABASE_URL=url, REDIS_URL=redis_url, SANDBOX_URL=sandbox.url,
                                  PUBLIC_BASE_URL="http://127.0.0.1:1", SECRET_KEY=secret_key))
    seed_demo(app.extensions["hpay_runtime"], sandbox.url)
    yield server, app
    app.extensions["hpay_runtime"].close()
    server.stop()


def _inbox_rows(rt, out_trade_no: str) -> int:
    with rt.db.session() as session:
        return session.scalar(select(func.count(NotificationInbox.id))
                              .where(NotificationInbox.out_trade_no == out_trade_no))


def test_the_inbox_connection_and_the_pool_recover_after_a_restart(restartable, sandbox):
    server, app = restartable
    rt, client = app.extensions["hpay_runtime"], app.test_client()
    headers = user(client, sandbox, f"restart-{secrets.token_hex(4)}")
    _, _, order, out_trade_no = paying_booking(client, rt, headers, add_patient(client, headers))
    merchant = wechat_merchant(sandbox)

    def notify():
        return client.post("/notify/wechat/demo/pay", content_type="text/xml",
                           data=wechat_notification(merchant, out_trade_no, order["amount_fen"]))

    assert "SUCCESS" in notify().get_data(as_text=True)  # this thread now holds its inbox connection
    server.restart()
    # The held connection was cut: it is replaced and the insert sent again, so the first one after is stored.
    after_restart = notify()
    assert after_restart.status_code == 200 and "SUCCESS" in after_restart.get_data(as_text=True)
    assert client.get(f"/api/mp/v1/orders/{order['order_no']}", headers=headers).status_code == 200

    server.pause()
    try:
        down = notify()
        assert down.status_code == 503 and "FAIL" in down.get_data(as_text=True) and down.headers["Retry-After"]
        order_down = client.get(f"/api/mp/v1/orders/{order['order_no']}", headers=headers)
        assert (order_down.status_code, order_down.get_json()["error"]) == (503, "database_unavailable")
        assert int(order_down.headers["Retry-After"]) >= 1
    finally:
        server.resume()
    # No new connection could be had while it was down: the next notification connects afresh.
    back = notify()
    assert back.status_code == 200 and "SUCCESS" in back.get_data(as_text=True)
    assert client.get(f"/api/mp/v1/orders/{order['order_no']}", headers=headers).status_code == 200
    assert _inbox_rows(rt, out_trade_no) == 3
