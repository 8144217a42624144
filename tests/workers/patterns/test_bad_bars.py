"""Bad bars on a real worker are dead-lettered naming the field, never fail the task, never block
the good bars of the same call; a rewritten bar is recorded as a correction."""

import uuid

from sqlalchemy import text

from workers.patterns import synthetic

GOOD = {"ts": 1617235200.0, "open": 10.0, "high": 11.0, "low": 9.0, "close": 10.5, "volume": 1000.0}
NAN, INF = float("nan"), float("inf")

# issue #9 item 3, one per line: (symbol, bar, field named)
BAD = [
    ("BADA", "a string bar", "bar"), ("BADB", [1, 2, 3], "bar"),
    ("BADC", {**GOOD, "ts": 1e20}, "ts"), ("BADD", {**GOOD, "ts": True}, "ts"),
    ("BADE", {**GOOD, "open": NAN}, "open"), ("BADF", {**GOOD, "volume": INF}, "volume"),
    ("A" * 40, GOOD, "symbol"), ("AA\x00PL", GOOD, "symbol"), ("'; DROP TABLE market_bars; --", GOOD, "symbol"),
    (None, GOOD, "symbol"), ("ſPY", GOOD, "symbol"),
    ("BADG", {**GOOD, "high": INF}, "high"), ("BADH", {**GOOD, "ts": "9999-01-01"}, "ts"),
    ("BADI", {**GOOD, "volume": 1e308}, "volume"),
]


def _dead_letters(engine, source, since_id):
    with engine.connect() as c:
        return c.execute(text("SELECT field, reason, payload FROM dead_letters WHERE source = :s AND id > :i "
                              "ORDER BY id"), {"s": source, "i": since_id}).all()


def _max_id(engine):
    with engine.connect() as c:
        return c.execute(text("SELECT COALESCE(max(id), 0) FROM dead_letters")).scalar()


def test_each_bad_bar_of_the_issue_is_dead_lettered_by_field(workers, engine):
    from workers.patterns.tasks import on_bar

    start = _max_id(engine)
    results = [on_bar.delay(sym, "1d", bar).get(timeout=60) for sym, bar, _ in BAD]
    assert [r.get("field") for r in results] == [f for _, _, f in BAD], results
    kept = _dead_letters(engine, "patterns.on_bar", start)
    assert [k[0] for k in kept] == [f for _, _, f in BAD]
    assert all(k[1].startswith(f"{k[0]}: ") for k in kept)
    with engine.connect() as c:
        stored = c.execute(text("SELECT count(*) FROM market_bars WHERE symbol LIKE 'BAD%' OR ts > '2100-01-01' "
                                "OR volume > 1e12 OR high = 'Infinity'")).scalar()
    assert stored == 0
    # a bad call shape is refused as a whole, with its field
    whole = on_bar.delay("BADJ", "5m", GOOD).get(timeout=60)
    assert whole["field"] == "timeframe"


def test_one_bad_bar_never_blocks_the_good_ones_of_a_universe_tick(workers, engine):
    from workers.patterns.tasks import on_bars

    start = _max_id(engine)
    f = synthetic.generate(3, seed=11)
    good = {f"GOODU{i}": {"ts": f["ts"].iloc[i].timestamp(), **{k: float(f[k].iloc[i]) for k in
                                                                ("open", "high", "low", "close", "volume")}}
            for i in range(3)}
    bars = {**good, **{sym: bar for sym, bar, _ in BAD if sym is not None}, "goodu0": GOOD}  # JSON keys are strings
    out = on_bars.delay("1d", bars).get(timeout=60)
    assert out["bars"] == 3, out
    assert set(out["rejected"]) == set(bars) - set(good)
    assert out["rejected"]["goodu0"].startswith("symbol: ")  # GOODU0 twice in one call (after upper-casing)
    kept = _dead_letters(engine, "patterns.on_bars", start)
    assert len(kept) == len(bars) - 3 and all(k[0] and k[1] for k in kept)
    with engine.connect() as c:
        stored = c.execute(text("SELECT count(*) FROM market_bars WHERE symbol LIKE 'GOODU%'")).scalar()
    assert stored == 3
    for shape in (["not", "a", "dict"], "x", None):
        assert on_bars.delay("1d", shape).get(timeout=60)["field"] == "bars"


def test_a_rewritten_bar_is_a_correction_and_an_identical_resend_is_a_no_op(workers, engine):
    from workers.patterns.tasks import on_bar, on_bars

    sym = "CORR" + uuid.uuid4().hex[:4].upper()
    bar = {**GOOD}
    assert "rejected" not in on_bar.delay(sym, "1d", bar).get(timeout=60)

    def corrections():
        with engine.connect() as c:
            return c.execute(text("SELECT old_close, new_close, old_volume, new_volume, source "
                                  "FROM market_bar_corrections WHERE symbol = :s ORDER BY id"), {"s": sym}).all()

    def xmin():
        with engine.connect() as c:
            return c.execute(text("SELECT xmin::text FROM market_bars WHERE symbol = :s"), {"s": sym}).scalar()

    before = xmin()
    on_bar.delay(sym, "1d", dict(bar)).get(timeout=60)  # identical re-send (a redelivery)
    assert corrections() == [] and xmin() == before, "an identical re-send rewrote the bar"
    on_bar.delay(sym, "1d", {**bar, "close": 10.75, "volume": 1500.0}).get(timeout=60)
    assert corrections() == [(10.5, 10.75, 1000.0, 1500.0, "patterns.on_bar")]
    on_bars.delay("1d", {sym: {**bar, "close": 10.25}}).get(timeout=60)
    assert corrections()[-1][:2] == (10.75, 10.25) and corrections()[-1][4] == "patterns.on_bars"
    with engine.connect() as c:
        assert c.execute(text("SELECT close FROM market_bars WHERE symbol = :s"), {"s": sym}).scalar() == 10.25
