"""The price loader: split adjustment on real bars, rejection with reasons, idempotent upserts."""

import gzip
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import text

from loaders.prices import PriceFileError, load_prices, read_bars, read_price_file

ROOT = Path(__file__).resolve().parents[2]
DAILY = ROOT / "data/prices/daily"


def test_split_adjustment_removes_the_aapl_2020_split():
    """Raw AAPL closes fall ~4x across the 2020-08-31 4:1 split; adjusted bars must be continuous."""
    pf = read_price_file(DAILY / "AAPL.csv.gz")
    bars = pf.bars.set_index(pf.bars["ts"].dt.strftime("%Y-%m-%d"))
    raw = pd.read_csv(DAILY / "AAPL.csv.gz").set_index("timestamp")
    assert raw.loc["2020-08-28", "close"] / raw.loc["2020-08-31", "close"] > 3.5
    jump = bars.loc["2020-08-31", "close"] / bars.loc["2020-08-28", "close"]
    assert 0.9 < jump < 1.1
    # close equals adjusted_close, and the high/low scale by the same factor
    assert bars.loc["2020-08-28", "close"] == pytest.approx(raw.loc["2020-08-28", "adjusted_close"])
    factor = raw.loc["2020-08-28", "adjusted_close"] / raw.loc["2020-08-28", "close"]
    assert bars.loc["2020-08-28", "high"] == pytest.approx(raw.loc["2020-08-28", "high"] * factor)
    assert (pf.bars["high"] >= pf.bars["low"]).all() and pf.bars["adjusted"].all()
    assert pf.timeframe == "1d" and pf.symbol == "AAPL" and pf.rejected.empty


def test_benchmark_and_intraday_layouts():
    g = read_price_file(ROOT / "data/prices/benchmark/GSPC.csv.gz")
    assert (g.symbol, g.timeframe) == ("GSPC", "1d")
    raw = pd.read_csv(ROOT / "data/prices/benchmark/GSPC.csv.gz")
    assert g.bars["close"].to_numpy() == pytest.approx(raw["Adj Close"].to_numpy())
    i = read_price_file(ROOT / "data/prices/intraday/FXY_1min.csv.gz")
    assert (i.symbol, i.timeframe) == ("FXY", "1min") and not i.bars["adjusted"].any()
    assert str(i.bars["ts"].iloc[0]) == "2023-07-10 13:30:00+00:00" or i.bars["ts"].is_monotonic_increasing


def _dirty_copy(tmp_path: Path) -> Path:
    """Real ABT rows with one defect of each kind planted in them."""
    rows = gzip.open(DAILY / "ABT.csv.gz", "rt").read().splitlines()
    header, body = rows[0], rows[1:41]
    cols = header.split(",")
    ih, iv, ic = cols.index("high"), cols.index("volume"), cols.index("close")

    def edit(i: int, col: int, value: str) -> None:
        parts = body[i].split(",")
        parts[col] = value
        body[i] = ",".join(parts)

    edit(3, ic, "")                       # NaN close
    edit(5, ih, "1.0")                    # high < low
    edit(7, iv, "-5")                     # negative volume
    body.insert(10, body[9])              # duplicate timestamp
    body[20], body[21] = body[21], body[20]  # unsorted (one bar goes back in time)
    out = tmp_path / "ABTX.csv.gz"
    with gzip.open(out, "wt") as fh:
        fh.write("\n".join([header, *body]) + "\n")
    return out


def test_bad_bars_are_rejected_with_reasons_and_dead_lettered(engine, tmp_path):
    path = _dirty_copy(tmp_path)
    pf = read_price_file(path)
    reasons = pf.rejected.set_index("reason")["field"].to_dict()
    assert reasons == {"missing": "close", "below low": "high", "negative": "volume",
                       "duplicate timestamp": "timestamp", "unsorted timestamp": "timestamp"}
    assert len(pf.bars) == 41 - 5
    report = load_prices(engine, [path])
    assert report.loaded == 36 and sum(report.rejected.values()) == 5
    with engine.connect() as c:
        kept = c.execute(text("SELECT reason, field, payload->>'timestamp' FROM dead_letters "
                              "WHERE source = 'load-prices:ABTX.csv.gz'")).all()
        n = c.execute(text("SELECT count(*) FROM market_bars WHERE symbol = 'ABTX'")).scalar()
    assert len(kept) == 5 and n == 36
    # reloading neither duplicates the bars nor the dead letters
    load_prices(engine, [path])
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM dead_letters "
                              "WHERE source = 'load-prices:ABTX.csv.gz'")).scalar() == 5


def test_load_is_idempotent_and_readable(engine):
    seen = []
    files = [DAILY / "AAPL.csv.gz", ROOT / "data/prices/benchmark/GSPC.csv.gz"]
    first = load_prices(engine, files, progress=seen.append)
    assert [f.symbol for f in seen] == ["AAPL", "GSPC"]
    assert first.loaded == 2340 + 3017 and first.rejected == {}
    with engine.connect() as c:
        before = c.execute(text("SELECT count(*), sum(close) FROM market_bars WHERE symbol IN ('AAPL','GSPC')")).one()
        xmin = c.execute(text("SELECT max(xmin::text::bigint) FROM market_bars WHERE symbol = 'AAPL'")).scalar()
    load_prices(engine, files)
    with engine.connect() as c:
        after = c.execute(text("SELECT count(*), sum(close) FROM market_bars WHERE symbol IN ('AAPL','GSPC')")).one()
        xmin2 = c.execute(text("SELECT max(xmin::text::bigint) FROM market_bars WHERE symbol = 'AAPL'")).scalar()
    assert before == after and before[0] == 2340 + 3017
    assert xmin == xmin2, "an unchanged bar must not be rewritten"
    frame = read_bars(engine, ["AAPL"], start=pd.Timestamp("2020-08-28", tz="UTC"),
                      end=pd.Timestamp("2020-08-31", tz="UTC"))
    assert list(frame["ts"].dt.strftime("%Y-%m-%d")) == ["2020-08-28", "2020-08-31"]


def test_unknown_layout_names_the_file(tmp_path, engine):
    bad = tmp_path / "x.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(PriceFileError, match="x.csv: line 1: header"):
        read_price_file(bad)
    report = load_prices(engine, [bad, DAILY / "KO.csv.gz"])  # the bad file does not block the good one
    assert [f.path for f in report.failed] == [str(bad)] and "x.csv: line 1" in report.failed[0].error
    assert report.symbols == ["KO"] and report.loaded > 2000
    with engine.connect() as c:
        kept = c.execute(text("SELECT field, reason, payload->>'path' FROM dead_letters "
                              "WHERE source = 'load-prices:x.csv'")).all()
    assert kept == [("file", report.failed[0].error, str(bad))]
    with pytest.raises(PriceFileError, match="does not exist"):
        load_prices(engine, [tmp_path / "missing"])


def test_stored_bars_round_trip_exactly(engine):
    """Detections on stored bars must equal detections on the file: no float precision lost in COPY."""
    import numpy as np

    path = DAILY / "MMM.csv.gz"
    load_prices(engine, [path])
    stored = read_bars(engine, ["MMM"])
    parsed = read_price_file(path).bars
    for col in ("open", "high", "low", "close", "volume"):
        assert np.array_equal(stored[col].to_numpy(), parsed[col].to_numpy()), col


def test_a_reload_with_a_changed_bar_is_recorded_as_a_correction(engine, tmp_path):
    rows = gzip.open(DAILY / "PG.csv.gz", "rt").read().splitlines()[:6]
    path = tmp_path / "PGCORR.csv"
    path.write_text("\n".join(rows) + "\n")
    load_prices(engine, [path])
    load_prices(engine, [path])  # identical: nothing recorded
    cols = rows[0].split(",")
    parts = rows[3].split(",")
    parts[cols.index("volume")] = str(int(parts[cols.index("volume")]) + 100)
    path.write_text("\n".join(rows[:3] + [",".join(parts)] + rows[4:]) + "\n")
    load_prices(engine, [path])
    with engine.connect() as c:
        got = c.execute(text("SELECT new_volume - old_volume, source FROM market_bar_corrections "
                             "WHERE symbol = 'PGCORR'")).all()
    assert got == [(100.0, "load-prices:PGCORR.csv")]
