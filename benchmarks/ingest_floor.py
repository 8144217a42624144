"""The ingest benchmark's floor and its correctness check (issue #16 item 1).

Floor: the same events with no logic at all - the stream entries track_many sends for them (packs
of up to 100 events since 2026-12-01, workers/ingestion/stream.py) XADDed in pipelines of
1,000 wrapped in MULTI/EXEC (Redis with the same ``appendfsync always`` fsyncs once per event-loop
pass that wrote to the AOF: a plain pipeline of 1,000 XADDs is read in ~16 KB pieces and costs a
dozen fsyncs, 13k entries/s here, slower than the producer's one Lua call per 1,000; MULTI/EXEC
writes the AOF once per chunk, as that call does), then the same rows in one ``COPY`` into a bare
table (no index, no constraint, logged, ``synchronous_commit`` on). The XADD commands (packed as
RESP) and the COPY text are prepared before the clock starts: the floor is the servers' work and
I/O for these bytes and rows, not a client library's (redis-py's pipeline object packs at ~25k
commands/s on this machine, below what the producer's Lua call reaches).

Also measured, outside the floor (printed, no goal): the same COPY into a table made ``LIKE
ingest_events INCLUDING ALL`` (its primary key on the random event ids, its (user_id, ts) and BRIN
indexes, its defaults): what storing these events durably costs where ingest stores them, before
any of ingest's logic (the idempotent merge, the interests).

Check: the fast path's rows (events and interests) for a set of users must equal what the slow
path (one event per transaction, ``write_batch([event])``) writes for the same events.
"""

from __future__ import annotations

import io
import math
import time
from datetime import datetime, timezone

FLOOR_STREAM = "bench:floor:events"
FLOOR_TABLE = "bench_floor_events"
COLUMNS = "event_id, user_id, entity_id, action, weight, ts, metadata"


def _copy_text(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def copy_buffer(built: list[dict]) -> str:
    import json

    lines = []
    for e in built:
        ts = datetime.fromtimestamp(e["ts"], tz=timezone.utc).isoformat()
        meta = json.dumps(e["metadata"], separators=(",", ":"))
        lines.append("\t".join((e["event_id"], _copy_text(e["user_id"]), _copy_text(e["entity_id"]), e["action"],
                                repr(float(e["weight"])), ts, _copy_text(meta))))
    return "\n".join(lines) + "\n"


def floor(sw, built: list[dict]) -> dict[str, float]:
    """events/s of XADD (pipelined) + one COPY of the same events, and of each part."""
    from workers.ingestion.stream import encode, pack

    # the entries track_many sends for these events (packs of consecutive events, per call of 1,000)
    entries = [x for i in range(0, len(built), 1000) for x in pack([encode(e) for e in built[i:i + 1000]])]
    buf = copy_buffer(built)
    r = sw.redis
    r.delete(FLOOR_STREAM)
    raw = sw.engine.raw_connection()
    try:
        conn = r.connection_pool.get_connection()
        try:
            chunks = [(conn.pack_commands([("MULTI",), *(("XADD", FLOOR_STREAM, "*", "b" if x[:1] == b"[" else "e", x)
                                                         for x in entries[i:i + 1000]), ("EXEC",)]),
                       len(entries[i:i + 1000]) + 2) for i in range(0, len(entries), 1000)]
            t0 = time.perf_counter()
            for packed, n in chunks:  # pipelined: one write of MULTI + 1,000 XADD + EXEC, then the replies
                conn.send_packed_command(packed)
                for _ in range(n):
                    conn.read_response()
            xadd = time.perf_counter() - t0
        finally:
            r.connection_pool.release(conn)
        copy, copied = _timed_copy(raw, buf, "(event_id uuid, user_id text, entity_id text, action text, "
                                             "weight float8, ts timestamptz, metadata jsonb)")
        copy_indexed, copied_indexed = _timed_copy(raw, buf, "(LIKE ingest_events INCLUDING ALL)")
    finally:
        raw.close()
    added = r.xlen(FLOOR_STREAM)
    r.delete(FLOOR_STREAM)
    if copied != len(built) or copied_indexed != len(built) or added != len(entries):
        raise AssertionError(f"floor wrote {added} entries and {copied} / {copied_indexed} rows for {len(built)} events")
    n = len(built)
    return {"floor": n / (xadd + copy), "xadd": n / xadd, "copy": n / copy,
            "indexed": n / (xadd + copy_indexed), "copy_indexed": n / copy_indexed}


def _timed_copy(raw, buf: str, columns: str) -> tuple[float, int]:
    """(seconds to COPY ``buf`` into a new FLOOR_TABLE ``columns`` and commit, the rows it then held)."""
    cur = raw.cursor()
    cur.execute(f"DROP TABLE IF EXISTS {FLOOR_TABLE}")
    cur.execute(f"CREATE TABLE {FLOOR_TABLE} {columns}")
    raw.commit()
    t = time.perf_counter()
    cur.copy_expert(f"COPY {FLOOR_TABLE} ({COLUMNS}) FROM STDIN", io.StringIO(buf))
    raw.commit()
    seconds = time.perf_counter() - t
    cur.execute(f"SELECT count(*) FROM {FLOOR_TABLE}")
    rows = cur.fetchone()[0]
    cur.execute(f"DROP TABLE {FLOOR_TABLE}")
    raw.commit()
    return seconds, rows


def snapshot(engine, users: list[str]) -> tuple[list, list]:
    """The committed rows of these users: events exactly, interests with the score as a float."""
    from sqlalchemy import text

    with engine.connect() as c:
        events = c.execute(text(
            "SELECT event_id::text, user_id, entity_id, action, weight, ts, metadata::text FROM ingest_events "
            "WHERE user_id = ANY(:u) ORDER BY event_id"), {"u": users}).all()
        interests = c.execute(text(
            "SELECT user_id, entity_id, score, score_at, event_count, action_counts::text, first_seen, last_seen "
            "FROM ingest_interests WHERE user_id = ANY(:u) ORDER BY user_id, entity_id"), {"u": users}).all()
    return [tuple(r) for r in events], [tuple(r) for r in interests]


def assert_same(fast: tuple[list, list], slow: tuple[list, list], what: str) -> None:
    """Events identical; interests identical but the score, equal to 1e-9 relative (the batch sums the
    decayed contributions, the slow path folds them one at a time: the same value, rounded apart)."""
    (fe, fi), (se, si) = fast, slow
    if fe != se:
        raise AssertionError(f"{what}: {len(fe)} fast-path events differ from the slow path's {len(se)}")
    if len(fi) != len(si):
        raise AssertionError(f"{what}: {len(fi)} interest rows, slow path {len(si)}")
    for a, b in zip(fi, si):
        if a[:2] != b[:2] or a[3:] != b[3:] or not math.isclose(a[2], b[2], rel_tol=1e-9, abs_tol=1e-9):
            raise AssertionError(f"{what}: interest {a[:2]} differs: {a} vs slow path {b}")
