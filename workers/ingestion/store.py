"""Batched writes of the ingest pool: one statement inserts a batch of events and
folds the *newly inserted* ones into interests with lazy exponential decay.

Decay model (order-independent, so concurrent and out-of-order batches commute):
an interest stores ``score`` valid at ``score_at``; a contribution ``w`` at time ``t``
merges as  T' = max(T, t),  S' = S·2^(−(T'−T)/h) + w·2^(−(T'−t)/h).
For events in time order this is exactly DESIGN's ``score = score·2^(−Δt/h) + weight``.
Only rows returned by ``INSERT … ON CONFLICT (event_id) DO NOTHING RETURNING`` are
counted, so a redelivered batch changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import timedelta
from typing import Any, Iterable, Sequence

from sqlalchemy import Connection, delete, func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert

from shared_models import dead_letters
from shared_models.models.ingest import Holding, IngestEvent, LoginAttempt

from .erasure import erasure_key
from .events import EventValidationError, check_user_id

DECAY_SQL = "ingest_decay"

# The hot path stays one SQL text statement, not Core: arrays travel as PostgreSQL array literals
# (one string each, parsed by array_in) and the action-count merge is inlined; BENCHMARKS.md
# (benchmarks/ingest_write.py) measured it at 1.64-1.78x the previous statement's events/s. The
# non-hot paths (holdings, known signals, login attempts, erasure, purge, stats) use the models.
_BATCH_SQL = """
WITH erased AS (                      -- right to erasure: tombstones of this batch's users (record_erasure)
    SELECT h.user_id, x.erased_at
    FROM unnest(%(eusers)s::text[], %(ekeys)s::text[]) AS h(user_id, user_key)
    JOIN ingest_erasures x ON x.user_key = h.user_key
), src AS (
    SELECT * FROM unnest(%(ids)s::uuid[], %(users)s::text[], %(entities)s::text[], %(actions)s::text[],
                         %(weights)s::float8[], %(ts)s::float8[], %(metas)s::text[])
        AS s(event_id, user_id, entity_id, action, weight, ts_epoch, meta)
    WHERE NOT EXISTS (SELECT 1 FROM erased x WHERE x.user_id = s.user_id AND x.erased_at >= to_timestamp(s.ts_epoch))
), ins AS (
    INSERT INTO ingest_events (event_id, user_id, entity_id, action, weight, ts, metadata)
    SELECT event_id, user_id, entity_id, action, weight, to_timestamp(ts_epoch), meta::jsonb FROM src
    ORDER BY event_id
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id, user_id, entity_id, action, weight, ts
), clash AS (                         -- ids already stored with other content (an identical resend is no clash)
    SELECT s.event_id, array_remove(ARRAY[
               CASE WHEN e.user_id <> s.user_id THEN 'user_id' END,
               CASE WHEN e.entity_id <> s.entity_id THEN 'entity_id' END,
               CASE WHEN e.action <> s.action THEN 'action' END,
               CASE WHEN e.weight <> s.weight THEN 'weight' END,
               CASE WHEN e.ts <> to_timestamp(s.ts_epoch) THEN 'ts' END,
               CASE WHEN e.metadata <> s.meta::jsonb THEN 'metadata' END], NULL) AS fields
    FROM src s JOIN ingest_events e ON e.event_id = s.event_id   -- the snapshot: rows stored before this batch
    WHERE (SELECT count(*) FROM ins) < (SELECT count(*) FROM src)   -- one-time filter: skipped when all are new
      AND NOT EXISTS (SELECT 1 FROM ins i WHERE i.event_id = s.event_id)
), ins_t AS (
    SELECT i.*, max(i.ts) OVER (PARTITION BY i.user_id, i.entity_id) AS t_max FROM ins i
), agg AS (
    SELECT user_id, entity_id, t_max, min(ts) AS t_min, count(*) AS n,
           sum(ingest_decay(weight, extract(epoch FROM t_max - ts)::float8, %(half_life)s)) AS contrib
    FROM ins_t GROUP BY user_id, entity_id, t_max
), per_action AS (
    SELECT user_id, entity_id, jsonb_object_agg(action, n) AS counts
    FROM (SELECT user_id, entity_id, action, count(*) AS n FROM ins GROUP BY 1, 2, 3) x
    GROUP BY user_id, entity_id
), up AS (
    INSERT INTO ingest_interests AS cur
        (user_id, entity_id, score, score_at, event_count, action_counts, first_seen, last_seen)
    SELECT a.user_id, a.entity_id, a.contrib, a.t_max, a.n, p.counts, a.t_min, a.t_max
    FROM agg a JOIN per_action p USING (user_id, entity_id)
    ORDER BY a.user_id, a.entity_id
    ON CONFLICT (user_id, entity_id) DO UPDATE SET
        score = ingest_decay(cur.score, extract(epoch FROM excluded.score_at - cur.score_at)::float8, %(half_life)s)
              + ingest_decay(excluded.score, extract(epoch FROM cur.score_at - excluded.score_at)::float8,
                             %(half_life)s),
        score_at = greatest(cur.score_at, excluded.score_at),
        event_count = cur.event_count + excluded.event_count,
        action_counts = cur.action_counts || coalesce(       -- inline merge: 1.2x the function's speed
            (SELECT jsonb_object_agg(key, value::bigint + coalesce((cur.action_counts ->> key)::bigint, 0))
             FROM jsonb_each_text(excluded.action_counts)), '{}'::jsonb),
        first_seen = least(cur.first_seen, excluded.first_seen),
        last_seen = greatest(cur.last_seen, excluded.last_seen)
    RETURNING user_id
)
SELECT (SELECT count(*) FROM ins) AS inserted, (SELECT array_agg(DISTINCT user_id) FROM up) AS users,
       (SELECT json_agg(json_build_object('event_id', event_id, 'fields', fields)) FROM clash
        WHERE cardinality(fields) > 0) AS clashes
"""


def _text_array(values: Iterable[str]) -> str:
    """PostgreSQL array text format: one string parsed by array_in, instead of psycopg2's ARRAY[...]
    with one parse-tree constant per element (the batch write ran 1.6x faster this way, BENCHMARKS.md).
    Validated ids, tickers and actions hold no quote or backslash: they are joined without escaping."""
    values = values if isinstance(values, list) else list(values)
    if not values:
        return "{}"
    whole = "".join(values)
    if '"' in whole or "\\" in whole:
        values = [v.replace("\\", "\\\\").replace('"', '\\"') for v in values]
    return '{"' + '","'.join(values) + '"}'


def _number_array(values: Iterable[float | int]) -> str:
    return "{" + ",".join(map(repr, values)) + "}"  # repr round-trips floats exactly


def _columns(events: Sequence[dict]) -> dict[str, str]:
    users = sorted({str(e["user_id"]) for e in events})  # validated: check_user_id's text form
    return {
        "eusers": _text_array(users),
        "ekeys": _text_array([erasure_key(u) for u in users]),
        "ids": _text_array([str(e["event_id"]) for e in events]),
        "users": _text_array([str(e["user_id"]) for e in events]),
        "entities": _text_array([e["entity_id"] for e in events]),
        "actions": _text_array([e["action"] for e in events]),
        "weights": _number_array([float(e["weight"]) for e in events]),
        "ts": _number_array([float(e["ts"]) for e in events]),
        "metas": _text_array([e.get("metadata_json") or json.dumps(e["metadata"], separators=(",", ":"))
                              for e in events]),
    }


def write_events(conn: Connection, events: Sequence[dict], half_life_seconds: float
                 ) -> tuple[int, list[str], list[tuple[str, list[str]]]]:
    """Insert validated events and update interests in one statement.

    Returns (inserted, touched users, clashes): a clash is an event whose id is already stored
    with other content, as (event_id, the fields that differ); it is neither stored nor counted.
    """
    if not events:
        return 0, [], []
    lock_for_writing(conn)
    params = _columns(events)
    params["half_life"] = float(half_life_seconds)
    row = conn.exec_driver_sql(_BATCH_SQL, params).one()
    clashes = [(c["event_id"], c["fields"]) for c in (row.clashes or [])]
    return int(row.inserted), list(row.users or []), clashes


def _ts_hint(ts: Any) -> float | None:
    if isinstance(ts, bool) or not isinstance(ts, (int, float)) or not math.isfinite(ts):
        return None
    return float(min(max(ts, -1e10), 1e11))


def _user_key(user: Any) -> str | None:
    if isinstance(user, bool) or not isinstance(user, (int, str)) or (isinstance(user, str) and len(user) > 64):
        return None
    try:
        user = check_user_id(user)  # the stored form (a UUID in any case is one user), as erasure computes it
    except EventValidationError:
        pass
    return erasure_key(str(user))


def dead_letter(conn: Connection, rejects: Iterable[Any], source: str) -> int:
    """Keep rejected input (``batch.Reject``) through the shared helper (a capped payload with the size
    and hash of the whole; ``subject_key`` names the user by keyed hash, so erasure finds it).

    Erasure-aware: a reject about a user whose tombstone is at or after its ts (no numeric ts counts
    as old) is not kept, so an erased user's queued events do not come back as dead letters.
    """
    rows = [dict(dead_letters.prepare("ingest", source, r.reason, r.payload, field=r.field,
                                      subject_key=_user_key(r.user_id)), ts=_ts_hint(r.ts)) for r in rejects]
    if not rows:
        return 0
    lock_for_writing(conn)
    kept = conn.execute(text(
        f"INSERT INTO dead_letters ({', '.join(dead_letters.COLUMNS)}) "
        "SELECT :pool, :source, :field, :reason, CAST(:payload AS jsonb), :payload_bytes, :payload_sha256, "
        ":payload_truncated, :subject_key "
        "WHERE NOT EXISTS (SELECT 1 FROM ingest_erasures x WHERE x.user_key = :subject_key "
        "  AND x.erased_at >= coalesce(to_timestamp(CAST(:ts AS float8)), '-infinity'::timestamptz))"),
        rows).rowcount
    return max(kept, 0)


def keep_dead_letters(engine, rejects: list[Any], source: str) -> int:
    """Dead letters in their own transaction; if the set is refused, one by one, and a letter that
    cannot be kept as it is is kept as its size and hash only (so it can never block the stream)."""
    from .batch import is_transient

    if not rejects:
        return 0
    try:
        with engine.begin() as conn:
            return dead_letter(conn, rejects, source)
    except Exception as exc:  # noqa: BLE001 - classified
        if is_transient(exc):
            raise
    kept = 0
    for r in rejects:
        try:
            with engine.begin() as conn:
                kept += dead_letter(conn, [r], source)
        except Exception as exc:  # noqa: BLE001 - classified
            if is_transient(exc):
                raise
            whole = repr(r.payload)[:1_000_000].encode("utf-8", "backslashreplace")
            digest = type(r)(payload={"unstorable": f"{type(exc).__name__}", "bytes": len(whole),
                                      "sha256": hashlib.sha256(whole).hexdigest()},
                             field=r.field, reason=r.reason, user_id=r.user_id, ts=r.ts)
            with engine.begin() as conn:
                kept += dead_letter(conn, [digest], source)
    return kept


def lock_for_writing(conn: Connection) -> None:
    """Take the writers' lock (ROW EXCLUSIVE, shared by all writers) as the transaction's first step.

    A writer's transaction then either started before an erasure's exclusive lock (the erasure waits
    for its COMMIT and deletes its rows) or its later statements run after the erasure committed and
    see the tombstone. Taking it explicitly, as its own statement, keeps this independent of when
    PostgreSQL takes a statement's snapshot relative to its locks. Re-taking a held lock is cheap.
    """
    conn.exec_driver_sql("LOCK TABLE ingest_events IN ROW EXCLUSIVE MODE")


def purge_old_events(conn: Connection, retention_days: int, chunk: int = 50_000) -> int:
    """Drop raw events (and login attempts) older than the retention window; interests stay."""
    cutoff = func.now() - timedelta(days=retention_days)
    total = 0
    while True:
        old = select(IngestEvent.event_id).where(IngestEvent.ts < cutoff).limit(chunk)
        n = conn.execute(delete(IngestEvent).where(IngestEvent.event_id.in_(old.scalar_subquery()))).rowcount
        total += n
        if n < chunk:
            break
    conn.execute(delete(LoginAttempt).where(LoginAttempt.created_at < cutoff))
    return total


def set_holdings(conn: Connection, user_id: str, entity_ids: Sequence[str]) -> None:
    """Replace the user's portfolio holdings (pinned library entries)."""
    conn.execute(delete(Holding).where(Holding.user_id == user_id))
    if entity_ids:
        conn.execute(pg_insert(Holding).values([{"user_id": user_id, "entity_id": e} for e in entity_ids])
                     .on_conflict_do_nothing())
