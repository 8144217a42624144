"""The congress loader fuzzed: generated files mixing valid rows with bad ones of every kind.

Bad rows: not an object, a known field of the wrong type, NUL, bytes that are not UTF-8
(raw bytes and lone surrogate escapes), fields over their limit, unparseable / impossible /
future dates, a trade after its disclosure, unknown types, owners and amounts, an unknown
filing, a filing that is no filing, CSV lines with the wrong field count, an unterminated
quote or a carriage return in an unquoted field. Every bad row carries a unique marker so
it cannot be an exact duplicate of another. For each generated set: the load returns
(no crash), every valid row is a trade, every bad row is one dead letter whose reason
names where it was, and nothing else is stored. Runs in its own database.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from loaders.congress import CongressFileError, load_congress
from tests.support import run_cli

KNOWN = {"senate": ["transaction_date", "owner", "ticker", "asset_description", "asset_type", "type", "amount",
                    "comment", "senator", "ptr_link"],
         "filing": ["transaction_date", "owner", "ticker", "asset_description", "asset_type", "type", "amount",
                    "comment"],
         "house": ["disclosure_year", "disclosure_date", "transaction_date", "owner", "ticker",
                   "asset_description", "type", "amount", "representative", "district", "ptr_link",
                   "cap_gains_over_200_usd"]}
LIMITS = {"owner": 64, "asset_type": 64, "type": 64, "amount": 64, "senator": 100, "representative": 100,
          "district": 8, "disclosure_year": 64, "cap_gains_over_200_usd": 64}
FILED = "06/01/2021"  # the Senate filings' disclosure date; trades are before it
BAD_BYTES = b"\xff\xfe\x80"
TOTAL = {"bad": 0, "valid": 0}

text_ok = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r\n"), max_size=12)
when = st.dates(min_value=dt.date(2013, 1, 1), max_value=dt.date(2021, 5, 31))
junk = st.text(st.characters(whitelist_categories=("Ll", "Lu")), max_size=8)
wrong_type = st.one_of(st.integers(), st.floats(), st.booleans(), st.lists(st.integers(), max_size=2),
                       st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


@dataclass
class Files:
    senate: list = field(default_factory=list)   # senate_transactions elements
    filings: list = field(default_factory=list)  # senate_filings elements
    house: list = field(default_factory=list)    # house CSV lines (str, or bytes when not UTF-8)
    valid: set = field(default_factory=set)      # markers of rows that must become trades
    bad: set = field(default_factory=set)        # (source, where) of rows that must be dead letters
    swaps: dict = field(default_factory=dict)    # token -> raw bytes put into the JSON text


def _marker() -> str:
    return f"fz{uuid.uuid4().hex[:12]}"


def _senate_valid(draw, f: Files, link: str, filing_row: bool) -> dict:
    m = _marker()
    row = {"transaction_date": draw(when).strftime("%m/%d/%Y"),
           "owner": draw(st.sampled_from(["Self", "Spouse", "Joint", "Child", "--", ""])),
           "ticker": draw(st.sampled_from(["AAPL", "--", "BRK-B", "<a href='x'>MSFT</a>", "N/A", "KEY$J"])),
           "asset_description": f"{m} {draw(text_ok)}",
           "asset_type": draw(st.sampled_from(["Stock", "Corporate Bond", "Municipal Security", ""])),
           "type": draw(st.sampled_from(["Purchase", "Sale (Full)", "Sale (Partial)", "Exchange"])),
           "amount": draw(st.sampled_from(["$1,001 - $15,000", "$1,001 -", "$1,000,000 +", "Over $50,000,000",
                                           "Unknown"])),
           "comment": f"note {m}"}  # the marker twice: a spoiled row keeps one, so it stays unique
    if not filing_row:
        row.update(senator=draw(st.sampled_from(["Alex Q Fuzzer", "Bea Fuzzington", ""])), ptr_link=link)
    if draw(st.booleans()):
        row["extra_field"] = draw(st.one_of(wrong_type, st.text(max_size=5)))  # unknown fields are not used
    return row, m


def _spoil(draw, f: Files, row: dict, fields: list[str], filing_link: str | None, *, csv_row: bool = False) -> dict:
    """One thing wrong with an otherwise valid row (one of its two markers stays: it is unique)."""
    kinds = ["nul", "bytes", "huge", "date", "future", "old", "after", "trade_type", "owner", "amount"]
    kind = draw(st.sampled_from(kinds + ([] if csv_row else ["type_of", "surrogate"])
                                + (["link"] if filing_link else [])))
    name = draw(st.sampled_from(fields))
    date_field, fmt = ("transaction_date", "%m/%d/%Y") if "senator" in fields or "comment" in fields else \
        ("transaction_date", "%Y-%m-%d")
    if kind == "type_of":
        row[name] = draw(wrong_type)
    elif kind == "nul":
        row[name] = (row.get(name) or "") + "\x00" + draw(text_ok)
    elif kind in ("bytes", "surrogate"):
        token = f"@@{uuid.uuid4().hex}@@"
        row[name] = token
        f.swaps[token] = BAD_BYTES if kind == "bytes" else b"\\udc80"
    elif kind == "huge":
        row[name] = "x" * draw(st.integers(LIMITS.get(name, 4096) + 1, LIMITS.get(name, 4096) + 20_000))
    elif kind == "date":
        row[date_field] = "zz" + draw(junk)
    elif kind == "future":
        row[date_field] = "01/01/2999" if fmt == "%m/%d/%Y" else "2999-01-01"
    elif kind == "old":
        row[date_field] = "06/09/0009" if fmt == "%m/%d/%Y" else "0009-06-09"
    elif kind == "after":
        row[date_field] = "12/31/2021" if fmt == "%m/%d/%Y" else "2021-12-31"
    elif kind == "trade_type":
        row["type"] = draw(st.sampled_from(["Sale", "zz" + draw(junk)]))
    elif kind == "owner":
        row["owner"] = "zz" + draw(junk)
    elif kind == "amount":
        row["amount"] = "lots" + draw(junk)
    else:
        row["ptr_link"] = f"https://example.invalid/{uuid.uuid4().hex}"
    return row


def _not_an_object(draw) -> object:
    m = _marker()
    return draw(st.sampled_from([[m], m, [m, 1, None], [[m]]]))


@st.composite
def congress_files(draw) -> Files:
    f = Files()
    covered, other = f"https://example.invalid/{uuid.uuid4().hex}", f"https://example.invalid/{uuid.uuid4().hex}"
    f.filings.append({"first_name": "Eli", "last_name": "Fuzzberg", "office": "x", "ptr_link": covered,
                      "date_recieved": FILED, "bioguide": None, "transactions": []})
    tx_of_other: list = []
    f.filings.append({"first_name": "Fay", "last_name": "Fuzzman", "office": "x", "ptr_link": other,
                      "date_recieved": FILED, "bioguide": None, "transactions": tx_of_other})
    for _ in range(draw(st.integers(2, 6))):  # filings that are no filing
        bad = draw(st.sampled_from(["transactions", "ptr_link", "first_name", "object"]))
        m = _marker()
        filing = [m] if bad == "object" else {"first_name": "G", "last_name": m, "ptr_link": m, "date_recieved": FILED,
                                             "transactions": []}
        if bad == "transactions":
            filing["transactions"] = m
        elif bad == "ptr_link":
            filing["ptr_link"] = [m]
        elif bad == "first_name":
            filing["first_name"] = "x" * 51
        f.filings.append(filing)
        f.bad.add(("senate_filings", f"filing {len(f.filings)}"))
    for source, rows, n in (("senate_transactions", f.senate, draw(st.integers(40, 60))),
                            ("senate_filings", tx_of_other, draw(st.integers(40, 60)))):
        filing_row = source == "senate_filings"
        for _ in range(n):
            choice = draw(st.integers(0, 9))
            if choice == 0:
                rows.append(_not_an_object(draw))
            else:
                row, m = _senate_valid(draw, f, covered, filing_row)
                if choice <= 2:
                    f.valid.add(m)
                else:
                    row = _spoil(draw, f, row, KNOWN["filing" if filing_row else "senate"],
                                 None if filing_row else covered)
                    rows.append(row)
                    f.bad.add((source, _where(source, len(rows))))
                    continue
                rows.append(row)
            if choice == 0:
                f.bad.add((source, _where(source, len(rows))))
    for _ in range(draw(st.integers(40, 60))):
        _house_line(draw, f)
    return f


def _where(source: str, n: int) -> str:
    return f"row {n}" if source == "senate_transactions" else f"filing 2, transaction {n}"


def house_fields(marker: str, tx: dt.date, owner: str = "joint", ticker: str = "AAPL",
                 kind: str = "purchase", amount: str = "$1,001 - $15,000", who: str = "Dana Fuzzwell",
                 text: str = "") -> list[str]:
    """A valid House row (columns of KNOWN["house"]), disclosed 06/01/2021."""
    return [str(tx.year), "06/01/2021", tx.isoformat(), owner, ticker, f"{marker} {text}", kind, amount, who,
            "NC05", f"https://example.invalid/{marker}", "False"]


def _house_valid(draw) -> tuple[list[str], str]:
    m = _marker()
    return house_fields(m, draw(when), draw(st.sampled_from(["joint", "self", "spouse", "dependent", "", "--"])),
                        draw(st.sampled_from(["AAPL", "--", "BRK-B", ""])),
                        draw(st.sampled_from(["purchase", "sale_full", "sale_partial", "exchange"])),
                        draw(st.sampled_from(["$1,001 - $15,000", "$15,001 - $50,000", "$1,000,000 +"])),
                        draw(st.sampled_from(["Hon. Casey Fuzz", "Dana Fuzzwell"])), draw(text_ok)), m


def _csv(fields: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(fields)
    return out.getvalue()


def _house_line(draw, f: Files) -> None:
    fields, m = _house_valid(draw)
    kind = draw(st.sampled_from(["valid", "valid", "count", "quote", "cr", "spoil", "spoil", "spoil"]))
    line: str | bytes
    if kind == "valid":
        f.valid.add(m)
        f.house.append(_csv(fields))
        return
    if kind == "count":
        line = _csv(fields + ["extra"] if draw(st.booleans()) else fields[:-1])
    elif kind == "quote":
        line = _csv(fields[:5]) + ',"' + m + " never closed," + _csv(fields[6:])
    elif kind == "cr":
        line = _csv(fields[:5]) + f",{m}\rx," + _csv(fields[6:])
    else:
        row = _spoil(draw, f, dict(zip(KNOWN["house"], fields)), KNOWN["house"], None, csv_row=True)
        line = _csv(list(row.values()))
        for token in [t for t in f.swaps if t in line]:
            line = line.encode().replace(token.encode(), f.swaps.pop(token))
    f.house.append(line)
    f.bad.add(("house", f"line {len(f.house) + 1}"))


HEADER = _csv(KNOWN["house"])


def write_files(f: Files, directory: Path) -> None:
    def dump(name: str, value: list) -> None:
        data = json.dumps(value).encode()
        for token, raw in f.swaps.items():
            data = data.replace(token.encode(), raw)
        with gzip.open(directory / name, "wb", compresslevel=1) as out:
            out.write(data)

    dump("senate_transactions.json.gz", f.senate)
    dump("senate_filings.json.gz", f.filings)
    body = b"\n".join(x if isinstance(x, bytes) else x.encode() for x in [HEADER, *f.house]) + b"\n"
    with gzip.open(directory / "house_transactions.csv.gz", "wb", compresslevel=1) as out:
        out.write(body)


@pytest.fixture(scope="module")
def fuzz_db(database_url):
    from tests.scratch import scratch_database

    with scratch_database(database_url, "qp_fuzz", migrated=True) as db:
        yield db


def _check_one(engine, f: Files, directory: Path) -> None:
    write_files(f, directory)
    report = load_congress(engine, [directory])  # must not raise, whatever the rows hold
    with engine.connect() as c:
        letters = c.execute(text("SELECT source, field, reason FROM dead_letters WHERE source LIKE 'load-congress:%'")
                            ).all()
        stored = {r[0][:14] for r in c.execute(text(
            "SELECT asset_description FROM trades WHERE asset_description LIKE 'fz%'"))}
    where = {(s.removeprefix("load-congress:"), r.rsplit("[", 1)[1].rstrip("]")) for s, _, r in letters}
    assert where == f.bad, (sorted(f.bad - where)[:5], sorted(where - f.bad)[:5])
    assert len(letters) == len(f.bad) and all(field and ": " in reason for _, field, reason in letters)
    assert not [r for _, _, r in letters if r.startswith("unexpected:")]  # each bad row is a known case
    assert f.valid <= stored and report.trades_valid == len(f.valid) == report.trades_inserted
    assert report.total_rejected == len(f.bad)
    TOTAL["bad"] += len(f.bad)
    TOTAL["valid"] += len(f.valid)


@pytest.mark.timeout(900)
def test_fuzzed_files_keep_every_valid_row_and_dead_letter_every_bad_one(fuzz_db, tmp_path):
    """About 100 generated file sets, >= 10,000 bad rows in all. No shrinking: each example is a
    real load, and the assertion already names the rows that went wrong."""
    url, engine = fuzz_db

    @settings(max_examples=int(os.environ.get("QP_FUZZ_EXAMPLES", "100")), deadline=None, database=None,
              phases=[Phase.explicit, Phase.reuse, Phase.generate],
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.function_scoped_fixture])
    @given(congress_files())
    def one(f: Files) -> None:
        _check_one(engine, f, tmp_path)

    one()
    print(f"congress fuzz: {TOTAL['bad']} bad rows dead-lettered, {TOTAL['valid']} valid rows stored")
    assert TOTAL["bad"] >= 10_000 or os.environ.get("QP_FUZZ_EXAMPLES"), TOTAL
    assert TOTAL["valid"] > 0


@pytest.mark.parametrize("name,content,message", [
    ("senate_filings.json.gz", b"not gzip", "cannot read it as gzip"),
    ("senate_filings.json.gz", gzip.compress(b'[{"a": 1}, {"b": ', mtime=0)[:-6], "cannot read it as gzip"),
    ("senate_filings.json.gz", gzip.compress(b'[{"a": 1}, {"b": ', mtime=0), "not JSON: Expecting value at line 1"),
    ("senate_filings.json.gz", gzip.compress(b'{"rows": []}', mtime=0), "expected a JSON array of rows, got dict"),
    ("senate_filings.json.gz", gzip.compress(b"[" * 200_000 + b"]" * 200_000, mtime=0), "nested too deeply"),
    ("house_transactions.csv.gz", gzip.compress(b"a,b\n1,2\n", mtime=0), "header must name each column once"),
])
def test_an_unreadable_file_is_refused_whole_naming_the_file(fuzz_db, tmp_path, name, content, message):
    url, engine = fuzz_db
    (tmp_path / name).write_bytes(content)
    with engine.connect() as c:
        before = c.execute(text("SELECT count(*) FROM trades")).scalar()
    with pytest.raises(CongressFileError, match=message) as exc:
        load_congress(engine, [tmp_path])
    assert name in str(exc.value)
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM trades")).scalar() == before


def test_cli_says_which_row_and_why(fuzz_db, tmp_path):
    url, engine = fuzz_db
    link = f"https://example.invalid/{uuid.uuid4().hex}"
    f = Files(filings=[{"first_name": "Eli", "last_name": "Fuzzberg", "ptr_link": link, "date_recieved": FILED,
                        "transactions": []}])
    good = {"transaction_date": "02/03/2020", "owner": "Self", "ticker": "AAPL", "asset_description": _marker(),
            "asset_type": "Stock", "type": "Purchase", "amount": "$1,001 - $15,000", "comment": "--",
            "senator": "Eli Fuzzberg", "ptr_link": link}
    f.senate = [good, {**good, "ticker": "AA\x00PL", "comment": "x"}, {**good, "amount": 15000, "comment": "y"}]
    token = f"@@{uuid.uuid4().hex}@@"
    f.house = [_csv(house_fields(_marker(), dt.date(2020, 1, 2))),
               _csv(house_fields(_marker(), dt.date(2020, 1, 2), text=token)).encode().replace(token.encode(),
                                                                                               BAD_BYTES),
               _csv(house_fields(_marker(), dt.date(2020, 1, 2))[:-1]),
               _csv(house_fields(_marker(), dt.date(2020, 1, 2), amount="$" + "9" * 100))]
    write_files(f, tmp_path)
    out = run_cli("data", "load-congress", str(tmp_path), env={**os.environ, "DATABASE_URL": url}).stdout
    lines = " ".join(out.split())
    for said in ("senate_transactions row 2: ticker: contains a NUL character (unstorable)",
                 "senate_transactions row 3: amount: Input should be a valid string (not_text)",
                 "house line 3: asset_description: is not valid UTF-8 (not_utf8)",
                 "house line 4: line: expected 12 fields, got 11 (bad_record)",
                 "house line 5: amount: String should have at most 64 characters (too_long)",
                 "trades valid: 2"):
        assert said in lines, (said, out)
    with engine.connect() as c:
        payloads = c.execute(text("SELECT payload_bytes, payload FROM dead_letters WHERE reason LIKE '%[line 3]'")
                             ).all()
    assert len(payloads) == 1 and payloads[0][0] > 0  # the undecodable line is kept (escaped)
