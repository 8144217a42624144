"""A universe tick in units (``ingest_bars(unit_symbols=…)``, issue #13 item 4): each unit commits and
publishes before the next one starts, the rows are those of one transaction, and a tick that fails
part-way and is redone writes, dead-letters and publishes everything exactly once."""

from __future__ import annotations

import threading
import time
from collections import Counter

import psycopg2
import pytest
from sqlalchemy import text

from tests.workers.patterns.helpers import collect, store_frame
from workers.patterns import live_path, synthetic
from workers.patterns.publisher import CHANNEL
from workers.patterns.scanning import ingest_bars
from workers.patterns.window_cache import WindowCache

N = 6


def _universe(engine, prefix: str) -> dict:
    """Six synthetic histories, each with a volume spike planted on its new bar, plus one bad bar."""
    bars = {}
    for i in range(N):
        f = synthetic.plant_volume_spike(synthetic.generate(300, seed=600 + i), 299, ratio=4.0)
        store_frame(engine, f"{prefix}{i}", f.iloc[:299])
        bars[f"{prefix}{i}"] = {"ts": f["ts"].iloc[299].timestamp(),
                                **{k: float(f[k].iloc[299]) for k in ("open", "high", "low", "close", "volume")}}
    bars[f"{prefix}BAD"] = {**bars[f"{prefix}0"], "high": -1.0}
    return bars


def _rows(engine, prefix: str) -> list[tuple]:
    """(symbol without prefix, pattern, bar time, confidence, indicators) of every detection, sorted."""
    with engine.connect() as c:
        return sorted(c.execute(text(
            "SELECT substr(symbol, :n), pattern, bar_ts, confidence, indicators::text FROM pattern_detections "
            "WHERE symbol LIKE :p"), {"n": len(prefix) + 1, "p": prefix + "%"}).all())


def _counts(engine, prefix: str) -> dict:
    with engine.connect() as c:
        return {k: c.execute(text(q), {"p": prefix + "%"}).scalar_one() for k, q in {
            "detections": "SELECT count(*) FROM pattern_detections WHERE symbol LIKE :p",
            "outbox_sent": "SELECT count(*) FROM pattern_outbox WHERE payload->'data'->>'symbol' LIKE :p "
                           "AND sent_at IS NOT NULL",
            "outbox": "SELECT count(*) FROM pattern_outbox WHERE payload->'data'->>'symbol' LIKE :p",
            "published": "SELECT count(*) FROM integration_events WHERE checkpoint = 'PATTERN_PUBLISHED' "
                         "AND symbol LIKE :p",
            "letters": "SELECT count(*) FROM dead_letters WHERE pool = 'patterns' AND payload->>'symbol' LIKE :p",
        }.items()}


@pytest.fixture()
def fresh(scratch_db):
    from shared_models import migrate

    url, engine = scratch_db
    migrate.upgrade(url)
    yield engine
    live_path._CONNS.clear()


def test_units_write_what_one_transaction_writes_and_publish_unit_by_unit(fresh, redis_client):
    one, units = _universe(fresh, "ZLUA"), _universe(fresh, "ZLUB")
    sub = redis_client.pubsub(ignore_subscribe_messages=True)
    sub.subscribe(CHANNEL)
    try:
        a, bad_a = ingest_bars(fresh, redis_client, "1d", one, cache=WindowCache(16), unit_symbols=100,
                               dead_letter_source="patterns.on_bars")
        b, bad_b = ingest_bars(fresh, redis_client, "1d", units, cache=WindowCache(16), unit_symbols=2,
                               dead_letter_source="patterns.on_bars")
        events = collect(sub, a.new + b.new, timeout=10)
    finally:
        sub.close()
    assert set(bad_a) == {"ZLUABAD"} and set(bad_b) == {"ZLUBBAD"}
    assert a.new >= N and (a.bars, a.detected, a.new, a.published) == (b.bars, b.detected, b.new, b.published)
    assert _rows(fresh, "ZLUA") == _rows(fresh, "ZLUB")
    assert _counts(fresh, "ZLUA") == _counts(fresh, "ZLUB") == {
        "detections": a.new, "outbox_sent": a.new, "outbox": a.new, "published": a.new, "letters": 1}
    # Unit by unit: every event of the first unit (symbols 0 and 1) was published before the last
    # unit (symbols 4 and 5) wrote its first PATTERN_PUBLISHED checkpoint.
    mine = [e for e in events if e["data"]["symbol"].startswith("ZLUB")]
    assert len(mine) == b.new
    first_unit = max(e["timestamp"] for e in mine if e["data"]["symbol"] in ("ZLUB0", "ZLUB1"))
    with fresh.connect() as c:
        last_unit = c.execute(text("SELECT extract(epoch FROM min(timestamp))::float8 FROM integration_events "
                                   "WHERE checkpoint = 'PATTERN_PUBLISHED' AND symbol IN ('ZLUB4', 'ZLUB5')")
                              ).scalar_one()
    assert first_unit < last_unit


@pytest.mark.parametrize("where", ["begin", "finish"])
def test_a_tick_failing_in_a_later_unit_is_redone_exactly_once(fresh, redis_client, monkeypatch, where):
    """``begin``: the third unit's first round trip fails (the second unit is persisting beside it);
    ``finish``: the second unit's connection is gone when it persists, while the third is open."""
    bars = _universe(fresh, "ZLUC")
    real, calls = getattr(live_path, where), []

    def third_fails(*args, **kw):
        calls.append(1)
        if where == "begin" and len(calls) == 3:
            raise ConnectionError("worker lost its database in the third unit")
        if where == "finish" and len(calls) == 2:
            args[0].conn.close()  # the real finish now fails on a closed connection
        return real(*args, **kw)

    sub = redis_client.pubsub(ignore_subscribe_messages=True)
    sub.subscribe(CHANNEL)
    try:
        monkeypatch.setattr(live_path, where, third_fails)
        with pytest.raises((ConnectionError, psycopg2.InterfaceError)):
            ingest_bars(fresh, redis_client, "1d", bars, cache=WindowCache(16), unit_symbols=2,
                        dead_letter_source="patterns.on_bars")
        partial = _counts(fresh, "ZLUC")
        assert partial["letters"] == 0  # the refused bar goes with the last unit, which never ran
        assert 0 < partial["detections"] == partial["outbox_sent"] == partial["published"]
        monkeypatch.setattr(live_path, where, real)
        again, bad = ingest_bars(fresh, redis_client, "1d", bars, cache=WindowCache(16), unit_symbols=2,
                                 dead_letter_source="patterns.on_bars")  # the redelivery
        events = collect(sub, None, timeout=2)
    finally:
        sub.close()
    assert set(bad) == {"ZLUCBAD"}
    done = _counts(fresh, "ZLUC")
    assert done == {"detections": done["detections"], "outbox_sent": done["detections"],
                    "outbox": done["detections"], "published": done["detections"], "letters": 1}
    assert again.new == done["detections"] - partial["detections"] > 0
    flows = Counter(e["flow_id"] for e in events if e["data"]["symbol"].startswith("ZLUC"))
    assert len(flows) == done["detections"] and set(flows.values()) == {1}  # each flow published once


def test_a_unit_read_after_the_previous_units_commit_still_publishes_its_own_rows(fresh, redis_client, monkeypatch):
    """Units overlap (``live_tick``): unit i + 1's read can see unit i committed and not yet marked
    sent. Those rows are ``pending`` for it, not older unsent rows: it keeps the path without a claim.
    Forced here: each read waits for the previous unit's COMMIT, each mark for the next unit's read."""
    bars = _universe(fresh, "ZLUD")
    del bars["ZLUDBAD"]
    units = [sorted(bars)[i:i + 2] for i in range(0, N, 2)]
    real_begin, real_mark, claims = live_path.begin, live_path._publish_mark, []
    opened = [threading.Event() for _ in units]

    def committed(symbols) -> bool:
        with fresh.connect() as c:
            return c.execute(text("SELECT count(*) FROM pattern_outbox WHERE payload->'data'->>'symbol' = ANY(:s)"),
                             {"s": symbols}).scalar_one() > 0

    def begin(engine, timeframe, tier, unit_bars, *args, **kw):
        i = units.index(sorted(unit_bars))
        deadline = time.monotonic() + 10
        while i and not committed(units[i - 1]) and time.monotonic() < deadline:
            time.sleep(0.01)
        try:
            return real_begin(engine, timeframe, tier, unit_bars, *args, **kw)
        finally:
            opened[i].set()

    def publish_mark(cur, client, rows, defer=False):
        i = next(k for k, u in enumerate(units) if rows and rows[0][2]["data"]["symbol"] in u)
        if i + 1 < len(units):
            opened[i + 1].wait(10)
        return real_mark(cur, client, rows, defer)

    def claim(*args, **kw):
        claims.append(args[2])
        return real_claim(*args, **kw)

    real_claim = live_path._commit_and_publish
    monkeypatch.setattr(live_path, "begin", begin)
    monkeypatch.setattr(live_path, "_publish_mark", publish_mark)
    monkeypatch.setattr(live_path, "_commit_and_publish", claim)
    sub = redis_client.pubsub(ignore_subscribe_messages=True)
    sub.subscribe(CHANNEL)
    try:
        out, _ = ingest_bars(fresh, redis_client, "1d", bars, cache=WindowCache(16), unit_symbols=2)
        events = collect(sub, out.new, timeout=10)
    finally:
        sub.close()
    assert all(e.is_set() for e in opened) and claims == []
    assert out.new >= N and out.published == out.new == len({e["flow_id"] for e in events}) == len(events)
    assert _counts(fresh, "ZLUD") == {"detections": out.new, "outbox_sent": out.new, "outbox": out.new,
                                      "published": out.new, "letters": 0}
