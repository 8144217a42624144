"""Right to erasure, race-free against batches in flight.

1. commit a tombstone (``record_erasure``): later batch statements skip the user's events
   stamped before it;
2. under a lock that waits for every writer's transaction in flight, delete every row of the
   user (``delete_user_rows``);
3. delete the user's cache keys and the user's entries still queued in the stream (the tombstone
   makes the drain skip them anyway);
4. ask Redis to rewrite its AOF, so neither those values nor the DEL/XDEL commands naming the
   user stay on disk (``rewrite_aof``). Idempotent.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from typing import Any

import redis

from sqlalchemy import Connection, Engine, delete, func, or_
from sqlalchemy.dialects.postgresql import insert as pg_insert

from shared_models import notifications
from shared_models.models.core import DeadLetter
from shared_models.models.ingest import Erasure, Holding, IngestEvent, Interest, KnownSignal, LoginAttempt

from . import cache as cache_mod
from . import privacy

log = logging.getLogger(__name__)

USER_MODELS = (IngestEvent, Interest, Holding, LoginAttempt, KnownSignal)
USER_TABLES = tuple(m.__tablename__ for m in USER_MODELS)


@functools.lru_cache(maxsize=1)
def _hasher() -> privacy.Hasher:
    from shared_models.settings import get_settings

    return privacy.Hasher(privacy.hmac_key(get_settings()))


@functools.lru_cache(maxsize=100_000)
def erasure_key(user_id: Any) -> str:
    """Keyed hash naming a user in ``ingest_erasures``: the tombstone holds no user id in the clear,
    yet anyone holding the HMAC key (every worker) can match events against it."""
    return _hasher()(str(user_id), "erasure")


def record_erasure(conn: Connection, user_id: str, now_epoch: float) -> None:
    """Commit this first: from then on no batch writes an event of the user stamped before now.

    ``erased_at`` is the later of the caller's and the database's clock (events are stamped by the
    client that tracked them), and never moves backwards on a repeated erasure.
    """
    stmt = pg_insert(Erasure).values(user_key=erasure_key(str(user_id)),
                                     erased_at=func.greatest(func.clock_timestamp(), func.to_timestamp(now_epoch)))
    conn.execute(stmt.on_conflict_do_update(
        index_elements=[Erasure.user_key],
        set_={"erased_at": func.greatest(Erasure.erased_at, stmt.excluded.erased_at)}))


def delete_user_rows(conn: Connection, user_id: str) -> dict[str, int]:
    """Every row of the user, dead letters carrying their id included.

    SHARE ROW EXCLUSIVE conflicts with the writers' ROW EXCLUSIVE (so this waits for every batch
    transaction in flight, then deletes what it wrote) and with itself (concurrent erasures queue up
    instead of deadlocking on their own DELETEs); plain reads are not blocked.
    """
    conn.exec_driver_sql("LOCK TABLE ingest_events IN SHARE ROW EXCLUSIVE MODE")
    counts = {m.__tablename__: conn.execute(delete(m).where(m.user_id == user_id)).rowcount for m in USER_MODELS}
    counts["dead_letters"] = conn.execute(delete(DeadLetter).where(
        DeadLetter.pool == "ingest",
        or_(DeadLetter.subject_key == erasure_key(str(user_id)),            # capped letters name them by key
            DeadLetter.payload["user_id"].astext == str(user_id)))).rowcount  # rows kept before the helper
    counts["user_pattern_alerts"] = notifications.forget_user(conn, user_id)  # out of every pattern audience
    return counts


def purge_stream(redis_client: Any, user_id: str, chunk: int = 1000) -> int:
    """Take the user's events still queued in the event stream out of it (the tombstone already makes
    the drain skip them; this takes them out of Redis's memory so an AOF rewrite drops them too): an
    entry of theirs is XDELed, a pack (field 'b') holding theirs among others' is replaced, in one
    MULTI, by a pack of the others' events (written again if the old one was already delivered: the
    ON CONFLICT (event_id) write makes that a no-op). Returns the user's events removed."""
    from .batch import _user_hint
    from .stream import STREAM

    removed, start = 0, "-"
    while True:
        entries = redis_client.xrange(STREAM, min=start, max="+", count=chunk)
        mine = []
        for eid, fields in entries:
            packed = isinstance(fields, dict) and fields.get(b"e", fields.get("e")) is None \
                and fields.get(b"b", fields.get("b")) is not None
            if not packed:
                if _is_users(fields, user_id, _user_hint):
                    mine.append(eid)
                continue
            rest, theirs = _split_pack(fields.get(b"b", fields.get("b")), user_id, _user_hint)
            if theirs:
                pipe = redis_client.pipeline(transaction=True)
                if rest:
                    pipe.xadd(STREAM, {"b": json.dumps(rest, separators=(",", ":"))})
                pipe.xdel(STREAM, eid)
                pipe.execute()
                removed += theirs
        if mine:
            removed += redis_client.xdel(STREAM, *mine)
        if len(entries) < chunk:
            return removed
        last = entries[-1][0].decode() if isinstance(entries[-1][0], bytes) else entries[-1][0]
        start = "(" + last


def _is_users(fields: Any, user_id: str, hint) -> bool:
    raw = fields.get(b"e", fields.get("e")) if isinstance(fields, dict) else None
    if raw is None or str(user_id).encode() not in (raw if isinstance(raw, bytes) else str(raw).encode()):
        return False  # fast path: the id's digits are not even in the entry
    try:
        event = json.loads(raw)
        return isinstance(event, dict) and str(event.get("user_id")) == str(user_id)
    except Exception:  # noqa: BLE001 - undecodable: the dead-letter path's reading of it
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        return str(hint(text)) == str(user_id)


def _split_pack(raw: Any, user_id: str, hint) -> tuple[list, int]:
    """(the other users' events of a pack, how many of the user's it holds); an undecodable pack
    that names the user counts as theirs whole."""
    if str(user_id).encode() not in (raw if isinstance(raw, bytes) else str(raw).encode()):
        return [], 0  # fast path: the id's digits are not even in the entry
    try:
        items = json.loads(raw)
    except Exception:  # noqa: BLE001 - undecodable: the dead-letter path's reading of it
        items = None
    if not isinstance(items, list):
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        return [], int(str(hint(text)) == str(user_id))
    rest = [e for e in items if not (isinstance(e, dict) and str(e.get("user_id")) == str(user_id))]
    return rest, len(items) - len(rest)


def rewrite_aof(redis_client: Any) -> str:
    """Ask Redis to rewrite its append-only file from the data it holds now, so commands and values
    about an erased user leave the disk. Returns what happened: started, scheduled (one was running:
    Redis runs another after it), not_enabled (no AOF), or refused (e.g. a managed Redis that
    disables the command; the operator must rewrite or expire the AOF, see docs/ingest.md)."""
    try:
        if not int(redis_client.info("persistence").get("aof_enabled", 0)):
            return "not_enabled"
        reply = redis_client.bgrewriteaof()
    except redis.ResponseError as exc:
        log.warning("erasure: Redis refused BGREWRITEAOF (%s); the AOF still holds the erased user", exc)
        return "refused"
    text = reply.decode() if isinstance(reply, bytes) else str(reply)
    return "scheduled" if "scheduled" in text.lower() else "started"


def wait_for_aof_rewrite(redis_client: Any, timeout: float = 30.0) -> bool:
    """True once no rewrite is running or scheduled and the last one succeeded."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = redis_client.info("persistence")
        if not int(info.get("aof_rewrite_in_progress", 0)) and not int(info.get("aof_rewrite_scheduled", 0)):
            return info.get("aof_last_bgrewrite_status") in ("ok", b"ok")
        time.sleep(0.05)
    return False


def delete_user(engine: Engine, cache: Any, redis_client: Any, user_id: str, *,
                aof_rewrite: bool = True) -> dict[str, int]:
    """Erase the user everywhere quantpipe keeps them; returns counts: rows per table, queued stream
    entries removed, and ``redis_aof_rewrites`` (1 when Redis accepted the rewrite request)."""
    with engine.begin() as conn:
        record_erasure(conn, user_id, time.time())
    with engine.begin() as conn:
        counts = delete_user_rows(conn, user_id)
    keys = cache_mod.user_keys(user_id)
    cache.delete(*keys)
    redis_client.delete(*keys)
    counts["stream_entries"] = purge_stream(redis_client, user_id)
    outcome = rewrite_aof(redis_client) if aof_rewrite else "off"
    counts["redis_aof_rewrites"] = int(outcome in ("started", "scheduled"))
    return counts
