"""Right to erasure, race-free against batches in flight.

1. commit a tombstone (``record_erasure``): later batch statements skip the user's events
   stamped before it;
2. under a lock that waits for every writer's transaction in flight, delete every row of the
   user (``delete_user_rows``);
3. delete the user's cache keys. Idempotent; never drains the stream (events still queued are
   skipped by the tombstone when a worker writes them).
"""

from __future__ import annotations

import functools
import time
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, or_
from sqlalchemy.dialects.postgresql import insert as pg_insert

from shared_models.models.core import DeadLetter
from shared_models.models.ingest import Erasure, Holding, IngestEvent, Interest, KnownSignal, LoginAttempt

from . import cache as cache_mod
from . import privacy

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


def record_erasure(conn: Connection, user_id: int, now_epoch: float) -> None:
    """Commit this first: from then on no batch writes an event of the user stamped before now.

    ``erased_at`` is the later of the caller's and the database's clock (events are stamped by the
    client that tracked them), and never moves backwards on a repeated erasure.
    """
    stmt = pg_insert(Erasure).values(user_key=erasure_key(str(user_id)),
                                     erased_at=func.greatest(func.clock_timestamp(), func.to_timestamp(now_epoch)))
    conn.execute(stmt.on_conflict_do_update(
        index_elements=[Erasure.user_key],
        set_={"erased_at": func.greatest(Erasure.erased_at, stmt.excluded.erased_at)}))


def delete_user_rows(conn: Connection, user_id: int) -> dict[str, int]:
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
    return counts


def delete_user(engine: Engine, cache: Any, redis_client: Any, user_id: int) -> dict[str, int]:
    """Erase the user everywhere quantpipe keeps them; returns the rows deleted per table."""
    with engine.begin() as conn:
        record_erasure(conn, user_id, time.time())
    with engine.begin() as conn:
        counts = delete_user_rows(conn, user_id)
    keys = cache_mod.user_keys(user_id)
    cache.delete(*keys)
    redis_client.delete(*keys)
    return counts
