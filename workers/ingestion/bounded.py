"""Cached profiles and fingerprints under bounded staleness, signed so Redis content is not trusted.

Why: invalidating a user's entries on every committed batch made every page read after a
write a miss (~10 % hits under `ingest simulate`). An app's pages want a recent profile, not
one that includes the last click. So an entry is served while it is at most
``max_age_seconds`` old (its TTL) and at most ``max_new_events`` of the user's events were
committed after the read it holds; a ``fresh=True`` read skips the cache.

How the event bound holds across processes (RedisCache): the drain, after COMMIT, adds each
user's committed events to the counter ``shadowwatch:committed:<user>`` if it exists. A read
that misses gets that counter's value in the same round trip (creating it at 0), *before* it
reads PostgreSQL, and the entry it stores carries it (``seen``). A commit the read did not see
increments the counter after that value was taken, so ``counter - seen`` never under-counts.
The Lua GET decides hit or miss (and counts it) with that rule; a counter below ``seen`` (it
was reset) is a miss. A drain that dies between its COMMIT and the counter update leaves
those events uncounted: the age bound still holds.

What is never trusted: an entry is ``seen|mac|json`` where the mac is an HMAC (the process's
ingest key) over the cache key, ``seen`` and the JSON. An entry written by anything else, or
copied to another user's key, fails the check: it is deleted, recounted as a miss and read
again from PostgreSQL; a profile must also name the user asked for. Whoever can write Redis can
at most make entries stale early or (by lowering a counter) serve a signed entry until its TTL.

MemoryCache (one process): the same envelope; the counter is this process's tracked events of
the user (``note_tracked``), so other processes' events are bounded by the age only. Any other
cache object (``get``/``set``/``delete``): the age bound only.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from . import cache as cache_mod

COUNTER_MARGIN_SECONDS = 60.0  # a counter outlives every entry that refers to it by this much
CHUNK = 1000


committed_key = cache_mod.committed_key


@dataclass(frozen=True)
class Bound:
    max_age_seconds: float = 60.0
    max_new_events: int = 20

    @property
    def counter_ttl_ms(self) -> int:
        return int((self.max_age_seconds + COUNTER_MARGIN_SECONDS) * 1000)


# KEYS[1] entry, KEYS[2] counter, KEYS[3] stats hash; ARGV[1] kind, ARGV[2] max new events, ARGV[3] counter
# ttl ms. Returns {entry or false, counter}; an absent counter is created at 0 (from then on the drain
# advances it). The hit is counted only for an entry within the bound.
GET_LUA = """
local v = redis.call('GET', KEYS[1])
local c = redis.call('GET', KEYS[2])
if c then c = tonumber(c) else
  redis.call('SET', KEYS[2], '0', 'PX', ARGV[3])
  c = 0
end
local hit = false
if v then
  local seen = tonumber(string.match(v, '^(%d+)|'))
  hit = seen ~= nil and c >= seen and c - seen <= tonumber(ARGV[2])
end
local word = hit and 'hits' or 'misses'
redis.call('HINCRBY', KEYS[3], word, 1)
redis.call('HINCRBY', KEYS[3], word .. ':' .. ARGV[1], 1)
if hit then return {v, c} end
return {false, c}
"""

# KEYS[1..n-1] entries, KEYS[n] counter; ARGV[1..n-1] values, ARGV[n] entry ttl ms, ARGV[n+1] counter ttl ms.
# The counter is made to outlive the entries (and re-created at 0 if it expired meanwhile: a counter
# below an entry's seen makes the entry a miss, never a stale hit).
SET_LUA = """
local n = #KEYS
for i = 1, n - 1 do
  redis.call('SET', KEYS[i], ARGV[i], 'PX', ARGV[n])
end
redis.call('SET', KEYS[n], '0', 'NX')
if redis.call('PTTL', KEYS[n]) < tonumber(ARGV[n + 1]) then
  redis.call('PEXPIRE', KEYS[n], ARGV[n + 1])
end
return 1
"""

# The drain, after COMMIT: KEYS counters, ARGV[i] the user's committed events. Only counters that
# exist (someone read the user lately) move: no key is created for a user nobody reads, nor one
# re-created for a user an erasure just removed.
COMMITTED_LUA = """
for i, k in ipairs(KEYS) do
  if redis.call('EXISTS', k) == 1 then redis.call('INCRBY', k, ARGV[i]) end
end
return #KEYS
"""


def _mac(secret: bytes, key: str, seen: int, body: str) -> str:
    return hmac.new(secret, f"{key}|{seen}|{body}".encode(), hashlib.sha256).hexdigest()


def seal(secret: bytes, key: str, seen: int, value: Any) -> str:
    import json

    body = json.dumps(value, separators=(",", ":"))
    return f"{seen}|{_mac(secret, key, seen, body)}|{body}"


def unseal(secret: bytes, key: str, raw: bytes | str) -> tuple[int, Any] | None:
    """(seen, value) of a genuine entry for this key, else None."""
    import json

    text = raw.decode() if isinstance(raw, bytes) else raw
    parts = text.split("|", 2)
    if len(parts) != 3 or not parts[0].isdigit():
        return None
    seen, mac, body = int(parts[0]), parts[1], parts[2]
    if not hmac.compare_digest(mac, _mac(secret, key, seen, body)):
        return None
    return seen, json.loads(body)


class Entries:
    """Bounded, signed entries on one process's cache (see the module docstring)."""

    def __init__(self, cache: Any, secret: bytes, bound: Bound, redis_client: Any = None):
        self.cache, self.bound, self._redis = cache, bound, redis_client
        self._secret = hmac.new(secret, b"shadowwatch cache entries v1", hashlib.sha256).digest()
        self._local: dict[str, int] = {}  # MemoryCache: this process's tracked events per user
        if isinstance(cache, cache_mod.RedisCache):
            self._get = redis_client.register_script(GET_LUA)
            self._set = redis_client.register_script(SET_LUA)

    @property
    def shared(self) -> bool:
        return isinstance(self.cache, cache_mod.RedisCache)

    def get(self, key: str, user_id: str, check=None) -> tuple[Any | None, int]:
        """(value or None, counter to store with a fresh read). ``check(value)`` must accept it."""
        if self.shared:
            raw, counter = self._get(keys=[key, committed_key(user_id), cache_mod.STATS_KEY],
                                     args=[cache_mod.kind_of(key), self.bound.max_new_events,
                                           self.bound.counter_ttl_ms])
            counter = int(counter)
            got = unseal(self._secret, key, raw) if raw is not None else None
            if raw is not None and (got is None or (check is not None and not check(got[1]))):
                self._refuse(key)
                got = None
            self.cache.local.add(key, got is not None)
            return (got[1] if got else None), counter
        counter = self._local.get(str(user_id), 0)
        raw = self.cache.get(key)
        got = unseal(self._secret, key, raw) if isinstance(raw, str) else None
        if got is not None and (check is None or check(got[1])) and \
                0 <= counter - got[0] <= self.bound.max_new_events:
            return got[1], counter
        if raw is not None:
            self._recount(key)
        return None, counter

    def counter(self, user_id: str) -> int:
        """The counter a read starting now stores (taken before the read: see the module docstring)."""
        if self.shared:
            pipe = self._redis.pipeline(transaction=False)
            pipe.set(committed_key(user_id), 0, nx=True, px=self.bound.counter_ttl_ms)
            pipe.get(committed_key(user_id))
            return int(pipe.execute()[1] or 0)
        return self._local.get(str(user_id), 0)

    def put(self, user_id: str, seen: int, values: Mapping[str, Any]) -> None:
        sealed = {k: seal(self._secret, k, seen, v) for k, v in values.items()}
        if self.shared:
            self._set(keys=[*sealed, committed_key(user_id)],
                      args=[*sealed.values(), int(self.bound.max_age_seconds * 1000), self.bound.counter_ttl_ms])
            return
        for k, v in sealed.items():
            self.cache.set(k, v, self.bound.max_age_seconds)

    def note_tracked(self, user_ids: Iterable[str]) -> None:
        """This process tracked events of these users (MemoryCache's counter; Redis counts commits)."""
        if isinstance(self.cache, cache_mod.MemoryCache):
            for u in user_ids:
                self._local[str(u)] = self._local.get(str(u), 0) + 1

    def _refuse(self, key: str) -> None:
        """A forged or misplaced entry: out of the cache, and its counted hit becomes a miss."""
        kind = cache_mod.kind_of(key)
        pipe = self._redis.pipeline(transaction=False)
        pipe.delete(key)
        for word, n in (("hits", -1), ("misses", 1)):
            pipe.hincrby(cache_mod.STATS_KEY, word, n)
            pipe.hincrby(cache_mod.STATS_KEY, f"{word}:{kind}", n)
        pipe.execute()

    def _recount(self, key: str) -> None:
        """A local entry outside the bound (or not ours) was counted as a hit by the cache: a miss."""
        self.cache.delete(key)
        fix = getattr(self.cache, "recount_as_miss", None)
        if fix is not None:
            fix(key)


def note_committed(script: Any, counts: Mapping[str, int]) -> None:
    """After COMMIT: add each user's committed events to their counter (one round trip per chunk);
    ``script`` is ``redis_client.register_script(COMMITTED_LUA)``."""
    items = list(counts.items())
    for i in range(0, len(items), CHUNK):
        chunk = items[i:i + CHUNK]
        script(keys=[committed_key(u) for u, _ in chunk], args=[n for _, n in chunk])
