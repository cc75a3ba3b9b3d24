"""WeChat mini-program subscribe messages (`subscribeMessage.send`) through wechatpy's WeChatClient.

The access token is wechatpy's: fetched from `<login_base_url>cgi-bin/token`, kept in Redis through
wechatpy's RedisStorage so that every web and worker process uses the one token (WeChat keeps one token
per app valid: a process fetching its own would supersede the others'), and refreshed by wechatpy itself
when WeChat answers 40001 / 40014 / 42001. Two things are added to wechatpy's client:
- the token URL follows the app's base URL (wechatpy hard-codes api.weixin.qq.com) and is fetched with the
  channel timeout (wechatpy fetches without one);
- a fetch happens under a Redis lock, and not at all when another process stored a new token meanwhile, so
  many processes meeting an expired token at once fetch one new token, not one each.
"""
from __future__ import annotations

import logging

import requests
from redis import Redis
from redis.exceptions import LockError, RedisError
from wechatpy import WeChatClient
from wechatpy.exceptions import APILimitedException, WeChatClientException
from wechatpy.session.redisstorage import RedisStorage

from app.domain.secrets import APP_SECRET_MIN_LENGTH, WeakSecret, require_secret

from .base import MerchantConfig
from .messaging import MessageRefused, MessageSender, MessageSent, MessengerUnavailable

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 10.0
# Tokens live 7200 s at WeChat; ours is dropped this much earlier, so a send rarely meets an expired one.
TOKEN_EARLY_S = 300
# A send that meets more refused tokens than this in a row gives up for now (and is retried later).
MAX_REFRESHES = 2
NO_SUBSCRIPTION = 43101
# WeChat busy or rate limiting us: try again later.
_RETRYABLE = {-1, 45009, 45011}
# Refusals of this token: wechatpy fetches a new one and sends again.
_TOKEN_REFUSED = {40001, 40014, 42001}


class _SharedTokenClient(WeChatClient):
    def __init__(self, config: MerchantConfig, secret: str, storage: RedisStorage, redis: Redis,
                 lock_prefix: str, timeout_s: float) -> None:
        super().__init__(config.app_id, secret, session=storage, timeout=timeout_s)
        base = config.login_base_url or ""
        self.API_BASE_URL = f"{base}cgi-bin/"
        self.wxa.API_BASE_URL = base
        self._token_url = f"{base}cgi-bin/token"
        self._redis = redis
        self._lock_name = f"{lock_prefix}:{config.app_id}:token-lock"
        self._used: str | None = None
        self._refreshes = 0

    @property
    def access_token(self) -> str:
        token = self.session.get(self.access_token_key)
        if not token:
            self.fetch_access_token()
            token = self.session.get(self.access_token_key)
        self._used = token
        return token

    def fetch_access_token(self) -> dict:
        """A new token, unless another process stored one after the token this client last used."""
        self._refreshes += 1
        if self._refreshes > MAX_REFRESHES:
            raise MessengerUnavailable(f"WeChat refused {MAX_REFRESHES} fresh access tokens for {self.appid} in a row")
        wait_s = (self.timeout or DEFAULT_TIMEOUT_S) + 5
        try:
            with self._redis.lock(self._lock_name, timeout=wait_s, blocking_timeout=wait_s):
                cached = self.session.get(self.access_token_key)
                if cached and cached != self._used:
                    self._used = cached
                    return {"access_token": cached}
                return self._fetch()
        except LockError as exc:
            raise MessengerUnavailable(f"the access token of {self.appid} is being fetched elsewhere: {exc}") from exc

    def _fetch(self) -> dict:
        res = self._http.get(self._token_url, params={"grant_type": "client_credential", "appid": self.appid,
                                                      "secret": self.secret}, timeout=self.timeout)
        if res.status_code >= 400:
            raise MessengerUnavailable(f"WeChat's token endpoint answered HTTP {res.status_code}")
        try:
            answer = res.json()
        except ValueError as exc:
            raise MessengerUnavailable("WeChat's token endpoint answered something that is not JSON") from exc
        if not isinstance(answer, dict) or not answer.get("access_token"):
            # 40013 invalid appid, 40125 invalid secret: the app's configuration, fixed by a person; retried.
            code = answer.get("errcode") if isinstance(answer, dict) else None
            raise MessengerUnavailable(f"WeChat gave no access token for {self.appid}: errcode {code}")
        expires_in = int(answer.get("expires_in") or 7200)
        self.session.set(self.access_token_key, answer["access_token"], max(60, expires_in - TOKEN_EARLY_S))
        self._used = answer["access_token"]
        log.info("fetched a new WeChat access token for %s", self.appid)
        return answer


class WeChatMessenger(MessageSender):
    def __init__(self, config: MerchantConfig, redis: Redis, token_prefix: str,
                 timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        if config.channel != "wechat":
            raise ValueError(f"not a WeChat app: {config.channel}")
        self.config = config
        self.redis = redis
        self.token_prefix = token_prefix
        self.timeout_s = timeout_s

    def _client(self) -> _SharedTokenClient:
        try:
            secret = require_secret(f"WeChat app {self.config.app_id}: the app secret", self.config.app_secret,
                                    APP_SECRET_MIN_LENGTH)
        except WeakSecret as exc:
            raise MessengerUnavailable(exc.message) from None
        if not self.config.login_base_url:
            raise MessengerUnavailable(f"WeChat app {self.config.app_id} has no login_base_url")
        return _SharedTokenClient(self.config, secret, RedisStorage(self.redis, prefix=self.token_prefix),
                                  self.redis, self.token_prefix, self.timeout_s)

    def send(self, to: str, template_id: str, page: str | None, data: dict[str, dict[str, str]]) -> MessageSent:
        client = self._client()
        try:
            answer = client.wxa.send_subscribe_message(to, template_id, data, page=page or None)
        except APILimitedException as exc:
            raise MessengerUnavailable(f"WeChat rate limited subscribeMessage.send: {exc.errmsg}") from exc
        except WeChatClientException as exc:
            raise _translate(exc) from exc
        except requests.RequestException as exc:
            raise MessengerUnavailable(f"WeChat unreachable: {exc}") from exc
        except RedisError as exc:
            raise MessengerUnavailable(f"the shared access token could not be read: {exc}") from exc
        if not isinstance(answer, dict):
            raise MessengerUnavailable("subscribeMessage.send answered something that is not JSON")
        msgid = answer.get("msgid")
        return MessageSent(str(msgid) if msgid is not None else None)


def _translate(exc: WeChatClientException) -> Exception:
    if exc.errcode is None:
        status = exc.response.status_code if exc.response is not None else None
        return MessengerUnavailable(f"WeChat answered HTTP {status}")
    code = int(exc.errcode)
    if code in _RETRYABLE or code in _TOKEN_REFUSED:
        return MessengerUnavailable(f"WeChat {code}: {exc.errmsg}")
    return MessageRefused(str(code), str(exc.errmsg or ""), no_subscription=code == NO_SUBSCRIPTION)
