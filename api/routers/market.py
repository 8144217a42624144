"""Daily closes of one symbol from ``market_bars`` (what the politician page draws trades on), scope ``read``."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Depends, Path, Query
from sqlalchemy import text

from ..auth import READ
from ..db import engine
from ..errors import not_found, responses
from ..http import cacheable
from ..schemas.common import Envelope
from ..schemas.patterns import Closes

router = APIRouter(prefix="/api/v1/prices", tags=["patterns"], dependencies=[READ],
                   responses=responses(401, 403, 422, 503))
MAX_POINTS = 5000
CLOSES = """
SELECT (ts AT TIME ZONE 'UTC')::date AS day, close FROM market_bars
WHERE symbol = :symbol AND timeframe = '1d' AND ts >= CAST(:start AS date) AND ts < CAST(:end AS date) + 1
ORDER BY ts LIMIT :n
"""


@router.get("/{symbol}", response_model=Envelope[Closes], dependencies=[Depends(cacheable(60))],
            responses=responses(404))
def closes(symbol: str = Path(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9.\-^=]+$"),
           start: date = Query(date(1990, 1, 1)), end: date = Query(date(2100, 1, 1))):
    """Daily closes (split-adjusted when the loader adjusted them), oldest first, at most 5,000."""
    with engine().connect() as conn:
        rows = conn.execute(text(CLOSES), {"symbol": symbol.upper(), "start": start, "end": end,
                                           "n": MAX_POINTS}).all()
    if not rows:
        raise not_found(f"symbol: no daily bars of {symbol.upper()} between {start} and {end}", "symbol")
    return Envelope[Closes](data=Closes(symbol=symbol.upper(), days=[r[0] for r in rows],
                                        close=[round(float(r[1]), 4) for r in rows]))
