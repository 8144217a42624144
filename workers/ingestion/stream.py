"""The transport: one Redis Stream with a consumer group.

Producer side: a Lua script checks the shared licence counter and XADDs the events
in one round trip (atomic: an event over the limit is never half-accepted).
Consumer side (``drain``): XAUTOCLAIM entries a dead consumer left pending, else
XREADGROUP new ones; write the batch in one transaction; only after COMMIT
age the users' cached entries, XACK and XDEL. A crash anywhere before the XACK leaves the
entries pending, to be reclaimed and rewritten idempotently (ON CONFLICT).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import redis
from sqlalchemy import Engine

from workers.gc_pause import gc_paused

from . import batch, codec

log = logging.getLogger(__name__)

STREAM = "shadowwatch:events"
GROUP = "ingest"
USAGE_PREFIX = "shadowwatch:usage:"
LINGER_MS = 250

# KEYS[1] stream, KEYS[2] usage counter; ARGV[1] limit (0 = none), ARGV[2] counter ttl (0 = none),
# ARGV[3] events in this call, ARGV[4..] entries: an event's JSON object (field 'e') or a pack, a JSON
# array of events (field 'b', it starts with '['). Returns the counter after adding, or -1 (over the
# limit, nothing added).
ENQUEUE_LUA = """
local n = tonumber(ARGV[3])
local limit = tonumber(ARGV[1])
local used = redis.call('INCRBY', KEYS[2], n)
if limit > 0 and used > limit then
  redis.call('DECRBY', KEYS[2], n)
  return -1
end
if tonumber(ARGV[2]) > 0 and redis.call('TTL', KEYS[2]) < 0 then
  redis.call('EXPIRE', KEYS[2], tonumber(ARGV[2]))
end
for i = 4, #ARGV do
  if string.byte(ARGV[i], 1) == 91 then
    redis.call('XADD', KEYS[1], '*', 'b', ARGV[i])
  else
    redis.call('XADD', KEYS[1], '*', 'e', ARGV[i])
  end
end
return used
"""

# A pack: up to PACK_EVENTS events of one track_many() call in one stream entry, at most PACK_BYTES of
# JSON. Why: Redis's work is per entry far more than per byte (XADD, the XCLAIM that XREADGROUP writes
# to the AOF for each delivered entry, the pending-list entries, XACK, XDEL: ~13 us per entry,
# BENCHMARKS.md); a pack pays it once for up to 100 events. Each event in it is validated on its own.
PACK_EVENTS = 100
PACK_BYTES = 64 * 1024


def ensure_group(r: redis.Redis) -> None:
    """Create the consumer group from id 0, so entries added before it are not skipped."""
    try:
        r.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def encode(event: dict) -> bytes | str:
    """The stream entry of a validated event (workers/ingestion/codec.py: orjson, json fallback)."""
    return codec.dumps(event)


def pack(encoded: list[bytes | str]) -> list[bytes | str]:
    """Stream entries for encoded events, in order: consecutive events joined into packs (a JSON array)
    of at most PACK_EVENTS events and PACK_BYTES; an event that would be alone stays a plain entry."""
    out: list[bytes | str] = []
    run: list[bytes] = []
    size = 0

    def close() -> None:
        if len(run) == 1:
            out.append(run[0])
        elif run:
            out.append(b"[" + b",".join(run) + b"]")
        run.clear()

    for e in encoded:
        b = e if isinstance(e, bytes) else e.encode("utf-8", "surrogatepass")
        if run and (len(run) >= PACK_EVENTS or size + len(b) + 1 > PACK_BYTES - 2):
            close()
            size = 0
        run.append(b)
        size += len(b) + 1
    close()
    return out


def consumer_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def lag(r: redis.Redis) -> dict[str, int]:
    """Entries waiting in the stream and entries delivered but not yet acknowledged."""
    try:
        pending = r.xpending(STREAM, GROUP)["pending"]
    except redis.ResponseError:
        pending = 0
    return {"queued": int(r.xlen(STREAM)), "pending": int(pending)}


@dataclass
class DrainStats:
    batches: int = 0
    read: int = 0
    inserted: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    reclaimed: int = 0
    users: set[int] = field(default_factory=set)

    def as_dict(self) -> dict[str, Any]:
        return {"batches": self.batches, "read": self.read, "inserted": self.inserted,
                "duplicates": self.duplicates, "dead_lettered": self.dead_lettered, "reclaimed": self.reclaimed,
                "users": len(self.users)}


def _reclaim(r: redis.Redis, consumer: str, min_idle_ms: int, count: int) -> list:
    try:
        reply = r.xautoclaim(STREAM, GROUP, consumer, min_idle_time=min_idle_ms, start_id="0-0", count=count)
        entries = reply[1]  # Redis 7 adds a third element (deleted ids), 6.2 does not
    except redis.ResponseError as exc:
        if "NOGROUP" in str(exc):
            ensure_group(r)
            return []
        raise
    gone = [eid for eid, f in entries if f is None]  # deleted while pending (Redis 6.2 reports them as nil)
    if gone:
        r.xack(STREAM, GROUP, *gone)
    return [(eid, f) for eid, f in entries if f is not None]


def _own_pending(r: redis.Redis, consumer: str, count: int) -> list:
    reply = r.xreadgroup(GROUP, consumer, {STREAM: "0"}, count=count)
    entries = reply[0][1] if reply else []
    gone = [eid for eid, f in entries if not f]
    if gone:
        r.xack(STREAM, GROUP, *gone)
    return [(eid, f) for eid, f in entries if f]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def forget_idle_consumers(r: redis.Redis) -> int:
    """Delete consumers of crashed processes on this host that hold nothing pending.

    Only a consumer whose process is known dead is deleted: deleting a live one between its
    XREADGROUP and its XACK would drop its entries from the pending list (and from reclaim).
    """
    host, removed = socket.gethostname(), 0
    try:
        consumers = r.xinfo_consumers(STREAM, GROUP)
    except redis.ResponseError:
        return 0
    for c in consumers:
        name = c["name"].decode() if isinstance(c["name"], bytes) else c["name"]
        h, _, pid = name.rpartition(":")
        if h == host and pid.isdigit() and c["pending"] == 0 and not _pid_alive(int(pid)):
            removed += r.xgroup_delconsumer(STREAM, GROUP, name) == 0
    return removed


def committed_per_user(valid: list[dict], users) -> dict[str, int]:
    """Events per user of a committed batch (a duplicate counts too: the cache ages conservatively)."""
    counts: dict[str, int] = {}
    for e in valid:
        u = e["user_id"]
        if u in users:
            counts[u] = counts.get(u, 0) + 1
    return counts


def _read_count(batch_size: int, per_entry: float) -> int:
    """Entries to ask for: about batch_size events at the last read's events per entry (packs hold up to
    PACK_EVENTS); never more entries than batch_size. An over-read is written in several batches."""
    return max(1, min(batch_size, int(batch_size / per_entry)))


def drain(r: redis.Redis, engine: Engine, *, batch_size: int, half_life_seconds: float, max_metadata_bytes: int,
          hash_ip: Callable[[str], str], reclaim_idle_seconds: float, time_budget: float,
          consumer: str | None = None, on_committed: Callable[[dict[str, int]], None] | None = None,
          max_batches: int | None = None) -> DrainStats:
    """Drain the stream until it is empty, the time budget is spent, or max_batches are done."""
    consumer = consumer or consumer_name()
    ensure_group(r)
    stats = DrainStats()
    deadline = time.monotonic() + time_budget
    per_entry = 1.0  # events per entry of the last read
    while time.monotonic() < deadline and (max_batches is None or stats.batches < max_batches):
        count = _read_count(batch_size, per_entry)
        entries = _own_pending(r, consumer, count)  # ours, from an attempt that failed before XACK
        if not entries:
            entries = _reclaim(r, consumer, int(reclaim_idle_seconds * 1000), count)
        stats.reclaimed += len(entries)
        if not entries:
            reply = r.xreadgroup(GROUP, consumer, {STREAM: ">"}, count=count)
            entries = reply[0][1] if reply else []
        left_ms = int((deadline - time.monotonic()) * 1000)
        if not entries and stats.batches and left_ms > 0:
            # Traffic was flowing: wait briefly for more instead of leaving the stream idle until the next
            # beat kick (up to 1 s); an idle stream costs this drain at most LINGER_MS.
            reply = r.xreadgroup(GROUP, consumer, {STREAM: ">"}, count=count, block=min(LINGER_MS, left_ms))
            entries = reply[0][1] if reply else []
        if not entries:
            break
        events = 0
        with gc_paused():
            for ids, part in batch.parts(entries, batch_size, max_metadata_bytes=max_metadata_bytes,
                                         hash_ip=hash_ip):
                valid, rejects, dups = part.valid, part.rejects, part.dups
                out = batch.write_batch(engine, valid, rejects, half_life_seconds)
                # committed: from here on a crash only causes an idempotent rewrite
                if on_committed is not None and out.users:
                    on_committed(committed_per_user(valid, out.users))
                pipe = r.pipeline(transaction=False)
                pipe.xack(STREAM, GROUP, *ids)
                pipe.xdel(STREAM, *ids)
                pipe.execute()
                events += part.events
                stats.batches += 1
                stats.read += part.events
                stats.inserted += out.inserted
                stats.duplicates += dups + (len(valid) - out.inserted - out.conflicts)
                stats.dead_lettered += out.dead_lettered
                stats.users.update(out.users)
        per_entry = max(1.0, events / len(entries))
    return stats
