"""Scans on a real worker publish the exact DESIGN §4 event, log PATTERN_PUBLISHED, and are idempotent."""

import pytest
from sqlalchemy import text

from tests.workers.patterns.helpers import check_event, collect, load_daily, store_frame
from workers.patterns.publisher import CHANNEL


@pytest.fixture(scope="module")
def aapl(engine):
    load_daily(engine, "AAPL")
    return "AAPL"


def test_scan_publishes_contract_events_once(workers, engine, redis_client, aapl):
    from workers.patterns.tasks import scan_symbol

    sub = redis_client.pubsub(ignore_subscribe_messages=True)
    sub.subscribe(CHANNEL)
    try:
        first = scan_symbol.delay(aapl, "daily", "2021-03-31").get(timeout=60)
        assert first["new"] == first["detected"] > 5 and first["published"] == first["new"]
        events = collect(sub, first["new"], timeout=10)
        assert len(events) == first["new"]
        for ev in events:
            check_event(ev)
            assert ev["data"]["symbol"] == "AAPL" and ev["data"]["tier"] == "daily"
        flows = [ev["flow_id"] for ev in events]
        assert len(set(flows)) == len(flows)
        with engine.connect() as c:
            logged = c.execute(text(
                "SELECT flow_id::text, symbol, pattern_name, confidence, event_type, source_system, channel "
                "FROM integration_events WHERE checkpoint = 'PATTERN_PUBLISHED' AND flow_id = ANY(CAST(:f AS uuid[]))"),
                {"f": flows}).all()
            by_flow = {r[0]: r for r in logged}
            assert set(by_flow) == set(flows)
            for ev in events:
                row = by_flow[ev["flow_id"]]
                assert row[1:3] == (ev["data"]["symbol"], ev["data"]["pattern"])
                assert float(row[3]) == ev["data"]["confidence"]
                assert row[4:] == ("pattern_detected", "TickStockPL", CHANNEL)
            unsent = c.execute(text("SELECT count(*) FROM pattern_outbox WHERE sent_at IS NULL "
                                    "AND flow_id = ANY(CAST(:f AS uuid[]))"), {"f": flows}).scalar()
            assert unsent == 0
        # the same bars scanned again: no new detection, no event, no log row
        again = scan_symbol.delay(aapl, "daily", "2021-03-31").get(timeout=60)
        assert again["detected"] == first["detected"] and again["new"] == 0 and again["published"] == 0
        assert collect(sub, None, timeout=1.5) == []
        with engine.connect() as c:
            n = c.execute(text("SELECT count(*) FROM pattern_detections WHERE symbol = 'AAPL' AND tier = 'daily' "
                               "AND bar_ts > '2021-03-31'")).scalar()
            logs = c.execute(text("SELECT count(*) FROM integration_events i JOIN pattern_detections d "
                                  "ON d.flow_id = i.flow_id WHERE d.symbol = 'AAPL' AND d.bar_ts > '2021-03-31'")).scalar()
        assert n == first["new"] and logs == first["new"]
    finally:
        sub.close()


def test_live_bar_publishes_its_patterns_and_bad_bar_is_dead_lettered(workers, engine, redis_client):
    """A synthetic series with a planted 5x volume spike on its last bar, fed through patterns.on_bar."""
    from sqlalchemy import text as sql

    from loaders.prices import PriceFrame, write_price_frame
    from workers.patterns import synthetic
    from workers.patterns.tasks import on_bar

    frame = synthetic.plant_volume_spike(synthetic.generate(80, seed=7), 79, ratio=5.0)
    hist, last = frame.iloc[:79], frame.iloc[79]
    hist = hist.assign(adjusted=True)
    raw = engine.raw_connection()
    try:
        import pandas as pd

        write_price_frame(raw, PriceFrame(__import__("pathlib").Path("SYNLIVE.csv"), "SYNLIVE", "1d", hist,
                                          pd.DataFrame(columns=["reason", "field"])))
        raw.commit()
    finally:
        raw.close()
    sub = redis_client.pubsub(ignore_subscribe_messages=True)
    sub.subscribe(CHANNEL)
    try:
        bar = {"ts": last["ts"].timestamp(), **{k: float(last[k]) for k in ("open", "high", "low", "close", "volume")}}
        out = on_bar.delay("SYNLIVE", "1d", bar).get(timeout=60)
        events = [e for e in collect(sub, out["published"], timeout=10)]
        assert out["published"] == out["new"] >= 1 and len(events) == out["published"]
        spike = [e for e in events if e["data"]["pattern"] == "Volume_Spike"]
        assert len(spike) == 1 and spike[0]["data"]["indicators"]["relative_volume"] == pytest.approx(5.0, abs=0.01)
        assert spike[0]["data"]["indicators"]["bar_time"] == bar["ts"]
        for e in events:
            check_event(e)
        # the same bar again (redelivery): nothing new
        assert on_bar.delay("SYNLIVE", "1d", bar).get(timeout=60)["new"] == 0
        bad = on_bar.delay("SYNLIVE", "1d", {**bar, "high": 1.0}).get(timeout=60)
        assert bad["rejected"].startswith("high:")
        with engine.connect() as c:
            dl = c.execute(sql("SELECT field, reason FROM dead_letters WHERE source = 'patterns.on_bar' "
                               "AND payload->>'symbol' = 'SYNLIVE'")).all()
        assert dl and dl[-1][0] == "high"
    finally:
        sub.close()


def test_universe_bar_batch_on_worker_matches_per_symbol_detection(workers, engine, redis_client):
    from workers.patterns import synthetic
    from workers.patterns.detection import detect_frame
    from workers.patterns.tasks import on_bars

    symbols = [f"SYNB{i}" for i in range(6)]
    frames = {s: synthetic.generate(300, seed=100 + i) for i, s in enumerate(symbols)}
    frames["SYNB0"] = synthetic.plant_volume_spike(frames["SYNB0"], 299, ratio=4.0)
    frames["SYNB1"] = synthetic.plant_gap_up(frames["SYNB1"], 299, pct=2.0)
    for s, f in frames.items():
        store_frame(engine, s, f.iloc[:299])
    bars = {s: {"ts": f["ts"].iloc[299].timestamp(),
                **{k: float(f[k].iloc[299]) for k in ("open", "high", "low", "close", "volume")}}
            for s, f in frames.items()}
    bars["SYNBAD"] = {**bars["SYNB2"], "volume": -1}
    expected = {(d.symbol, d.pattern) for s, f in frames.items()
                for d in detect_frame(s, f.iloc[-261:], "daily") if d.bar_ts == f["ts"].iloc[299]}
    assert ("SYNB0", "Volume_Spike") in expected and ("SYNB1", "Gap_Up") in expected
    sub = redis_client.pubsub(ignore_subscribe_messages=True)
    sub.subscribe(CHANNEL)
    try:
        out = on_bars.delay("1d", bars).get(timeout=60)
        events = collect(sub, out["published"], timeout=10)
    finally:
        sub.close()
    assert list(out["rejected"]) == ["SYNBAD"] and out["rejected"]["SYNBAD"].startswith("volume: ")
    assert out["new"] == out["published"] == len(events) == len(expected)
    assert {(e["data"]["symbol"], e["data"]["pattern"]) for e in events} == expected
    with engine.connect() as c:
        stored = dict(c.execute(text("SELECT flow_id::text, payload FROM pattern_outbox WHERE flow_id = "
                                     "ANY(CAST(:f AS uuid[]))"), {"f": [e["flow_id"] for e in events]}).all())
    for e in events:
        check_event(e)
        assert e["data"] == stored[e["flow_id"]]["data"]  # published from memory = what the outbox keeps
    assert on_bars.delay("1d", bars).get(timeout=60)["new"] == 0  # redelivered batch: nothing twice
