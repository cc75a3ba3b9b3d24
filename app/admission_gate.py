"""The booking admission gate: the remaining places of open slots (and of their items' channel inventory)
mirrored in Redis, taken with one atomic script, so a crowd's sold-out answers need no database work.

PostgreSQL's conditional update stays the truth; the gate only decides who may try it. Every key carries the
generation of the build that wrote it, and the marker key names the current one: after a Redis restart (or
FLUSHALL) the marker is gone, the gate answers `unbuilt`, the callers use the database path and one of them
rebuilds (app.services.booking.gate). A key of another generation, or none, answers `unknown`: the caller uses
the database and then loads the slot. Places given back after their order's transaction commits come back
here (`note_returned` in the transaction, applied by the after-commit hook), never above the slot's capacity.
A process gives a sold-out answer again from memory for HPAY_BOOKING_GATE_SOLD_OUT_MEMO_S (`SoldOutMemo`).
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy.orm import Session, sessionmaker

from app.after_commit import defer, run_after_commit

log = logging.getLogger("hpay.gate")

ADMITTED, SLOT_FULL, INVENTORY_FULL, UNKNOWN, NOT_OPEN, UNBUILT, DOWN = (
    "admitted", "slot", "inventory", "unknown", "not_open", "unbuilt", "down")

# KEYS: marker, slot, inventory. ARGV: clinic id, item id, now (epoch seconds).
_TAKE = """
local gen = redis.call('GET', KEYS[1])
if not gen then return {'unbuilt', ''} end
local s = redis.call('HMGET', KEYS[2], 'gen', 'left', 'clinic', 'item', 'rel', 'starts')
if s[1] ~= gen or s[3] ~= ARGV[1] or s[4] ~= ARGV[2] then return {'unknown', gen} end
local now = tonumber(ARGV[3])
if now < tonumber(s[5]) or now >= tonumber(s[6]) then return {'not_open', gen} end
local i = redis.call('HMGET', KEYS[3], 'gen', 'left')
if i[1] ~= gen then return {'unknown', gen} end
if tonumber(s[2]) <= 0 then return {'slot', gen} end
if tonumber(i[2]) <= 0 then return {'inventory', gen} end
redis.call('HINCRBY', KEYS[2], 'left', -1)
redis.call('HINCRBY', KEYS[3], 'left', -1)
return {'admitted', gen}
"""

# KEYS: marker, slot, inventory. ARGV: generation ('' = whatever is current). One place back to each key of
# that generation, never above its capacity.
_GIVE_BACK = """
local gen = redis.call('GET', KEYS[1])
if not gen or (ARGV[1] ~= '' and ARGV[1] ~= gen) then return 0 end
for n = 2, 3 do
  local h = redis.call('HMGET', KEYS[n], 'gen', 'left', 'cap')
  if h[1] == gen and tonumber(h[2]) < tonumber(h[3]) then redis.call('HINCRBY', KEYS[n], 'left', 1) end
end
return 1
"""

# KEYS: marker, key. ARGV: generation. The database said this key's places are gone.
_DRAIN = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[2], 'gen') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[2], 'left', 0)
return 1
"""

# KEYS: marker, slot, inventory. ARGV: generation, expire-at (epoch s), then the slot's fields: left, cap,
# clinic, item, rel, starts, then the inventory's: left, cap. Writes a key only when it is not of this
# generation yet (a concurrent loader, or places taken since, win).
_LOAD = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[2], 'gen') ~= ARGV[1] then
  redis.call('HSET', KEYS[2], 'gen', ARGV[1], 'left', ARGV[3], 'cap', ARGV[4], 'clinic', ARGV[5], 'item', ARGV[6],
             'rel', ARGV[7], 'starts', ARGV[8])
  redis.call('EXPIREAT', KEYS[2], ARGV[2])
end
if redis.call('HGET', KEYS[3], 'gen') ~= ARGV[1] then
  redis.call('HSET', KEYS[3], 'gen', ARGV[1], 'left', ARGV[9], 'cap', ARGV[10])
end
return 1
"""

_PENDING = "hpay.gate.pending"


@dataclass(frozen=True)
class SlotPlaces:
    """What the gate mirrors of one open slot and its item's inventory on one channel (epoch seconds)."""

    slot_id: int
    clinic_id: int
    item_id: int
    channel: str
    slot_left: int
    slot_capacity: int
    release_at: int
    starts_at: int
    inventory_left: int
    inventory_quantity: int


@dataclass(frozen=True)
class Admission:
    answer: str
    generation: str = ""

    @property
    def admitted(self) -> bool:
        return self.answer == ADMITTED


class SoldOutMemo:
    """This process's recent sold-out answers, given again without asking Redis for `ttl_s` (0: never).

    In a crowd most requests name a slot that sold out a moment ago; answering them from memory saves each a
    Redis round trip. The cost: a place another process gives back (an expiry, a cancellation, a staff change)
    is offered here up to `ttl_s` late. Changes made through this process clear the memo at once, and an answer
    read from Redis before such a change is not remembered after it (the version)."""

    MAX_ENTRIES = 10_000  # more distinct sold-out requests than this within ttl_s: start again

    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s, self._clock = ttl_s, clock
        self._answers: dict[tuple, tuple[Admission, float]] = {}
        self._last_expiry = 0.0
        self.version = 0

    def holds_any(self) -> bool:
        """Whether any answer is still remembered (a request can skip looking when none is)."""
        return self._last_expiry > self._clock()

    def get(self, request: tuple) -> Admission | None:
        if self.ttl_s <= 0:
            return None
        found = self._answers.get(request)
        return found[0] if found is not None and found[1] > self._clock() else None

    def remember(self, request: tuple, admission: Admission, version: int) -> None:
        if self.ttl_s <= 0 or admission.answer not in (SLOT_FULL, INVENTORY_FULL) or version != self.version:
            return
        if len(self._answers) >= self.MAX_ENTRIES:
            self._answers.clear()
        self._last_expiry = self._clock() + self.ttl_s
        self._answers[request] = (admission, self._last_expiry)

    def clear(self) -> None:
        self.version += 1
        self._answers.clear()
        self._last_expiry = 0.0


class AdmissionGate:
    """The Redis side of the gate. A Redis error answers DOWN (the caller uses the database) and keeps the
    gate out of the way for `retry_s`, so an outage costs each request nothing but the database path."""

    def __init__(self, redis: Callable[[], Redis], prefix: str, retry_s: float,
                 sold_out_memo: SoldOutMemo | None = None) -> None:
        self._redis = redis
        self.prefix = f"{prefix}:gate"
        self.retry_s = retry_s
        self.sold_out_memo = sold_out_memo or SoldOutMemo(0)
        self._down_until = 0.0
        # A give-back or a drop lost to a Redis error leaves the mirror short of places: once Redis answers
        # again this process removes the marker, and the gate is rebuilt from the database.
        self._lost_changes = False
        self._scripts: dict[str, object] = {}
        self._lock = threading.Lock()

    # --- keys ------------------------------------------------------------------------------------------
    @property
    def marker(self) -> str:
        return f"{self.prefix}:built"

    @property
    def lock_key(self) -> str:
        return f"{self.prefix}:rebuilding"

    def slot_key(self, slot_id: int) -> str:
        return f"{self.prefix}:slot:{slot_id}"

    def inventory_key(self, item_id: int, channel: str) -> str:
        return f"{self.prefix}:inv:{item_id}:{channel}"

    # --- plumbing --------------------------------------------------------------------------------------
    def _script(self, name: str, source: str):
        script = self._scripts.get(name)
        if script is None:
            with self._lock:
                script = self._scripts.setdefault(name, self._redis().register_script(source))
        return script

    def _call(self, name: str, source: str, keys: list[str], args: list, fallback, changes: bool = False):
        if time.monotonic() < self._down_until:
            self._lost_changes |= changes
            return fallback
        try:
            if self._lost_changes:
                self._redis().delete(self.marker)
                self._lost_changes = False
                log.warning("booking gate marked for a rebuild: changes were lost while Redis was unavailable")
            return self._script(name, source)(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            self._down_until = time.monotonic() + self.retry_s
            self._lost_changes |= changes
            log.warning("booking gate unavailable, the database decides alone for %ss: %s", self.retry_s, exc)
            return fallback

    # --- what the booking path calls -------------------------------------------------------------------
    def remembered(self, clinic_id: int, item_id: int, slot_id: int, channel: str) -> Admission | None:
        """The sold-out answer `take` would give now from this process's memory alone, or None."""
        return self.sold_out_memo.get((clinic_id, item_id, slot_id, channel))

    def take(self, clinic_id: int, item_id: int, slot_id: int, channel: str) -> Admission:
        request = (clinic_id, item_id, slot_id, channel)
        remembered = self.sold_out_memo.get(request)
        if remembered is not None:
            return remembered
        version = self.sold_out_memo.version
        answer = self._call("take", _TAKE, [self.marker, self.slot_key(slot_id), self.inventory_key(item_id, channel)],
                            [clinic_id, item_id, int(time.time())], None)
        if answer is None:
            return Admission(DOWN)
        admission = Admission(_text(answer[0]), _text(answer[1]))
        self.sold_out_memo.remember(request, admission, version)
        return admission

    def give_back(self, slot_id: int, item_id: int, channel: str, generation: str = "") -> None:
        self._call("give_back", _GIVE_BACK,
                   [self.marker, self.slot_key(slot_id), self.inventory_key(item_id, channel)], [generation], 0,
                   changes=True)
        # After the change, never before it: an answer read before it is then either forgotten here or refused
        # by its version, and one read after it already sees the place.
        self.sold_out_memo.clear()

    def drain(self, generation: str, key: str) -> None:
        self._call("drain", _DRAIN, [self.marker, key], [generation], 0)

    def load(self, generation: str, places: SlotPlaces) -> None:
        keys = [self.marker, self.slot_key(places.slot_id), self.inventory_key(places.item_id, places.channel)]
        self._call("load", _LOAD, keys, _load_args(generation, places), 0)

    def forget(self, keys: list[str]) -> None:
        """Drop keys whose database rows changed outside the gate (capacity, closing, stock): reloaded on use."""
        if not keys:
            return
        try:
            self._drop(keys)
        finally:
            self.sold_out_memo.clear()  # after the change, as in give_back

    def _drop(self, keys: list[str]) -> None:
        if time.monotonic() < self._down_until:
            self._lost_changes = True
            return
        try:
            self._redis().delete(*keys)
        except (RedisError, OSError) as exc:
            self._down_until = time.monotonic() + self.retry_s
            self._lost_changes = True
            log.warning("booking gate keys %s not dropped: %s", keys, exc)

    # --- rebuilding ------------------------------------------------------------------------------------
    def generation(self) -> str | None:
        """The current generation, None when the gate is unbuilt (raises on a Redis error)."""
        value = self._redis().get(self.marker)
        return _text(value) if value is not None else None

    def try_lock(self, owner: str, ttl_s: int) -> bool:
        return bool(self._redis().set(self.lock_key, owner, nx=True, ex=ttl_s))

    def unlock(self, owner: str) -> None:
        if self._redis().get(self.lock_key) == owner.encode():
            self._redis().delete(self.lock_key)

    def publish(self, generation: str, everything: list[SlotPlaces]) -> None:
        """Write every open slot of this generation, then the marker naming it (requests see all or nothing)."""
        try:
            self._write_generation(generation, everything)
        finally:
            self.sold_out_memo.clear()  # after the change, as in give_back

    def _write_generation(self, generation: str, everything: list[SlotPlaces]) -> None:
        redis = self._redis()
        with redis.pipeline(transaction=False) as pipe:
            for places in everything:
                slot_key = self.slot_key(places.slot_id)
                pipe.hset(slot_key, mapping=dict(gen=generation, left=places.slot_left, cap=places.slot_capacity,
                                                 clinic=places.clinic_id, item=places.item_id, rel=places.release_at,
                                                 starts=places.starts_at))
                pipe.expireat(slot_key, places.starts_at + 86400)
                pipe.hset(self.inventory_key(places.item_id, places.channel),
                          mapping=dict(gen=generation, left=places.inventory_left, cap=places.inventory_quantity))
            pipe.set(self.marker, generation)
            pipe.execute()


def _load_args(generation: str, p: SlotPlaces) -> list:
    return [generation, p.starts_at + 86400, p.slot_left, p.slot_capacity, p.clinic_id, p.item_id, p.release_at,
            p.starts_at, p.inventory_left, p.inventory_quantity]


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# --- changes made in a transaction reach the gate once it commits -----------------------------------------

def note_returned(session: Session, slot_id: int, item_id: int, channel: str) -> None:
    """A place of this slot and inventory was given back in this transaction: the gate gets it on commit."""
    _pending(session, ("return", slot_id, item_id, channel))


def note_slot_changed(session: Session, slot_id: int) -> None:
    """The slot's capacity, closing or places changed outside the gate: its key is dropped on commit."""
    _pending(session, ("slot", slot_id))


def note_inventory_changed(session: Session, item_id: int, channel: str) -> None:
    _pending(session, ("inventory", item_id, channel))


def _pending(session: Session, change: tuple) -> None:
    defer(session, _PENDING, change)


def apply_after_commit(factory: sessionmaker, gate: Callable[[], AdmissionGate]) -> None:
    """Apply each session's noted changes once its outermost transaction commits; forget those of a
    transaction or savepoint that rolls back."""

    def apply(changes: list[tuple]) -> None:
        target, stale = gate(), []
        for change in changes:
            if change[0] == "return":
                target.give_back(*change[1:])
            elif change[0] == "slot":
                stale.append(target.slot_key(change[1]))
            else:
                stale.append(target.inventory_key(*change[1:]))
        target.forget(stale)

    run_after_commit(factory, _PENDING, apply)
