"""What a process needs to run use cases: settings, database, Redis and the job queues.

The web app and every rq worker build one Runtime from the same settings; the
services take it as their first argument, so they run the same in both.
"""
from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from redis import Redis
from rq import Queue

from app.db.encrypted import install_keyring, load_keyring
from app.db.session import Database
from config.settings import Settings, looks_like_sandbox

if TYPE_CHECKING:
    from app.channels.sms import SmsGateway

QUEUE_NAMES = ("notifications", "his", "channel", "default")


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Database(settings.DATABASE_URL, echo=settings.SQL_ECHO)
        # Stored secrets are read and written under this process's data keys (app.db.encrypted).
        self.keyring = load_keyring(settings.DATA_KEYS, settings.ENV)
        install_keyring(self.db.engine, self.keyring)

    @cached_property
    def redis(self) -> Redis:
        return Redis.from_url(self.settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=2,
                              health_check_interval=30)

    def queue_name(self, name: str) -> str:
        return f"{self.settings.QUEUE_PREFIX}-{name}"

    def queue(self, name: str) -> Queue:
        if name not in QUEUE_NAMES:
            raise ValueError(f"unknown queue {name!r}")
        return Queue(self.queue_name(name), connection=self.redis)

    def enqueue(self, queue: str, func_path: str, *args, **options):
        """Enqueue a worker job by dotted path, so services never import the workers package."""
        return self.queue(queue).enqueue(func_path, *args, **options)

    def sms_gateway(self) -> SmsGateway:
        """The SMS provider's client. A new one each time: it holds no connection, and texts are rare."""
        # Imported here: the channels package loads the payment SDKs, which most users of Runtime never need.
        from app.channels.sms import HttpSmsGateway, SmsNotConfigured

        base_url, app_key, secret = self.settings.sms_provider()
        if self.settings.ENV == "production" and looks_like_sandbox(base_url):
            raise SmsNotConfigured("the SMS provider URL points at a sandbox; refused in production")
        return HttpSmsGateway(base_url, app_key, secret, self.settings.SMS_TEMPLATE_CODE,
                              self.settings.SMS_SIGN_NAME, timeout=self.settings.SMS_TIMEOUT_S)

    def close(self) -> None:
        self.db.dispose()
        if "redis" in self.__dict__:
            self.redis.close()
