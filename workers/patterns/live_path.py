"""The live bar path in as few PostgreSQL round trips as the guarantees allow.

Per unit of work (one symbol's bar, or one bar for each symbol of a universe tick):

1. ``BEGIN; upsert bars; watermark; version check + window read`` — one round trip
   (several statements in one simple query). The window comes from the process's
   ``WindowCache`` when ``pattern_bar_versions`` says the symbol's history was only
   appended to since it was cached; then only the newer bars travel.
2. detection (pure numpy / TA-Lib, ``live_batch.detect_last_segments``);
3. if anything was found: the detection + outbox + PATTERN_PUBLISHED statement, with ``COMMIT``
   and the read-back of its new rows in the same round trip (``NEW_ROWS_SQL``);
4. publish this unit's new rows from memory (one publish-once script per chunk), then mark them
   sent by id (``synchronous_commit`` off; in a tick of several units, in its own transaction at
   the head of the next unit's step 1, ``MARK_TX``). When step 1 saw older unsent rows (a killed
   run's, a Redis outage's), instead ``COMMIT; BEGIN; SET LOCAL synchronous_commit = off; claim
   unsent outbox rows of these symbols`` in one round trip, publish them, ``COMMIT`` the sent mark
   (or un-mark what Redis refused).

So the guarantees of ``scanning`` are unchanged: the unit's bars, detections, outbox rows,
checkpoints and watermark commit in one transaction, before anything is published; a row is
published at most once per flow (the markers of ``publisher.publish_rows``) and stays unsent until
published, so the relay finishes whatever a crash interrupted. What is saved is the pool's pre-ping and
separate BEGINs: the process keeps one dedicated autocommit connection (explicit BEGIN/COMMIT),
dropped and re-opened after any connection error; a universe tick, whose units overlap, a second
(``live_tick``). Steps 1-2 are ``begin``, 3-4 ``finish``; ``ingest`` runs both.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

from sqlalchemy import Engine

from shared_models import dead_letters
from workers.gc_pause import gc_paused

from .live_batch import PANEL_WINDOW, detect_last_segments
from .publisher import CHANNEL, PERSIST_SQL, UNMARK_SQL, persist_params, publish_rows, stored_events
from .live_sql import UPSERT_SQL, WATERMARK_SQL
from .window_cache import Window, WindowCache, windows_from_rows

SOURCE_SQL = "SELECT set_config('quantpipe.bar_source', %(src)s, true)"  # names corrections (migration 0009)

# READ_SQL, CLAIM_SQL and publisher.PERSIST_SQL stay SQL text: each is one statement of CTEs over
# unnest/jsonb_to_recordset/float8send that Core would only spell out less readably; the live
# path needs text either way (several statements, one round trip). The upserts are compiled
# from the models (live_sql).
# One statement, so the version check and the bars read share one snapshot. Warm symbols
# (cached at the version still current, new bar not older than the cached one) get only
# the bars after the cached last one (an index bound, not a filter); the others get their
# whole window. One row per symbol; each column comes as the concatenated big-endian float8
# bytes of its bars (exact, and decoded by numpy without parsing text). The last column says
# whether any outbox row is unsent at all (via the small partial index; a per-symbol filter
# there made the planner scan the whole outbox): if none, the claim round trip is skipped.
READ_SQL = """
WITH n AS (
    SELECT symbol, to_timestamp(until) AS until, cver, to_timestamp(clast) AS clast, k
    FROM unnest(%(s)s::varchar[], %(t)s::float8[], %(cver)s::bigint[], %(clast)s::float8[])
        WITH ORDINALITY AS n(symbol, until, cver, clast, k)
), v AS (
    SELECT n.k, n.symbol, n.until, pv.version,
           COALESCE(pv.version = n.cver AND n.until >= n.clast, false) AS warm, n.clast
    FROM n LEFT JOIN pattern_bar_versions pv ON pv.symbol = n.symbol AND pv.timeframe = %(tf)s
)
SELECT v.k, v.version, v.warm,
       string_agg(float8send(extract(epoch FROM w.ts)::float8), ''::bytea ORDER BY w.ts),
       string_agg(float8send(w.open), ''::bytea ORDER BY w.ts), string_agg(float8send(w.high), ''::bytea ORDER BY w.ts),
       string_agg(float8send(w.low), ''::bytea ORDER BY w.ts), string_agg(float8send(w.close), ''::bytea ORDER BY w.ts),
       string_agg(float8send(w.volume), ''::bytea ORDER BY w.ts),
       (SELECT count(*) FROM (SELECT 1 FROM pattern_outbox WHERE sent_at IS NULL
                              AND flow_id <> ALL(CAST(%(pending)s AS uuid[])) ORDER BY id LIMIT 1) u)
FROM v LEFT JOIN LATERAL (
    SELECT ts, open, high, low, close, volume FROM market_bars b
    WHERE b.symbol = v.symbol AND b.timeframe = %(tf)s AND b.ts <= v.until
      AND b.ts > CASE WHEN v.warm THEN v.clast ELSE '-infinity'::timestamptz END
    ORDER BY b.ts DESC LIMIT %(window)s) w ON true
GROUP BY v.k, v.version, v.warm
ORDER BY v.k
"""

CLAIM_SQL = """
UPDATE pattern_outbox SET sent_at = clock_timestamp(), attempts = attempts + 1 WHERE id IN (
    SELECT id FROM pattern_outbox WHERE sent_at IS NULL AND payload->'data'->>'symbol' = ANY(%(s)s::varchar[])
    ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
RETURNING id, channel, CASE WHEN flow_id = ANY(%(mine)s::uuid[]) THEN NULL ELSE payload END, flow_id::text
"""

# The rows PERSIST_SQL returned, read back after the COMMIT that shares its round trip (a simple query
# returns only its last statement's rows): the outbox rows of this unit's flow ids are exactly the new
# detections (a key that already existed kept its old flow id and got none). Same shape as PERSIST_SQL's
# rows; the checkpoint id (unused here) is NULL, user_count is the one the outbox payload holds.
NEW_ROWS_SQL = """
SELECT o.detection_id, o.flow_id::text, o.payload->'data'->>'symbol', o.payload->'data'->>'pattern', NULL,
       CAST(o.payload->'data'->>'user_count' AS integer), o.id
FROM pattern_outbox o WHERE o.flow_id = ANY(CAST(%(fids)s AS uuid[]))
"""


@dataclass
class LiveResult:
    bars: int
    detected: int
    new: int
    published: int
    relay_error: str | None = None
    cache_hits: int = 0
    unmarked: list[int] | None = None  # with defer_mark: outbox ids published, their sent mark still to commit


_CONNS: dict[tuple[int, int, str, int], object] = {}


def _connection(engine: Engine, slot: int = 0):
    """This process's dedicated autocommit psycopg2 connection number ``slot`` (no pool checkout, no
    pre-ping). A universe tick uses two (``live_tick``), everything else slot 0."""
    key = (os.getpid(), id(engine), engine.url.render_as_string(hide_password=True), slot)
    conn = _CONNS.get(key)
    if conn is None or conn.closed:
        proxy = engine.raw_connection()
        conn = proxy.driver_connection
        proxy.detach()  # ours for the life of the process; the pool never sees it again
        conn.rollback()
        conn.autocommit = True
        _CONNS[key] = conn
    return key, conn


def _discard(key, conn) -> None:
    _CONNS.pop(key, None)
    try:
        conn.close()
    except Exception:  # noqa: BLE001 - already broken
        pass


def _abandon(key, conn, exc: BaseException) -> None:
    """After ``exc`` inside a unit: roll its transaction back, or drop a connection that cannot."""
    import psycopg2

    if isinstance(exc, (psycopg2.OperationalError, psycopg2.InterfaceError)) or conn.closed:
        _discard(key, conn)
        return
    try:
        with conn.cursor() as cur:
            cur.execute("ROLLBACK")
    except Exception:  # noqa: BLE001 - cannot roll back: the connection is unusable
        _discard(key, conn)


def ingest(engine: Engine, redis_client, timeframe: str, tier: str, bars: dict[str, dict], ttl_hours: float,
           cache: WindowCache, source: str = "patterns.live", letters: Sequence = ()) -> LiveResult:
    """Store validated ``bars`` ({symbol: bar}), detect on each symbol's newest bar, persist, publish.

    ``source`` names the writer in ``market_bar_corrections`` when a bar rewrites a stored one;
    ``letters`` (dead letters of the same call's refused bars) commit in the same transaction.
    A universe tick in several units runs ``begin`` and ``finish`` itself (``live_tick``).
    """
    with gc_paused():
        unit = begin(engine, timeframe, tier, bars, ttl_hours, cache, source, letters)
        result = finish(unit, redis_client)
        unit.keep()
        return result


@dataclass
class Unit:
    """A unit after its first round trip and its detection, its transaction open on ``conn``:
    what ``finish`` persists and publishes. The windows enter the cache (``keep``) only once the
    unit committed."""

    key: tuple
    conn: object
    cache: WindowCache
    timeframe: str
    symbols: list[str]
    bars: int
    windows: dict[str, Window]
    hits: int
    found: list
    persist: dict | None  # PERSIST_SQL's parameters (None: nothing found)
    events: dict  # flow_id -> event of every row the persist may write
    unsent: int  # outbox rows unsent at the read (other than ``pending``'s): take the claim path
    committed: bool = False

    def keep(self) -> None:
        for s, w in self.windows.items():  # only now: the bars these windows hold are committed
            self.cache.put(s, self.timeframe, w)
        self.cache.hits += self.hits
        self.cache.misses += len(self.symbols) - self.hits

    def fail(self, exc: BaseException) -> None:
        """The unit failed with ``exc``, before its COMMIT (its windows are unknown to the cache) or after it."""
        if not self.committed:
            self.cache.drop(self.symbols, self.timeframe)
        _abandon(self.key, self.conn, exc)


def begin(engine: Engine, timeframe: str, tier: str, bars: dict[str, dict], ttl_hours: float, cache: WindowCache,
          source: str, letters: Sequence = (), mark_first: Sequence = (), *, slot: int = 0,
          pending: Sequence[str] = ()) -> Unit:
    """Step 1 and 2 of a unit (see the module docstring): ``BEGIN``, the upserts and the read in one
    round trip, then detection and the persist's parameters; the transaction stays open.

    ``pending``: flow ids of an earlier unit whose persist may commit while this read runs (a tick's
    units overlap, ``live_tick``): its rows are not "older unsent rows" for this unit's choice of path.
    ``mark_first``: outbox ids an earlier unit published, marked sent in their own transaction at the
    head of this unit's first round trip (a tick pays no mark round trip of its own per unit)."""
    symbols = list(bars)
    until = [b["ts"].timestamp() for b in bars.values()]  # epochs: far cheaper to send than timestamptz
    cached = [cache.get(s, timeframe) for s in symbols]
    params = {"tf": timeframe, "adj": timeframe == "1d", "tier": tier, "s": symbols, "t": until,
              **{k[0]: [b[k] for b in bars.values()] for k in ("open", "high", "low", "close")},
              "v": [b["volume"] for b in bars.values()], "window": PANEL_WINDOW,
              "cver": [w.version if w else None for w in cached],
              "clast": [w.last_epoch if w else None for w in cached], "src": source, "done": list(mark_first),
              "pending": list(pending)}
    key, conn = _connection(engine, slot)
    try:
        with conn.cursor() as cur:
            head = f"{MARK_TX}; " if mark_first else ""  # its own transaction: committed whatever follows
            cur.execute(f"{head}BEGIN; {SOURCE_SQL}; {UPSERT_SQL}; {WATERMARK_SQL}; {READ_SQL}", params)
            table = cur.fetchall()
            if letters:
                dead_letters.keep_many(cur, "patterns", letters)
        seg, windows, hits = windows_from_rows(symbols, cached, table)
        found = detect_last_segments(seg, tier)
        events: dict = {}
        persist = persist_params(found, ttl_hours, events=events) if found else None
    except BaseException as exc:
        cache.drop(symbols, timeframe)
        _abandon(key, conn, exc)
        raise
    unsent = int(table[0][-1]) if table else 0
    return Unit(key, conn, cache, timeframe, symbols, int(seg.lengths.sum()), windows, hits, found, persist, events,
                unsent)


def finish(unit: Unit, redis_client, defer_mark: bool = False) -> LiveResult:
    """Steps 3 and 4: persist (with the COMMIT), publish, mark; or COMMIT and relay older unsent rows.
    ``defer_mark``: leave the sent mark to the caller (``LiveResult.unmarked``)."""
    found, events, new = unit.found, unit.events, []
    own = bool(found) and redis_client is not None and not unit.unsent
    try:
        with unit.conn.cursor() as cur:
            if found:
                if own:  # COMMIT in the persist's round trip; the new rows read back after it (NEW_ROWS_SQL)
                    cur.execute(f"{PERSIST_SQL}; COMMIT; {NEW_ROWS_SQL}", {**unit.persist, "fids": list(events)})
                    unit.committed = True  # from here on the unit is durable whatever the publish does
                else:
                    cur.execute(PERSIST_SQL, unit.persist)
                new = cur.fetchall()
                events = stored_events(events, new)
            result = LiveResult(unit.bars, len(found), len(new), 0, cache_hits=unit.hits)
            if own:  # only this unit's rows to publish: no claim round trip before the PUBLISHes
                result.published, result.relay_error, result.unmarked = _publish_mark(
                    cur, redis_client, sorted((row[6], CHANNEL, events[row[1]]) for row in new), defer_mark)
            elif redis_client is None or not (new or unit.unsent):
                cur.execute("COMMIT")
                unit.committed = True
            else:  # older unsent rows (a killed run's, a Redis outage's): claim them with ours, by symbol
                unit.committed = True
                result.published, result.relay_error = _commit_and_publish(cur, redis_client, unit.symbols,
                                                                          len(new) + 1000, events)
    except BaseException as exc:
        unit.fail(exc)
        raise
    return result


def _commit_and_publish(cur, redis_client, symbols: list[str], limit: int, events: dict,
                        counts: list[int] | None = None) -> tuple[int, str | None]:
    """COMMIT the unit and claim its symbols' unsent rows in one round trip, publish, commit the
    sent mark (or un-mark what Redis refused). (published, error or None).

    ``events``: flow_id -> event of the rows this unit wrote; only older unsent rows (a killed
    run's) come back with their payload (decoding a payload cost more than its PUBLISH)."""
    cur.execute("COMMIT; BEGIN; SET LOCAL synchronous_commit = off; " + CLAIM_SQL,
                {"s": symbols, "limit": limit, "mine": list(events)})
    rows = sorted((i, ch, events[f] if payload is None else payload) for i, ch, payload, f in cur.fetchall())
    sent, error = publish_rows(redis_client, rows, counts)
    message = None
    if error is not None:
        message = f"{type(error).__name__}: {error}"
        cur.execute(UNMARK_SQL, {"e": message[:500], "ids": [r[0] for r in rows[sent:]]})
    cur.execute("COMMIT")
    return sent, message


# The sent mark of rows published by the unit that wrote them (see ``_commit_publish_mark``), and the
# error of those Redis refused (they stay unsent for the relay, as UNMARK_SQL leaves a claimed row).
MARK_SQL = ("UPDATE pattern_outbox SET sent_at = clock_timestamp(), attempts = attempts + 1 "
            "WHERE id = ANY(CAST(%(done)s AS bigint[])) AND sent_at IS NULL")
REFUSED_SQL = ("UPDATE pattern_outbox SET attempts = attempts + 1, last_error = %(e)s "
               "WHERE id = ANY(CAST(%(rest)s AS bigint[])) AND sent_at IS NULL")


MARK_TX = f"BEGIN; SET LOCAL synchronous_commit = off; {MARK_SQL}; COMMIT"


def _publish_mark(cur, redis_client, rows: list[tuple], defer: bool = False
                  ) -> tuple[int, str | None, list[int] | None]:
    """Publish a committed unit's own (outbox id, channel, event) rows, then mark them sent:
    (published, error or None, ids whose mark ``defer`` left to the caller).

    No claim before the PUBLISHes (issue #16 item 2, #13 item 4): the claim (UPDATE .. FOR UPDATE SKIP
    LOCKED over the unsent rows, filtered by each payload's symbol) stood between every event's
    PATTERN_PUBLISHED row and its PUBLISH. Exactly-once does not rest on the claim here: each PUBLISH
    sets its flow's marker in the same script (``publish_rows``), so a relay that claims these rows
    between the COMMIT and the mark (or after a crash in between: they are still unsent) finds the
    marker and does not publish them again, and whichever of the two runs the script first publishes.
    The mark is one statement by primary key with ``synchronous_commit`` off, as the claim was; with
    ``defer`` (every unit of a tick but its last) it rides on the next unit's first round trip
    (``MARK_TX``) instead of costing one of its own. A Redis error is recorded at once, as before."""
    sent, error = publish_rows(redis_client, rows)
    done = [r[0] for r in rows[:sent]]
    if error is None and (defer or not done):
        return sent, None, done
    message = None
    sql, params = MARK_SQL, {"done": done}
    if error is not None:
        message = f"{type(error).__name__}: {error}"
        sql, params = f"{sql}; {REFUSED_SQL}", {**params, "e": message[:500], "rest": [r[0] for r in rows[sent:]]}
    cur.execute(f"BEGIN; SET LOCAL synchronous_commit = off; {sql}; COMMIT", params)
    return sent, message, None


def mark_sent(engine: Engine, ids: Sequence[int]) -> None:
    """The deferred sent mark of a tick's last unit (or of a unit before a failing one)."""
    if not ids:
        return
    key, conn = _connection(engine)
    try:
        with conn.cursor() as cur:
            cur.execute(MARK_TX, {"done": list(ids)})
    except BaseException:
        _discard(key, conn)  # rows stay unsent: the relay claims them and the markers skip the PUBLISH
        raise


@dataclass
class Published:
    """What ``publish_detections`` did: the new rows (detection id, flow id, symbol, pattern), events
    published, the Redis error that held them back (they stay in the outbox), subscribers reached."""

    new: list[tuple]
    published: int
    error: str | None
    subscribers: int


def publish_detections(engine: Engine, redis_client, detections: Sequence, ttl_hours: float) -> Published:
    """Persist detections (detection + outbox + PATTERN_PUBLISHED, one transaction) and publish them
    at once on this process's live connection: between the log row and the PUBLISH there is one
    database round trip (COMMIT + claim), and no connection to open (``quantpipe patterns
    test-event``; issue #15 item 3)."""
    key, conn = _connection(engine)
    committed = False
    try:
        with conn.cursor() as cur:
            events: dict = {}
            cur.execute("BEGIN; " + PERSIST_SQL, persist_params(detections, ttl_hours, events=events))
            new = cur.fetchall()
            events = stored_events(events, new)
            committed = True
            counts: list[int] = []
            sent, error = (_commit_and_publish(cur, redis_client, sorted({d.symbol for d in detections}),
                                               len(new) + 1000, events, counts) if new else (0, None))
            if not new:
                cur.execute("COMMIT")
    except BaseException:
        if not committed:
            try:
                with conn.cursor() as cur:
                    cur.execute("ROLLBACK")
            except Exception:  # noqa: BLE001
                pass
        _discard(key, conn)
        raise
    return Published([tuple(r[:4]) for r in new], sent, error, sum(counts))


def keep_dead_letters(engine: Engine, letters: Sequence) -> None:
    """Dead letters of a call with no good bar, on this process's live connection (one short
    transaction; through a pooled Session it cost more than storing a good bar)."""
    key, conn = _connection(engine)
    try:
        with conn.cursor() as cur:
            cur.execute("BEGIN")
            dead_letters.keep_many(cur, "patterns", letters)
            cur.execute("COMMIT")
    except BaseException:
        _discard(key, conn)  # whatever failed, a fresh connection is the safe next state
        raise


__all__ = ["CHANNEL", "LiveResult", "ingest"]
