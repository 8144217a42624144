"""The live path's bar and watermark upserts, written with the models and compiled once.

The live path sends several statements in one simple query on a raw psycopg2 connection (one
round trip), so it needs SQL text; compiling the Core statements once at import gives exactly
that text while the models stay the single definition of the tables (a renamed column fails
here, at import, not in production). Runtime cost: none (the same string is sent each time).
"""

from __future__ import annotations

from sqlalchemy import Float, String, bindparam, cast, func, select, tuple_
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY, insert

from shared_models.models import MarketBar
from shared_models.models.patterns import PatternScanState

_DIALECT = postgresql.psycopg2.dialect()
_PRICES = ("open", "high", "low", "close", "volume")


def compiled(stmt) -> str:
    """Core statement -> SQL text with %(name)s placeholders (psycopg2's pyformat)."""
    return str(stmt.compile(dialect=_DIALECT))


def _arr(name: str, kind):
    return cast(bindparam(name), ARRAY(kind))


def _upsert_bars() -> str:
    x = func.unnest(_arr("s", String), _arr("t", Float), _arr("o", Float), _arr("h", Float), _arr("l", Float),
                    _arr("c", Float), _arr("v", Float)).table_valued("s", "t", "o", "h", "l", "c", "v") \
        .render_derived(name="x")
    rows = select(x.c.s, bindparam("tf"), func.to_timestamp(x.c.t), x.c.o, x.c.h, x.c.l, x.c.c, x.c.v,
                  bindparam("adj"))
    b = MarketBar.__table__
    st = insert(b).from_select(["symbol", "timeframe", "ts", "open", "high", "low", "close", "volume", "adjusted"],
                               rows)
    return compiled(st.on_conflict_do_update(
        index_elements=[b.c.symbol, b.c.timeframe, b.c.ts],
        set_={c: st.excluded[c] for c in _PRICES},
        # an identical re-send writes nothing (no correction, no version bump)
        where=tuple_(*(b.c[c] for c in _PRICES)).is_distinct_from(tuple_(*(st.excluded[c] for c in _PRICES)))))


def _upsert_watermark() -> str:
    n = func.unnest(_arr("s", String), _arr("t", Float)).table_valued("s", "t").render_derived(name="n")
    w = PatternScanState.__table__
    st = insert(w).from_select(["symbol", "tier", "last_bar_ts", "updated_at"],
                               select(n.c.s, bindparam("tier"), func.to_timestamp(n.c.t), func.now()))
    return compiled(st.on_conflict_do_update(
        index_elements=[w.c.symbol, w.c.tier],
        set_={"last_bar_ts": func.greatest(w.c.last_bar_ts, st.excluded.last_bar_ts), "updated_at": func.now()}))


UPSERT_SQL = _upsert_bars()
WATERMARK_SQL = _upsert_watermark()
