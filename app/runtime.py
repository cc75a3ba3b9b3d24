"""What a process needs to run use cases: settings, database, Redis, the job queues, and the adapters of the
systems outside (payment channels and their message senders, the clinics' HIS, the SMS provider).

The web app and every rq worker build one Runtime from the same settings; the services take it as their
first argument, so they run the same in both. The adapters come from factories given to the Runtime: by
default the production classes (the real SDKs and HTTP clients); the service tests give it in-memory fakes
(app.channels.fake, app.his.fake). This is the one place where that choice is made.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from functools import cached_property
from pathlib import Path

from redis import Redis
from rq import Queue

from app import live_events
from app.admission_gate import AdmissionGate, SoldOutMemo, apply_after_commit
from app.channels import channel_for, messenger_for
from app.channels.base import MerchantConfig, PaymentChannel
from app.channels.messaging import MessageSender
from app.channels.sms import HttpSmsGateway, SmsGateway, SmsNotConfigured
from app.db.encrypted import install_keyring, load_keyring
from app.db.session import Database
from app.his.base import HisClient, HisConfig
from app.his.http_client import HttpHisClient
from app.storage.base import AttachmentStore
from app.storage.local import LocalStore
from app.storage.s3 import S3Store
from config.settings import VAR_DIR, Settings, looks_like_sandbox

QUEUE_NAMES = ("notifications", "his", "channel", "default")

ChannelFactory = Callable[[MerchantConfig, Settings], PaymentChannel]
HisFactory = Callable[[HisConfig, Settings], HisClient]
SmsFactory = Callable[[Settings], SmsGateway]
MessengerFactory = Callable[[MerchantConfig, Settings, Redis], MessageSender]
StorageFactory = Callable[[Settings], AttachmentStore]


def production_channel(config: MerchantConfig, settings: Settings) -> PaymentChannel:
    return channel_for(config, timeout_s=settings.CHANNEL_TIMEOUT_S)


def production_his(config: HisConfig, settings: Settings) -> HisClient:
    return HttpHisClient(config.base_url, config.key_id, config.secret, timeout=settings.HIS_TIMEOUT_S)


def production_messenger(config: MerchantConfig, settings: Settings, redis: Redis) -> MessageSender:
    return messenger_for(config, redis, f"{settings.QUEUE_PREFIX}-wechat-token", timeout_s=settings.CHANNEL_TIMEOUT_S)


def production_sms(settings: Settings) -> SmsGateway:
    base_url, app_key, secret = settings.sms_provider()
    return HttpSmsGateway(base_url, app_key, secret, settings.SMS_TEMPLATE_CODE, settings.SMS_SIGN_NAME,
                          timeout=settings.SMS_TIMEOUT_S)


def production_storage(settings: Settings) -> AttachmentStore:
    """The S3-compatible bucket when one is configured, else a folder (HPAY_ATTACHMENTS_DIR, default
    HPAY_VAR_DIR/attachments)."""
    if settings.ATTACHMENTS_S3_BUCKET:
        return S3Store(settings.ATTACHMENTS_S3_BUCKET, endpoint_url=settings.ATTACHMENTS_S3_ENDPOINT,
                       region=settings.ATTACHMENTS_S3_REGION, access_key=settings.ATTACHMENTS_S3_ACCESS_KEY,
                       secret_key=settings.ATTACHMENTS_S3_SECRET_KEY, prefix=settings.ATTACHMENTS_S3_PREFIX)
    return LocalStore(Path(settings.ATTACHMENTS_DIR) if settings.ATTACHMENTS_DIR else VAR_DIR / "attachments")


class Runtime:
    def __init__(self, settings: Settings, *, channel_factory: ChannelFactory = production_channel,
                 his_factory: HisFactory = production_his, sms_factory: SmsFactory = production_sms,
                 messenger_factory: MessengerFactory = production_messenger,
                 storage_factory: StorageFactory = production_storage) -> None:
        self.settings = settings
        self.db = Database(settings.DATABASE_URL, echo=settings.SQL_ECHO)
        # Stored secrets are read and written under this process's data keys (app.db.encrypted).
        self.keyring = load_keyring(settings.DATA_KEYS, settings.ENV)
        install_keyring(self.db.engine, self.keyring)
        self._channel_factory = channel_factory
        self._his_factory = his_factory
        self._sms_factory = sms_factory
        self._messenger_factory = messenger_factory
        self._storage_factory = storage_factory
        # Events announced in a transaction reach staff's live streams once it commits (app.live_events).
        live_events.publish_after_commit(self.db.sessionmaker,
                                         live_events.Publisher(lambda: self.redis, self.settings.QUEUE_PREFIX))
        # Booking places given back in a transaction return to the admission gate once it commits.
        apply_after_commit(self.db.sessionmaker, lambda: self.booking_gate)
        self._his_clients: dict[tuple, HisClient] = {}
        self._his_lock = threading.Lock()

    @cached_property
    def redis(self) -> Redis:
        return Redis.from_url(self.settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=2,
                              health_check_interval=30)

    @cached_property
    def stream_redis(self) -> Redis:
        """A client for blocking stream reads (staff's live events): its socket waits longer than a read blocks."""
        return Redis.from_url(self.settings.REDIS_URL, socket_timeout=self.settings.LIVE_HEARTBEAT_S + 10,
                              socket_connect_timeout=2, health_check_interval=30)

    @cached_property
    def booking_gate(self) -> AdmissionGate:
        """The Redis mirror of open slots' places in front of the database (app.admission_gate)."""
        return AdmissionGate(lambda: self.redis, self.settings.QUEUE_PREFIX, self.settings.BOOKING_GATE_RETRY_S,
                             SoldOutMemo(self.settings.BOOKING_GATE_SOLD_OUT_MEMO_S))

    def queue_name(self, name: str) -> str:
        return f"{self.settings.QUEUE_PREFIX}-{name}"

    def queue(self, name: str) -> Queue:
        if name not in QUEUE_NAMES:
            raise ValueError(f"unknown queue {name!r}")
        return Queue(self.queue_name(name), connection=self.redis)

    def enqueue(self, queue: str, func_path: str, *args, **options):
        """Enqueue a worker job by dotted path, so services never import the workers package."""
        return self.queue(queue).enqueue(func_path, *args, **options)

    # --- the systems outside ---------------------------------------------------------------------------

    @property
    def in_production(self) -> bool:
        return self.settings.ENV == "production"

    def channel(self, config: MerchantConfig) -> PaymentChannel:
        """The adapter of one merchant account (a new one each time: it is cheap, and holds no connection)."""
        sandboxed = looks_like_sandbox(config.api_base_url) or looks_like_sandbox(config.login_base_url)
        if self.in_production and sandboxed:
            raise RuntimeError(f"merchant account {config.app_id} points at a sandbox; refused in production")
        return self._channel_factory(config, self.settings)

    def his(self, config: HisConfig) -> HisClient:
        """The client of a clinic's HIS, one per configuration and thread (it keeps a connection pool)."""
        if self.in_production and looks_like_sandbox(config.base_url):
            raise RuntimeError(f"clinic {config.clinic_code}'s HIS points at a sandbox; refused in production")
        key = (config, threading.get_ident())
        client = self._his_clients.get(key)
        if client is None:
            with self._his_lock:
                client = self._his_clients.setdefault(key, self._his_factory(config, self.settings))
        return client

    def messenger(self, config: MerchantConfig) -> MessageSender:
        """The sender of a channel app's template messages (a new one each time; WeChat's token is in Redis)."""
        sandboxed = looks_like_sandbox(config.api_base_url) or looks_like_sandbox(config.login_base_url)
        if self.in_production and sandboxed:
            raise RuntimeError(f"channel app {config.app_id} points at a sandbox; refused in production")
        return self._messenger_factory(config, self.settings, self.redis)

    def sms_gateway(self) -> SmsGateway:
        """The SMS provider's client. A new one each time: it holds no connection, and texts are rare."""
        base_url, _, _ = self.settings.sms_provider()
        if self.in_production and looks_like_sandbox(base_url):
            raise SmsNotConfigured("the SMS provider URL points at a sandbox; refused in production")
        return self._sms_factory(self.settings)

    @cached_property
    def _attachment_store(self) -> AttachmentStore:
        return self._storage_factory(self.settings)

    def attachment_store(self) -> AttachmentStore:
        """Where order attachments live (one per process: a boto3 client is thread-safe and pools connections)."""
        return self._attachment_store

    def close(self) -> None:
        self.db.dispose()
        for name in ("redis", "stream_redis"):
            if name in self.__dict__:
                self.__dict__[name].close()
