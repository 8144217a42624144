"""A universe tick publishes its own rows right after its COMMIT, with no claim before the PUBLISHes
(issue #16 item 2, #13 item 4): exactly-once rests on the per-flow markers of ``publish_rows``.

A relay that claims the rows between the COMMIT and the sent mark publishes them (its script runs
first) and the tick's own script then skips them: each flow reaches a subscriber once, every row ends
sent, attempted once. A crash after the PUBLISHes, before the mark, leaves the rows unsent; the
redelivered tick claims them (the older-unsent path), publishes nothing again and marks them.
A fresh database, so no other test's unsent row sends the tick down the claim path.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.workers.patterns.helpers import collect, store_frame
from workers.patterns import live_path, synthetic
from workers.patterns.publisher import CHANNEL, relay_outbox
from workers.patterns.scanning import ingest_bars
from workers.patterns.window_cache import WindowCache


def _universe(engine, prefix: str) -> dict:
    frames = {f"{prefix}{i}": synthetic.generate(300, seed=300 + i) for i in range(4)}
    frames[f"{prefix}0"] = synthetic.plant_volume_spike(frames[f"{prefix}0"], 299, ratio=4.0)
    frames[f"{prefix}1"] = synthetic.plant_gap_up(frames[f"{prefix}1"], 299, pct=2.0)
    for s, f in frames.items():
        store_frame(engine, s, f.iloc[:299])
    return {s: {"ts": f["ts"].iloc[299].timestamp(), **{k: float(f[k].iloc[299]) for k in
                                                         ("open", "high", "low", "close", "volume")}}
            for s, f in frames.items()}


def _outbox(engine, symbols) -> list[tuple]:
    with engine.connect() as c:
        return c.execute(text("SELECT flow_id::text, sent_at IS NOT NULL, attempts FROM pattern_outbox "
                              "WHERE payload->'data'->>'symbol' = ANY(:s)"), {"s": list(symbols)}).all()


@pytest.fixture()
def fresh(scratch_db):
    from shared_models import migrate

    url, engine = scratch_db
    migrate.upgrade(url)
    yield engine
    live_path._CONNS.clear()  # the process's live connection to this database goes with it


def test_a_relay_between_commit_and_mark_publishes_nothing_twice(fresh, redis_client, monkeypatch):
    bars = _universe(fresh, "ZPOA")
    real, relayed = live_path.publish_rows, []

    def relay_first(client, rows, counts=None):  # another relay claims the committed rows first
        relayed.append(relay_outbox(fresh, client, symbols=list(bars)).published)
        return real(client, rows, counts)

    monkeypatch.setattr(live_path, "publish_rows", relay_first)
    sub = redis_client.pubsub(ignore_subscribe_messages=True)
    sub.subscribe(CHANNEL)
    try:
        out, _ = ingest_bars(fresh, redis_client, "1d", bars, cache=WindowCache(16))
        events = collect(sub, None, timeout=2)
    finally:
        sub.close()
    assert out.new >= 2 and relayed == [out.new]  # the relay ran in between and published them all
    assert out.published == out.new and sorted(e["flow_id"] for e in events) == sorted({e["flow_id"] for e in events})
    assert len(events) == out.new
    assert sorted(r[1:] for r in _outbox(fresh, bars)) == [(True, 1)] * out.new  # sent, attempted once


def test_a_crash_before_the_mark_leaves_rows_unsent_and_the_redelivery_publishes_nothing_again(
        fresh, redis_client, monkeypatch):
    bars = _universe(fresh, "ZPOB")
    real = live_path.publish_rows

    def crash_after(client, rows, counts=None):
        real(client, rows, counts)
        raise ConnectionError("killed after the PUBLISHes")

    sub = redis_client.pubsub(ignore_subscribe_messages=True)
    sub.subscribe(CHANNEL)
    try:
        monkeypatch.setattr(live_path, "publish_rows", crash_after)
        with pytest.raises(ConnectionError):
            ingest_bars(fresh, redis_client, "1d", bars, cache=WindowCache(16))
        first = collect(sub, None, timeout=2)
        assert first and all(not sent for _f, sent, _a in _outbox(fresh, bars))
        monkeypatch.setattr(live_path, "publish_rows", real)
        again, _ = ingest_bars(fresh, redis_client, "1d", bars, cache=WindowCache(16))  # the redelivery
        assert again.new == 0 and again.published == len(first)
        assert not collect(sub, None, timeout=1)
    finally:
        sub.close()
    assert sorted(r[0] for r in _outbox(fresh, bars)) == sorted(e["flow_id"] for e in first)
    assert all(sent for _f, sent, _a in _outbox(fresh, bars))
