"""Load the congressional disclosure files into ``politicians`` and ``trades``.

Sources (``data/congress/``, see its README):
- ``senate_transactions.json.gz``: the primary Senate rows;
- ``senate_filings.json.gz``: gives each Senate row its disclosure date and the
  senator's bioguide id (joined on ``ptr_link``), plus the trades of filings the
  transactions file does not contain (their tickers are HTML links);
- ``house_transactions.csv.gz``: the House rows.

Reading is pure (``read_congress``); writing (``write_congress``) is one
transaction: politicians upserted on their key (id = uuid5 of the key), trades inserted ``ON CONFLICT
(source, row_hash) DO NOTHING`` (the hash of the raw row, so an exact duplicate
row is the same trade), rejects replaced in ``dead_letters``. Loading twice
changes nothing.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Callable, Iterable

import pandas as pd
from psycopg2.extras import execute_values
from sqlalchemy import Engine

from shared_models.models.discovery import politician_uuid

from . import clean
from .names import Identities, Sighting, resolve

SENATE_TRANSACTIONS = "senate_transactions.json.gz"
SENATE_FILINGS = "senate_filings.json.gz"
HOUSE_TRANSACTIONS = "house_transactions.csv.gz"
DEAD_LETTER_PREFIX = "load-congress:"
NON_STOCK_ASSETS = {"municipal security", "corporate bond", "other securities", "non-public stock",
                    "pdf disclosed filing", "cryptocurrency"}
TRADE_COLUMNS = ["politician_key", "source", "row_hash", "ticker", "asset_description", "asset_type",
                 "transaction_date", "disclosure_date", "disclosure_lag_days", "type", "owner", "amount_min",
                 "amount_max", "amount_raw", "ptr_link", "comment"]

Progress = Callable[[str, int, int], None]


class CongressFileError(ValueError):
    """A path holds none of the known disclosure files."""


@dataclass
class Reject:
    source: str
    field: str
    code: str
    detail: str
    payload: dict


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


def row_hash(source: str, raw: dict) -> str:
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


def _senate_rows(files: dict[str, Path]) -> Iterable[tuple[str, dict, dict]]:
    """(source, raw row, filing) for every Senate trade row."""
    if SENATE_FILINGS not in files:
        return
    filings = json.load(gzip.open(files[SENATE_FILINGS], "rt"))
    by_link = {f["ptr_link"]: f for f in filings}
    covered: set[str] = set()
    if SENATE_TRANSACTIONS in files:
        for raw in json.load(gzip.open(files[SENATE_TRANSACTIONS], "rt")):
            covered.add(raw.get("ptr_link"))
            yield "senate_transactions", raw, by_link.get(raw.get("ptr_link"), {})
    for filing in filings:
        if filing["ptr_link"] in covered:
            continue
        for t in filing.get("transactions") or []:
            yield "senate_filings", {**t, "ptr_link": filing["ptr_link"]}, filing


def _house_rows(files: dict[str, Path]) -> Iterable[tuple[str, dict]]:
    if HOUSE_TRANSACTIONS not in files:
        return
    frame = pd.read_csv(files[HOUSE_TRANSACTIONS], dtype=str, keep_default_na=False, compression="gzip")
    for raw in frame.to_dict("records"):
        yield "house", raw


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
        raise clean.FieldError("ptr_link", "unknown_filing", f"no filing for {raw.get('ptr_link')!r}")
    tx = clean.parse_date(raw.get("transaction_date", ""), "%m/%d/%Y", "transaction_date")
    disclosed = clean.parse_date(filing.get("date_recieved", ""), "%m/%d/%Y", "date_recieved")
    comment = clean.strip_html(raw.get("comment"))
    return {**_common(raw, tx, disclosed, clean.strip_html(raw.get("asset_type"))),
            "comment": None if comment in (None, "--") else comment}


def _house_trade(raw: dict) -> dict:
    tx = clean.parse_date(raw.get("transaction_date", ""), "%Y-%m-%d", "transaction_date")
    disclosed = clean.parse_date(raw.get("disclosure_date", ""), "%m/%d/%Y", "disclosure_date")
    return {**_common(raw, tx, disclosed, None), "comment": None}


def _senate_name(source: str, raw: dict, filing: dict) -> str:
    if source == "senate_transactions" and raw.get("senator"):
        return raw["senator"]
    return f"{filing.get('first_name', '')} {filing.get('last_name', '')}".strip()


def read_congress(paths: Iterable[str | Path], progress: Progress | None = None) -> CongressData:
    """Parse and clean every row; nothing touches the database."""
    files = find_files(paths)
    rows: list[tuple[str, dict, dict, Sighting]] = []  # source, raw, filing, sighting
    for source, raw, filing in _senate_rows(files):
        when = raw.get("transaction_date", "")
        when = f"{when[6:]}-{when[:2]}-{when[3:5]}" if len(when) == 10 else ""
        rows.append((source, raw, filing, Sighting(_senate_name(source, raw, filing), "senate", when,
                                                   bioguide=filing.get("bioguide") or None)))
    for source, raw in _house_rows(files):
        rows.append((source, raw, {}, Sighting(raw.get("representative", ""), "house",
                                               raw.get("transaction_date", ""),
                                               district=(raw.get("district") or "").strip().upper() or None)))
    # Filings without trades still name their senator: they help join spellings.
    if SENATE_FILINGS in files:
        for f in json.load(gzip.open(files[SENATE_FILINGS], "rt")):
            rows.append(("senate_filings:names", {}, f, Sighting(_senate_name("senate_filings", {}, f), "senate",
                                                                 "", bioguide=f.get("bioguide") or None)))
    identities = resolve(r[3] for r in rows)
    data = CongressData(identities, [], [])
    seen: set[tuple[str, str]] = set()
    total = sum(1 for r in rows if r[0] != "senate_filings:names")
    done = 0
    for source, raw, filing, sighting in rows:
        if source == "senate_filings:names":
            continue
        done += 1
        if progress is not None and (done % 2000 == 0 or done == total):
            progress("parse", done, total)
        data.rows_read[source] += 1
        h = row_hash(source, raw)
        if (source, h) in seen:
            data.duplicates[source] += 1
            continue
        seen.add((source, h))
        key = identities.key_for(sighting.raw_name)
        try:
            if key is None:
                raise clean.FieldError("representative" if source == "house" else "senator", "no_name",
                                       "no politician name on the row")
            trade = _senate_trade(raw, filing) if source.startswith("senate") else _house_trade(raw)
        except clean.FieldError as exc:
            data.rejects.append(Reject(source, exc.field, exc.code, exc.detail, raw))
            continue
        data.trades.append({"politician_key": key, "source": source, "row_hash": h, **trade})
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
        sources = sorted({DEAD_LETTER_PREFIX + s for s in data.rows_read})
        cur.execute("DELETE FROM dead_letters WHERE pool = 'discovery' AND source = ANY(%s)", (sources,))
        execute_values(cur, "INSERT INTO dead_letters (pool, source, field, reason, payload) VALUES %s",
                       [("discovery", DEAD_LETTER_PREFIX + r.source, r.field, f"{r.code}: {r.detail}",
                         json.dumps(r.payload, default=str)) for r in data.rejects],
                       template="(%s, %s, %s, %s, %s::jsonb)", page_size=1000)
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
