"""The per-process caches of a scan (ticker shares of all trades, the benchmark's closes) never serve
stale data: every kind of change to trades / the benchmark's bars changes the stamp ``scan_stamps``
reads (migration 0017's table_versions; 0003's pattern_bar_versions), and 0017 goes down and up.

On a database of its own (the session's has the real trades other tests read): these TRUNCATE."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from sqlalchemy import inspect, text
from sqlalchemy.orm import Session

from shared_models import migrate
from tests.scratch import scratch_database
from workers.discovery import scan

PEOPLE = {"a": uuid.UUID(int=1), "b": uuid.UUID(int=2)}
TRADES = [("a", "AAPL", 1), ("a", "AAPL", 2), ("a", "MSFT", 3), ("b", "T", 4), ("b", "AAPL", 5)]
# Each change alters the shares. "update" keeps count(*) and max(id): the old stamp missed it.
TRADE_CHANGES = {
    "insert": "INSERT INTO trades (politician_id, source, row_hash, ticker, transaction_date, type) "
              "VALUES ('00000000-0000-0000-0000-000000000002', 't', 'new', 'T', '2020-02-01', 'purchase')",
    "update": "UPDATE trades SET ticker = 'T' WHERE id = (SELECT min(id) FROM trades)",
    "delete": "DELETE FROM trades WHERE id = (SELECT min(id) FROM trades)",
    "truncate": "TRUNCATE trades",
    "cascade": "DELETE FROM politicians WHERE key = 'b'",
}
# The benchmark's bars: days 0..9 with close = day. "update" keeps count(*) and max(ts).
BAR_CHANGES = {
    "append": "INSERT INTO market_bars (symbol, timeframe, ts, open, high, low, close, volume) "
              "SELECT 'GSPC', '1d', '2020-01-01 00:00+00'::timestamptz + interval '10 days', 1, 1, 1, 1, 1",
    "insert_older": "INSERT INTO market_bars (symbol, timeframe, ts, open, high, low, close, volume) "
                    "SELECT 'GSPC', '1d', '2020-01-01 00:00+00'::timestamptz - interval '1 day', 1, 1, 1, 1, 1",
    "update": "UPDATE market_bars SET close = close + 100 WHERE ts = '2020-01-03 00:00+00'",
    "delete": "DELETE FROM market_bars WHERE ts = '2020-01-10 00:00+00'",
    "truncate": "TRUNCATE market_bars",
}


@pytest.fixture(scope="module")
def db(database_url):
    with scratch_database(database_url, "qp_stamps", migrated=True) as scratch:
        yield scratch


def _reset(engine) -> None:
    with engine.begin() as c:
        c.execute(text("TRUNCATE politicians, market_bars CASCADE"))
        for key, pid in PEOPLE.items():
            c.execute(text("INSERT INTO politicians (id, key, full_name, chamber) VALUES (:p, :k, :k, 'house')"),
                      {"p": pid, "k": key})
        for n, (who, ticker, day) in enumerate(TRADES):
            c.execute(text("INSERT INTO trades (politician_id, source, row_hash, ticker, transaction_date, type) "
                           "VALUES (:p, 't', :h, :t, make_date(2020, 1, :d), 'purchase')"),
                      {"p": PEOPLE[who], "h": str(n), "t": ticker, "d": day})
        c.execute(text("INSERT INTO market_bars (symbol, timeframe, ts, open, high, low, close, volume) "
                       "SELECT 'GSPC', '1d', '2020-01-01 00:00+00'::timestamptz + make_interval(days => d), d, d, d, d, 1 "
                       "FROM generate_series(0, 9) d"))
    scan._SHARES_CACHE.clear()
    scan._MARKET_CACHE.clear()


def _fresh_shares(engine) -> dict[str, float]:
    with engine.connect() as c:
        rows = c.execute(text("SELECT ticker, count(*) FROM trades WHERE ticker IS NOT NULL GROUP BY 1")).all()
    total = sum(n for _, n in rows) or 1
    return {t: n / total for t, n in rows}


def _fresh_market(engine) -> tuple[list, list]:
    with engine.connect() as c:
        rows = c.execute(text("SELECT (extract(epoch FROM ts) / 86400)::int, close FROM market_bars "
                              "WHERE symbol = 'GSPC' AND timeframe = '1d' ORDER BY ts")).all()
    return [d for d, _ in rows], [x for _, x in rows]


def _stamps(engine) -> tuple[tuple, tuple]:
    with Session(engine) as s:
        return scan.scan_stamps(s, str(PEOPLE["a"]))


def _shares(engine, stamp) -> dict[str, float]:
    with Session(engine) as s:
        return scan.congress_ticker_shares(s, stamp)


def _market(engine, stamp) -> tuple[list, list]:
    with Session(engine) as s:
        days, close = scan.load_market(s, stamp)
    return days.tolist(), close.tolist()


def _change(engine, sql: str) -> None:
    with engine.begin() as c:
        c.execute(text(sql))


@pytest.mark.parametrize("change", sorted(TRADE_CHANGES))
def test_any_change_of_trades_renews_the_cached_shares(db, change):
    _, engine = db
    _reset(engine)
    before = _stamps(engine)
    cached = _shares(engine, before[0])
    assert cached == _fresh_shares(engine)
    _change(engine, TRADE_CHANGES[change])
    assert _fresh_shares(engine) != cached                       # the change matters ...
    assert _shares(engine, before[0]) == cached                  # ... and a constant stamp would serve it stale
    after = _stamps(engine)
    assert after[0] != before[0] and after[1] == before[1]       # only the trades stamp moved
    assert _shares(engine, after[0]) == _fresh_shares(engine)
    assert _shares(engine, None) == _fresh_shares(engine)        # the stamp read on its own: the same one


def test_a_statement_that_changes_no_trade_keeps_the_version_and_a_rollback_leaves_none(db):
    _, engine = db
    _reset(engine)
    before = _stamps(engine)
    _change(engine, "INSERT INTO trades SELECT * FROM trades WHERE false")
    _change(engine, "UPDATE trades SET ticker = ticker WHERE false")
    _change(engine, "DELETE FROM trades WHERE false")
    assert _stamps(engine) == before
    with engine.connect() as c:
        c.execute(text(TRADE_CHANGES["update"]))
        c.rollback()
    assert _stamps(engine) == before


def test_a_version_is_never_reused_even_after_its_row_was_deleted(db):
    """A hand-deleted version row: the scan does not cache (no stamp), and the next change takes a new value."""
    _, engine = db
    _reset(engine)
    seen = [_stamps(engine)[0]]
    _change(engine, "DELETE FROM table_versions WHERE table_name = 'trades'")
    assert _stamps(engine)[0] == (None,)
    first = _shares(engine, (None,))
    _change(engine, TRADE_CHANGES["update"])
    assert _shares(engine, (None,)) == _fresh_shares(engine) != first
    for sql in (None, TRADE_CHANGES["insert"], "TRUNCATE trades RESTART IDENTITY"):
        if sql:
            _change(engine, sql)
        seen.append(_stamps(engine)[0])
    assert None not in {v for (v,) in seen} and len(set(seen)) == len(seen), seen


@pytest.mark.parametrize("change", sorted(BAR_CHANGES))
def test_any_change_of_the_benchmark_bars_renews_the_cached_market(db, change):
    _, engine = db
    _reset(engine)
    before = _stamps(engine)
    cached = _market(engine, before[1])
    assert cached == _fresh_market(engine) and len(cached[0]) == 10
    _change(engine, BAR_CHANGES[change])
    assert _fresh_market(engine) != cached
    assert _market(engine, before[1]) == cached                  # a constant stamp would serve it stale
    after = _stamps(engine)
    assert after[1] != before[1] and after[0] == before[0]
    assert _market(engine, after[1]) == _fresh_market(engine)
    assert _market(engine, None) == _fresh_market(engine)


def test_other_symbols_bars_leave_the_market_stamp(db):
    _, engine = db
    _reset(engine)
    before = _stamps(engine)
    _change(engine, "INSERT INTO market_bars (symbol, timeframe, ts, open, high, low, close, volume) "
                    "VALUES ('AAPL', '1d', '2019-01-01 00:00+00', 1, 1, 1, 1, 1), ('GSPC', '1min', '2019-01-01 00:00+00', 1, 1, 1, 1, 1)")
    assert _stamps(engine) == before
    assert np.array_equal(_market(engine, before[1])[1], _fresh_market(engine)[1])


def test_trades_version_migration_down_and_up(db):
    url, engine = db
    _reset(engine)
    migrate.downgrade(url, "0016")
    try:
        with engine.connect() as c:
            assert "table_versions" not in inspect(c).get_table_names()
            assert c.execute(text("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'trg_trades_version%'")).scalar() == 0
            assert c.execute(text("SELECT to_regproc('table_versions_bump'), to_regclass('table_versions_version_seq')")
                             ).one() == (None, None)
            assert not c.execute(text("SELECT has_table_privilege('quantpipe_discovery', 'pattern_bar_versions', "
                                      "'SELECT')")).scalar()
        for sql in TRADE_CHANGES.values():   # trades are still writable without the triggers' function
            _change(engine, sql)
    finally:
        migrate.upgrade(url)
    with engine.connect() as c:
        assert c.execute(text("SELECT has_table_privilege('quantpipe_discovery', 'table_versions', 'SELECT') AND "
                              "has_table_privilege('quantpipe_discovery', 'pattern_bar_versions', 'SELECT') AND NOT "
                              "has_table_privilege('quantpipe_discovery', 'table_versions', 'UPDATE')")).scalar()
    _reset(engine)
    before = _stamps(engine)
    _change(engine, TRADE_CHANGES["update"])
    assert _stamps(engine)[0] != before[0]
