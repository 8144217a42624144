"""Shared test data for the discovery pool: the real disclosure files and a few real price files."""

from __future__ import annotations

from pathlib import Path

from tests.support import ROOT

CONGRESS = ROOT / "data" / "congress"
PRICES = ROOT / "data" / "prices"
# Often-traded tickers with daily bars, plus the benchmark.
TEST_TICKERS = ("AAPL", "MSFT", "T", "DIS", "BAC", "NFLX")
_STATE: dict = {}


def price_files() -> list[Path]:
    return [PRICES / "benchmark" / "GSPC.csv.gz"] + [PRICES / "daily" / f"{t}.csv.gz" for t in TEST_TICKERS]


def ensure_loaded(engine):
    """Load the real congress files and the test price files once per test process (both idempotent)."""
    if "report" not in _STATE:
        from loaders.congress import load_congress
        from loaders.prices import load_prices

        load_prices(engine, price_files())
        _STATE["report"] = load_congress(engine, [CONGRESS])
    return _STATE["report"]
