"""Limits on texting binding codes, kept in Redis: per phone (a minimum interval and a daily count)
and per mini-program user (code requests a day). Checked before the provider is called.

Keys hold a keyed hash of the phone, never the number. A limit that is hit answers 429
`sms_rate_limited` with how long to wait; Redis being down refuses the text (fail closed).
"""
from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta, timezone

from redis.exceptions import RedisError

from app import metrics
from app.domain.errors import TooManyRequests, Unavailable
from app.runtime import Runtime

SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
RATE_LIMITED = "sms_rate_limited"

# KEYS: the interval key, the day's counter. ARGV: interval ms, daily maximum, ms left in the day.
# Answers {0, 0} when the send is allowed (and counts it), else {1 | 2, ms to wait}.
_TAKE = """
local interval_ms, daily_max, day_left_ms = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if interval_ms > 0 then
  local wait = redis.call('PTTL', KEYS[1])
  if wait > 0 then return {1, wait} end
end
if daily_max > 0 and tonumber(redis.call('GET', KEYS[2]) or '0') >= daily_max then
  return {2, day_left_ms}
end
if interval_ms > 0 then redis.call('SET', KEYS[1], '1', 'PX', interval_ms) end
if daily_max > 0 then
  redis.call('INCR', KEYS[2])
  redis.call('PEXPIRE', KEYS[2], day_left_ms + 3600000)
end
return {0, 0}
"""


def _subject(rt: Runtime, kind: str, value: str) -> str:
    key = hmac.new(rt.settings.SECRET_KEY.encode(), b"hpay-sms-limit", hashlib.sha256).digest()
    return hmac.new(key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()[:32]


def _take(rt: Runtime, kind: str, value: str, interval_s: int, daily_max: int, what: str) -> None:
    if interval_s <= 0 and daily_max <= 0:
        return
    now = datetime.now(SHANGHAI)
    tomorrow = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), SHANGHAI)
    day_left_ms = int((tomorrow - now).total_seconds() * 1000) + 1
    prefix = f"{rt.settings.QUEUE_PREFIX}:sms-limit:{kind}:{_subject(rt, kind, value)}"
    try:
        verdict, wait_ms = rt.redis.eval(_TAKE, 2, f"{prefix}:interval", f"{prefix}:day:{now:%Y%m%d}",
                                         interval_s * 1000, daily_max, day_left_ms)
    except RedisError:
        raise Unavailable("text messages cannot be sent right now; try again in a moment",
                          "sms_unavailable") from None
    if verdict:
        metrics.RATE_LIMITED.labels(f"sms_{kind}_{'interval' if verdict == 1 else 'daily'}").inc()
        refuse(-(-int(wait_ms) // 1000), what if verdict == 1 else f"{what} today")


def refuse(retry_after_s: int, what: str) -> None:
    """TooManyRequests `sms_rate_limited`, telling how many seconds to wait (`retry_after_s`)."""
    retry_after_s = max(1, retry_after_s)
    raise TooManyRequests(f"too many codes requested for {what}; try again in {retry_after_s} seconds",
                          RATE_LIMITED, details={"retry_after_s": retry_after_s}, retry_after_s=retry_after_s)


def take_phone(rt: Runtime, phone: str) -> None:
    """Count one text to `phone`, or refuse it: one per HPAY_SMS_PHONE_INTERVAL_S, HPAY_SMS_PHONE_DAILY_MAX a day."""
    _take(rt, "phone", phone, rt.settings.SMS_PHONE_INTERVAL_S, rt.settings.SMS_PHONE_DAILY_MAX, "this phone")


def take_user(rt: Runtime, user_id: int) -> None:
    """Count one code request of a mini-program user, or refuse it (HPAY_SMS_USER_DAILY_MAX a day)."""
    _take(rt, "user", str(user_id), 0, rt.settings.SMS_USER_DAILY_MAX, "this account")
