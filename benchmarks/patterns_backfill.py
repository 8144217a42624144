"""Backfill benchmark: the whole daily universe through every detector.

    python benchmarks/patterns_backfill.py [--limit N]

Reads data/prices/daily/*.csv.gz straight into numpy arrays (split-adjusted by the
loader's ``read_price_file``; parsing is not timed and PostgreSQL is not involved),
then times, in the same process and on the same arrays:

- baseline: a plain loop of TA-Lib's 61 candlestick functions over every symbol;
- full scan: ``detection.scan_hits`` per symbol = the 61 candlesticks with their
  confidence + the 11 custom detectors (volume, breakout, support/resistance, gaps,
  RSI, SMA crosses), i.e. everything the daily tier computes before persisting.

It checks that the full scan's candlestick hits equal the baseline's and that every
hit (pattern, index, confidence, indicators) equals the slow path's (``reference_hits`` in
``tests/workers/patterns/reference_detectors.py``: frozen copies of the per-function
candlestick confidence and of the custom detectors as first written, each on its own
bars, every intermediate over the full series; run once, not timed), and
prints wall times, bars per second, the same ratio in process CPU time (informative) and, last,
``ratio backfill_vs_talib = full / baseline (goal <= 2)``. Goal also: full scan <= 5 s.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import talib

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loaders.prices import read_price_file  # noqa: E402
from tests.workers.patterns.reference_detectors import reference_hits, same_hits  # noqa: E402
from workers.patterns import candlesticks  # noqa: E402
from workers.patterns.custom import Bars  # noqa: E402
from workers.patterns.detection import scan_hits  # noqa: E402

GOAL = 2.0


def load_arrays(limit: int | None) -> list[tuple[str, tuple[np.ndarray, ...]]]:
    files = sorted((ROOT / "data/prices/daily").glob("*.csv.gz"))[:limit]
    out = []
    for f in files:
        b = read_price_file(f).bars
        out.append((f.name.split(".")[0], tuple(np.ascontiguousarray(b[c].to_numpy(dtype=float))
                                                for c in ("open", "high", "low", "close", "volume"))))
    return out


def baseline(series) -> tuple[float, int, float]:
    t0, c0 = time.perf_counter(), time.process_time()
    hits = 0
    for _, (o, h, l, c, _v) in series:
        for fn in candlesticks.FUNCTIONS:
            hits += int(np.count_nonzero(getattr(talib, fn)(o, h, l, c)))
    return time.perf_counter() - t0, hits, time.process_time() - c0


def full_scan(series) -> tuple[float, int, int, float]:
    t0, c0 = time.perf_counter(), time.process_time()
    candle_hits = custom_hits = 0
    for _, arrays in series:
        for name, _direction, idx, _conf, ind in scan_hits(Bars(*arrays)):
            if "talib_value" in ind:
                candle_hits += idx.size
            else:
                custom_hits += idx.size
    return time.perf_counter() - t0, candle_hits, custom_hits, time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None, help="only the first N tickers")
    ap.add_argument("--repeat", type=int, default=5, help="best of N runs (baseline and full scan alternate)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    series = load_arrays(args.limit)
    n_bars = sum(len(a[0]) for _, a in series)
    print(f"loaded {len(series)} tickers, {n_bars:,} bars in {time.perf_counter() - t0:.1f} s (CSV parse, not timed)")
    runs = [(baseline(series), full_scan(series)) for _ in range(args.repeat)]  # interleaved: same load for both
    base = min((r[0] for r in runs), key=lambda r: r[0])
    full = min((r[1] for r in runs), key=lambda r: r[0])
    assert full[1] == base[1], f"candlestick hits differ: full scan {full[1]} vs TA-Lib loop {base[1]}"
    for symbol, arrays in series:
        assert same_hits(scan_hits(Bars(*arrays)), reference_hits(arrays)), f"{symbol}: hits differ from the slow path"
    print(f"every hit of {len(series)} tickers equals the slow path's (pattern, index, confidence, indicators)")
    print(f"baseline  TA-Lib 61 CDL loop : {base[0]:6.2f} s  {n_bars / base[0] / 1e6:5.2f} M bars/s  "
          f"{base[1]:,} candle hits")
    print(f"full scan all detectors     : {full[0]:6.2f} s  {n_bars / full[0] / 1e6:5.2f} M bars/s  "
          f"{full[1]:,} candle + {full[2]:,} custom hits")
    cpu_base, cpu_full = min(r[0][2] for r in runs), min(r[1][3] for r in runs)
    print(f"process CPU time, best of {args.repeat}: TA-Lib loop {cpu_base:.2f} s, full scan {cpu_full:.2f} s, "
          f"{cpu_full / cpu_base:.2f}x (less sensitive to other processes than the wall ratio below)")
    print(f"full scan <= 5 s wall: {'met' if full[0] <= 5 else 'NOT met'}; "
          f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"ratio backfill_vs_talib = {full[0] / base[0]:.2f} (goal <= {GOAL:g})")


if __name__ == "__main__":
    main()
