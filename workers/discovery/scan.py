"""Scans: read a politician's trades and prices, run every analysis, upsert the findings.

``scan_politician`` is the unit of one Celery task (one transaction);
``scan_network`` is the chord callback's cross-member work (network + experiments).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sqlalchemy import text
from sqlalchemy.orm import Session

from shared_models.settings import DiscoverySettings

from . import anomalies, cycles, event_study, experiment, habits, network, store
from .findings import DIRECTION, TRADE_FRAME_COLUMNS, trade_frame

BENCHMARK = "GSPC"
PRICE_LOOKBACK_DAYS = 380  # > 250 trading days of estimation window
PRICE_LOOKAHEAD_DAYS = 100  # > 60 trading days of event window


class UnknownPolitician(LookupError):
    pass


@dataclass(frozen=True)
class ScanSummary:
    politician_id: int
    trades: int
    patterns: int
    anomalies: int
    written: int
    events_studied: int

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def load_trades(session: Session, politician_id: int) -> pd.DataFrame:
    rows = session.execute(text(f"SELECT {', '.join(TRADE_FRAME_COLUMNS)} FROM trades WHERE politician_id = :p"),
                           {"p": politician_id}).mappings().all()
    return trade_frame([dict(r) for r in rows])


def load_closes(session: Session, windows: pd.DataFrame) -> dict[str, pd.Series]:
    """Adjusted daily closes per symbol, only within each symbol's [start, end] window."""
    if windows.empty:
        return {}
    rows = session.execute(text("""
        SELECT b.symbol, b.ts, b.close FROM market_bars b
        JOIN unnest(CAST(:symbols AS text[]), CAST(:starts AS timestamptz[]), CAST(:ends AS timestamptz[]))
             AS w(symbol, s, e) ON b.symbol = w.symbol AND b.ts BETWEEN w.s AND w.e
        WHERE b.timeframe = '1d' ORDER BY b.symbol, b.ts"""),
        {"symbols": windows["symbol"].tolist(), "starts": [t.to_pydatetime() for t in windows["start"]],
         "ends": [t.to_pydatetime() for t in windows["end"]]}).all()
    if not rows:
        return {}
    df = pd.DataFrame(rows, columns=["symbol", "ts", "close"])
    df["ts"] = pd.to_datetime(df["ts"], utc=True).dt.tz_localize(None).dt.normalize()
    return {s: g.set_index("ts")["close"].astype(float) for s, g in df.groupby("symbol", sort=True)}


def load_market(session: Session) -> pd.Series:
    closes = load_closes(session, pd.DataFrame({"symbol": [BENCHMARK], "start": [pd.Timestamp("1900-01-01", tz="UTC")],
                                                "end": [pd.Timestamp("2200-01-01", tz="UTC")]}))
    return closes.get(BENCHMARK, pd.Series(dtype=float))


def congress_ticker_shares(session: Session) -> dict[str, float]:
    rows = session.execute(text("SELECT ticker, count(*) FROM trades WHERE ticker IS NOT NULL GROUP BY ticker")).all()
    total = sum(c for _, c in rows) or 1
    return {t: c / total for t, c in rows}


def _windows(dates: pd.DataFrame, col: str, before: int, after: int) -> pd.DataFrame:
    g = dates.dropna(subset=["ticker", col]).groupby("ticker")[col].agg(["min", "max"]).reset_index()
    return pd.DataFrame({"symbol": g["ticker"],
                         "start": (g["min"] - pd.Timedelta(days=before)).dt.tz_localize("UTC"),
                         "end": (g["max"] + pd.Timedelta(days=after)).dt.tz_localize("UTC")})


def scan_politician(session: Session, politician_id: int, settings: DiscoverySettings) -> ScanSummary:
    """Every per-person analysis for one politician, upserted in the caller's transaction."""
    if session.execute(text("SELECT 1 FROM politicians WHERE id = :p"), {"p": politician_id}).first() is None:
        raise UnknownPolitician(f"politician_id: no politician with id {politician_id}")
    trades = load_trades(session, politician_id)
    patterns, found = [], []
    summary = {"events_studied": 0}
    if not trades.empty:
        ids = trades["id"].tolist()
        patterns = [f for f in (cycles.fourier_cycle(trades["transaction_date"], ids,
                                                     fap_threshold=settings.cycle_fap),
                                habits.ticker_concentration(trades, congress_ticker_shares(session)),
                                habits.weekday_habit(trades)) if f is not None]
        found = anomalies.late_disclosures(trades, deadline_days=settings.late_disclosure_days)
        found += anomalies.unusual_sizes(trades)
        closes = load_closes(session, _windows(trades, "transaction_date", PRICE_LOOKBACK_DAYS,
                                               PRICE_LOOKAHEAD_DAYS))
        market = load_market(session)
        if closes and not market.empty:
            events, summary = event_study.abnormal_returns(trades, closes, market, alpha=settings.event_alpha)
            found += events
    written = store.save_patterns(session, politician_id, patterns) + store.save_anomalies(session, politician_id,
                                                                                            found)
    return ScanSummary(politician_id, len(trades), len(patterns), len(found), written, summary["events_studied"])


def load_all_trades(session: Session) -> pd.DataFrame:
    rows = session.execute(text("""
        SELECT t.politician_id, t.ticker, t.type, t.asset_type, t.transaction_date, t.disclosure_date, p.chamber
        FROM trades t JOIN politicians p ON p.id = t.politician_id
        WHERE t.ticker IS NOT NULL ORDER BY t.id""")).all()
    df = pd.DataFrame(rows, columns=["politician_id", "ticker", "type", "asset_type", "transaction_date",
                                     "disclosure_date", "chamber"])
    df["direction"] = df["type"].map(DIRECTION).fillna(0).astype(int)
    for col in ("transaction_date", "disclosure_date"):
        df[col] = pd.to_datetime(df[col])
    return df


def scan_network(session: Session, settings: DiscoverySettings) -> dict:
    """Cross-member work: the co-trading network and the copy-trading experiments."""
    trades = load_all_trades(session)
    net = network.co_trading(trades, window_days=settings.network_window_days, n_shuffles=settings.network_shuffles)
    purchases = trades[(trades["type"] == "purchase") & trades["disclosure_date"].notna()
                       & (trades["asset_type"].isna() | (trades["asset_type"] == "Stock"))]
    closes = load_closes(session, _windows(purchases, "disclosure_date", 10, 400))
    market = load_market(session)
    results = []
    if closes and not market.empty:
        for label, part in (("all congressional", purchases), ("Senate", purchases[purchases["chamber"] == "senate"]),
                            ("House", purchases[purchases["chamber"] == "house"])):
            res = experiment.copy_purchases(part, closes, market, label=label, hold_days=settings.copy_hold_days)
            if res is not None:
                results.append(res)
    written = store.save_network(session, net) + store.save_experiments(session, results)
    return {"network_findings": len(net), "experiments": len(results), "written": written}
