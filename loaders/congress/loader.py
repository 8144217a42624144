"""Load the congressional disclosure files into ``politicians`` and ``trades``.

Sources (``data/congress/``, see its README):
- ``senate_transactions.json.gz``: the primary Senate rows;
- ``senate_filings.json.gz``: gives each Senate row its disclosure date and the
  senator's bioguide id (joined on ``ptr_link``), plus the trades of filings the
  transactions file does not contain (their tickers are HTML links);
- ``house_transactions.csv.gz``: the House rows.

Reading is pure (``read_congress``); writing (``write_congress``) is one
transaction: politicians upserted on their key (id = uuid5 of the key), trades
inserted ``ON CONFLICT (source, row_hash) DO NOTHING`` (the hash of the raw row, so
an exact duplicate row is the same trade), rejects replaced in ``dead_letters``
(through ``shared_models.dead_letters``, so any bad row is storable). Loading twice
changes nothing. What makes a row bad, and a file unreadable: ``rows.py``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Callable, Iterable

from psycopg2.extras import execute_values
from sqlalchemy import Engine

from shared_models import dead_letters
from shared_models.models.discovery import Politician, politician_uuid

from . import clean, rows
from .names import Identities, Sighting, display_name, name_key, resolve
from .rows import CongressFileError, RawRow

logger = logging.getLogger(__name__)

SENATE_TRANSACTIONS = "senate_transactions.json.gz"
SENATE_FILINGS = "senate_filings.json.gz"
HOUSE_TRANSACTIONS = "house_transactions.csv.gz"
DEAD_LETTER_PREFIX = "load-congress:"
NON_STOCK_ASSETS = {"municipal security", "corporate bond", "other securities", "non-public stock",
                    "pdf disclosed filing", "cryptocurrency"}
TRADE_COLUMNS = ["politician_key", "source", "row_hash", "ticker", "asset_description", "asset_type",
                 "transaction_date", "disclosure_date", "disclosure_lag_days", "type", "owner", "amount_min",
                 "amount_max", "amount_raw", "ptr_link", "comment"]

MAX_KEY = Politician.__table__.c.key.type.length
MAX_NAME = Politician.__table__.c.full_name.type.length

Progress = Callable[[str, int, int], None]


@dataclass
class Reject:
    source: str
    field: str
    code: str
    detail: str
    payload: Any  # the raw row as read
    where: str = ""  # "row 12", "line 7", "filing 3, transaction 2"

    @property
    def reason(self) -> str:
        return f"{self.code}: {self.detail} [{self.where}]" if self.where else f"{self.code}: {self.detail}"


@dataclass
class CongressData:
    identities: Identities
    trades: list[dict]
    rejects: list[Reject]
    rows_read: Counter = field(default_factory=Counter)
    duplicates: Counter = field(default_factory=Counter)

    def reject_counts(self) -> Counter:
        return Counter((r.source, r.code) for r in self.rejects)


@dataclass
class LoadReport:
    rows_read: dict[str, int]
    duplicates: dict[str, int]
    rejected: dict[tuple[str, str], int]
    trades_valid: int
    trades_inserted: int
    politicians: int

    @property
    def total_rejected(self) -> int:
        return sum(self.rejected.values())


def row_hash(source: str, raw: Any) -> str:
    return hashlib.sha256(json.dumps([source, raw], sort_keys=True, default=str).encode()).hexdigest()


def find_files(paths: Iterable[str | Path]) -> dict[str, Path]:
    """The known files under ``paths`` (files or directories), by name."""
    known = {SENATE_TRANSACTIONS, SENATE_FILINGS, HOUSE_TRANSACTIONS}
    found: dict[str, Path] = {}
    for p in map(Path, paths):
        if not p.exists():
            raise CongressFileError(f"{p}: no such file or directory")
        for f in (sorted(p.iterdir()) if p.is_dir() else [p]):
            if f.name in known:
                found[f.name] = f
    if not found:
        raise CongressFileError(f"none of {sorted(known)} found in {', '.join(map(str, paths))}")
    if SENATE_TRANSACTIONS in found and SENATE_FILINGS not in found:
        raise CongressFileError(f"{SENATE_TRANSACTIONS} needs {SENATE_FILINGS} beside it (disclosure dates)")
    return found


def _filings(path: Path) -> tuple[list[tuple[int, dict]], list[RawRow]]:
    """(index, filing) of the usable filings; the unusable ones as rejected rows."""
    good, bad = [], []
    for i, filing in enumerate(rows.read_json_array(path), start=1):
        try:
            rows.check(rows.Filing, filing)
        except clean.FieldError as exc:
            bad.append(RawRow("senate_filings", f"filing {i}", filing, exc))
            continue
        good.append((i, filing))
    return good, bad


def _senate_rows(files: dict[str, Path], filings: list[tuple[int, dict]],
                 bad_filings: list[RawRow]) -> Iterable[tuple[RawRow, dict]]:
    """(row, its filing) for every Senate trade row; an unusable filing is one rejected row."""
    if SENATE_FILINGS not in files:
        return
    by_link = {f["ptr_link"]: f for _, f in filings if f.get("ptr_link")}
    covered: set[str] = set()
    if SENATE_TRANSACTIONS in files:
        for i, raw in enumerate(rows.read_json_array(files[SENATE_TRANSACTIONS]), start=1):
            link = raw.get("ptr_link") if isinstance(raw, dict) else None
            link = link if isinstance(link, str) else None
            covered.add(link)
            yield RawRow("senate_transactions", f"row {i}", raw), by_link.get(link, {})
    for bad in bad_filings:
        yield bad, {}
    for i, filing in filings:
        if filing.get("ptr_link") in covered:
            continue
        for j, t in enumerate(filing.get("transactions") or [], start=1):
            raw = {**t, "ptr_link": filing.get("ptr_link")} if isinstance(t, dict) else t
            yield RawRow("senate_filings", f"filing {i}, transaction {j}", raw), filing


def _house_rows(files: dict[str, Path]) -> Iterable[tuple[RawRow, dict]]:
    if HOUSE_TRANSACTIONS in files:
        for row in rows.house_rows(files[HOUSE_TRANSACTIONS]):
            yield row, {}


def _lag(tx: date, disclosed: date | None) -> int | None:
    if disclosed is None:
        return None
    if tx > disclosed:
        raise clean.FieldError("transaction_date", "after_disclosure",
                               f"transaction {tx} is after its disclosure {disclosed}")
    return (disclosed - tx).days


def _common(raw: dict, tx: date, disclosed: date | None, asset_type: str | None) -> dict:
    low, high = clean.parse_amount(raw.get("amount", ""))
    ticker = clean.ticker(raw.get("ticker"))
    if asset_type and asset_type.lower() in NON_STOCK_ASSETS:
        ticker = None
    return {"ticker": ticker, "asset_description": clean.strip_html(raw.get("asset_description")),
            "asset_type": asset_type or None, "transaction_date": tx, "disclosure_date": disclosed,
            "disclosure_lag_days": _lag(tx, disclosed), "type": clean.trade_type(raw.get("type", "")),
            "owner": clean.owner(raw.get("owner", "")), "amount_min": low, "amount_max": high,
            "amount_raw": (raw.get("amount") or "").strip() or None,
            "ptr_link": raw.get("ptr_link") or None}


def _senate_trade(raw: dict, filing: dict) -> dict:
    if (raw.get("asset_type") or "").lower() == "pdf disclosed filing" or raw.get("type") == "N/A":
        raise clean.FieldError("type", "paper_filing", "scanned paper filing: no transaction details")
    if not filing:
        raise clean.FieldError("ptr_link", "unknown_filing", f"no filing for {str(raw.get('ptr_link'))[:120]!r}")
    tx = clean.parse_date(raw.get("transaction_date", ""), "%m/%d/%Y", "transaction_date")
    disclosed = clean.parse_date(filing.get("date_recieved", ""), "%m/%d/%Y", "date_recieved")
    comment = clean.strip_html(raw.get("comment"))
    return {**_common(raw, tx, disclosed, clean.strip_html(raw.get("asset_type"))),
            "comment": None if comment in (None, "--") else comment}


def _house_trade(raw: dict) -> dict:
    tx = clean.parse_date(raw.get("transaction_date", ""), "%Y-%m-%d", "transaction_date")
    disclosed = clean.parse_date(raw.get("disclosure_date", ""), "%m/%d/%Y", "disclosure_date")
    trade = _common(raw, tx, disclosed, None)  # no asset type in the file: an option is known by its words
    return {**trade, "asset_type": clean.house_asset_type(trade["asset_description"]), "comment": None}


def _senate_name(source: str, raw: dict, filing: dict) -> str:
    if source == "senate_transactions" and raw.get("senator"):
        return raw["senator"]
    return f"{filing.get('first_name') or ''} {filing.get('last_name') or ''}".strip()


def _sighting(row: RawRow, filing: dict) -> Sighting:
    """Who the row says traded; a name too long for the politicians table once normalised is
    the row's error (case mapping can lengthen text: 'ß'.upper() is 'SS')."""
    raw = row.raw
    if row.source == "house":
        field, name = "representative", raw.get("representative") or ""
        district = (raw.get("district") or "").strip().upper() or None
        if district is not None and not (len(district) <= 8 and district.isascii() and district.isalnum()):
            raise clean.FieldError("district", "bad_district", f"{district[:20]!r} is no district code")
        sighting = Sighting(name, "house", raw.get("transaction_date") or "", district=district)
    else:
        field, name = ("senator" if row.source == "senate_transactions" and raw.get("senator")
                       else "last_name"), _senate_name(row.source, raw, filing)
        when = raw.get("transaction_date") or ""
        when = f"{when[6:]}-{when[:2]}-{when[3:5]}" if len(when) == 10 else ""
        sighting = Sighting(name, "senate", when, bioguide=filing.get("bioguide") or None)
    if len(name_key(name) or "") > MAX_KEY or len(display_name(name)) > MAX_NAME:
        raise clean.FieldError(field, "too_long", "name too long once normalised")
    return sighting


def _clean_row(row: RawRow, filing: dict) -> dict:
    return _senate_trade(row.raw, filing) if row.source.startswith("senate") else _house_trade(row.raw)


def read_congress(paths: Iterable[str | Path], progress: Progress | None = None) -> CongressData:
    """Parse and clean every row; nothing touches the database. A bad row becomes a ``Reject``
    naming the field and the reason; only an unreadable file raises (``CongressFileError``)."""
    files = find_files(paths)
    filings, bad_filings = _filings(files[SENATE_FILINGS]) if SENATE_FILINGS in files else ([], [])
    parsed: list[tuple[RawRow, dict, Sighting | None, clean.FieldError | None]] = []
    for row, filing in [*_senate_rows(files, filings, bad_filings), *_house_rows(files)]:
        try:
            rows.check_row(row)
            parsed.append((row, filing, _sighting(row, filing), None))
        except clean.FieldError as exc:
            parsed.append((row, filing, None, exc))
    # Filings without trades still name their senator: they help join spellings.
    names = [Sighting(_senate_name("senate_filings", {}, f), "senate", "", bioguide=f.get("bioguide") or None)
             for _, f in filings]
    identities = resolve([*(p[2] for p in parsed if p[2] is not None), *names])
    data = CongressData(identities, [], [])
    seen: set[tuple[str, str]] = set()
    for done, (row, filing, sighting, error) in enumerate(parsed, start=1):
        if progress is not None and (done % 2000 == 0 or done == len(parsed)):
            progress("parse", done, len(parsed))
        data.rows_read[row.source] += 1
        try:
            h = row_hash(row.source, row.raw)
            if (row.source, h) in seen:
                data.duplicates[row.source] += 1
                continue
            seen.add((row.source, h))
            if error is not None:
                raise error
            key = identities.key_for(sighting.raw_name)
            if key is None:
                raise clean.FieldError("representative" if row.source == "house" else "senator", "no_name",
                                       "no politician name on the row")
            trade = _clean_row(row, filing)
        except clean.FieldError as exc:
            data.rejects.append(Reject(row.source, exc.field, exc.code, exc.detail, row.raw, row.where))
            continue
        except Exception as exc:  # noqa: BLE001 - one row must never stop a load; kept with the reason
            logger.exception("load-congress: %s %s: unexpected error", row.source, row.where)
            data.rejects.append(Reject(row.source, "row", "unexpected", f"{type(exc).__name__}: {exc}"[:300],
                                       row.raw, row.where))
            continue
        data.trades.append({"politician_key": key, "source": row.source, "row_hash": h, **trade})
    return data


def _politician_rows(data: CongressData) -> list[tuple]:
    used = {t["politician_key"] for t in data.trades}
    return [(str(politician_uuid(p.key)), p.key, p.full_name, p.chamber, p.state, p.district, p.bioguide,
             json.dumps(p.aliases))
            for k, p in sorted(data.identities.people.items()) if k in used]


def write_congress(engine: Engine, data: CongressData, progress: Progress | None = None) -> LoadReport:
    """One transaction: upsert politicians, insert new trades, replace this loader's dead letters."""
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        people = _politician_rows(data)
        execute_values(cur, """
            INSERT INTO politicians (id, key, full_name, chamber, state, district, bioguide, aliases)
            VALUES %s
            ON CONFLICT (key) DO UPDATE SET full_name = EXCLUDED.full_name, chamber = EXCLUDED.chamber,
                state = EXCLUDED.state, district = EXCLUDED.district, bioguide = EXCLUDED.bioguide,
                aliases = EXCLUDED.aliases, updated_at = now()
            WHERE (politicians.full_name, politicians.chamber, politicians.state, politicians.district,
                   politicians.bioguide, politicians.aliases)
                  IS DISTINCT FROM (EXCLUDED.full_name, EXCLUDED.chamber, EXCLUDED.state, EXCLUDED.district,
                                    EXCLUDED.bioguide, EXCLUDED.aliases)""",
                       people, template="(%s::uuid, %s, %s, %s, %s, %s, %s, %s::jsonb)", page_size=1000)
        if progress is not None:
            progress("politicians", len(people), len(people))
        cur.execute(f"CREATE TEMP TABLE _congress_trades ON COMMIT DROP AS SELECT {', '.join(TRADE_COLUMNS[1:])}, "
                    "NULL::varchar(120) AS politician_key FROM trades WITH NO DATA")
        cols = ", ".join(TRADE_COLUMNS)
        chunk = 5000
        for start in range(0, len(data.trades), chunk):
            part = data.trades[start:start + chunk]
            execute_values(cur, f"INSERT INTO _congress_trades ({cols}) VALUES %s",
                           [tuple(t[c] for c in TRADE_COLUMNS) for t in part], page_size=chunk)
            if progress is not None:
                progress("trades", start + len(part), len(data.trades))
        cur.execute(f"""
            INSERT INTO trades (politician_id, {', '.join(TRADE_COLUMNS[1:])})
            SELECT p.id, {', '.join('t.' + c for c in TRADE_COLUMNS[1:])}
            FROM _congress_trades t JOIN politicians p ON p.key = t.politician_key
            ORDER BY t.source, t.transaction_date, t.row_hash
            ON CONFLICT (source, row_hash) DO NOTHING""")
        inserted = cur.rowcount
        dead_letters.forget_sources(cur, "discovery", {DEAD_LETTER_PREFIX + s for s in data.rows_read})
        dead_letters.keep_many(cur, "discovery", [dead_letters.Letter(DEAD_LETTER_PREFIX + r.source, r.reason,
                                                                      r.payload, r.field) for r in data.rejects])
        raw.commit()
    except BaseException:
        raw.rollback()
        raise
    finally:
        raw.close()
    return LoadReport(rows_read=dict(data.rows_read), duplicates=dict(data.duplicates),
                      rejected=dict(data.reject_counts()), trades_valid=len(data.trades),
                      trades_inserted=inserted, politicians=len(people))


def load_congress(engine: Engine, paths: Iterable[str | Path], progress: Progress | None = None) -> LoadReport:
    """Read, clean and write the disclosure files; idempotent."""
    return write_congress(engine, read_congress(paths, progress), progress)
