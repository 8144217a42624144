"""Fuzz of the price-file loader (issue #9: >= 10,000 bad inputs, mixed with valid ones).

Bad rows inside otherwise good daily files (garbage numbers and times, inconsistent bars) and
whole bad files (wrong columns, not UTF-8, NUL, binary, ragged, broken gzip, empty): every good
row is stored exactly, every bad row is dead-lettered naming a field it really broke, every bad
file is refused with an error naming the file (and the line when there is one) and kept, and
no bad file stops the good ones. Values come from hypothesis pools; a seeded RNG assembles them.
"""

from __future__ import annotations

import gzip
import math
import random
import uuid
from datetime import date, timedelta

import pytest
from hypothesis import strategies as st
from sqlalchemy import text

from loaders.prices import load_prices
from tests.workers.patterns.fuzz_inputs import sample

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
N_BAD_ROWS = 10_000
HEADER = ["timestamp", "open", "high", "low", "close", "adjusted_close", "volume", "note"]
PRICES = {"open", "high", "low", "close", "adjusted_close"}


def _not_a_float(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return "," not in s and "\n" not in s and "\r" not in s and '"' not in s
    return False


_junk = st.text(max_size=12).filter(_not_a_float)
_bad_always = ["", "nan", "NaN", "inf", "-inf", "-1", "1e400", "1e13", "abc", "12..5", "1.2.3", "0x10", "--3"]
# > 0 and <= 1e7 after split adjustment (x adjusted_close/close, >= 0.25 here): 2e7 x 0.25 would be valid
_bad_price = st.one_of(_junk, st.sampled_from(_bad_always + ["0", "-0.0", "5e7"]))
_bad_volume = st.one_of(_junk, st.sampled_from(_bad_always + ["-0.5", "2e12"]))  # >= 0 and <= 1e12
_bad_time = st.one_of(_junk.filter(lambda s: not s.strip()[:4].isdigit()),
                      st.sampled_from(["", "9999-01-01", "1850-01-01", "2021-04-01 12:00:00", "2021-13-45",
                                       "2021-02-30", "yesterday", "2021/04/01x"]))


class Gen:
    def __init__(self, seed: int = 3) -> None:
        self.rng = random.Random(seed)
        self.numbers = sample(_bad_price, 300)
        self.volumes = sample(_bad_volume, 150)
        self.times = sample(_bad_time, 200)
        self.binary = sample(st.binary(min_size=1, max_size=300), 60)

    def good_row(self, day: int) -> list[str]:
        r = self.rng
        o = round(r.uniform(1, 500), 4)
        c = round(o * r.uniform(0.9, 1.1), 4)
        hi, lo = round(max(o, c) * r.uniform(1, 1.05), 4), round(min(o, c) * r.uniform(0.95, 1), 4)
        adj = round(c * r.choice([1.0, 1.0, 0.5, 0.25, 0.9731]), 4)
        ts = (date(1990, 1, 1) + timedelta(days=day)).isoformat()
        return [ts, str(o), str(hi), str(lo), str(c), str(adj), str(r.randint(0, 10 ** 8))]

    def bad_row(self, row: list[str]) -> set[str]:
        """Break ``row`` in place; return the fields an error may name."""
        r = self.rng
        kind = r.choice(["number", "number", "time", "ohlc", "many"])
        if kind == "time":
            row[0] = r.choice(self.times)
            return {"timestamp"}
        if kind == "ohlc":
            o, hi, lo, c = (float(x) for x in row[1:5])
            if r.random() < 0.5:
                row[1] = str(round(hi * 1.5 + 1, 4))  # open above high
            else:
                row[2] = str(round(lo / 2, 4))  # high below low
            return set(PRICES)
        cols = r.sample(range(1, 7), 1 if kind == "number" else r.randint(2, 4))
        for i in cols:
            row[i] = r.choice(self.volumes if HEADER[i] == "volume" else self.numbers)
        names = {HEADER[i] for i in cols}
        return names | (PRICES if names & PRICES else set())


def _dates_unique(gen: Gen, n: int) -> list[int]:
    return sorted(gen.rng.sample(range(0, 30 * 365), n))


def _bad_file(gen: Gen, path, i: int) -> str:
    """Write a file that is not a price CSV at all; return its kind."""
    r = gen.rng
    kind = ["header", "missing_column", "not_utf8", "binary", "ragged", "gzip", "empty"][i % 7]
    good = ",".join(HEADER[:7]) + "\n2021-04-01,10,11,9,10.5,10.5,100\n"
    if kind == "header":
        body = ",".join(r.choice(gen.numbers) or "x" for _ in range(r.randint(1, 6))) + "\n1,2\n"
        path.write_text(body)
    elif kind == "missing_column":
        drop = r.choice(HEADER[:5] + ["volume"])  # without adjusted_close it is the intraday layout
        cols = [c for c in HEADER[:7] if c != drop]
        path.write_text(",".join(cols) + "\n" + ",".join("1" for _ in cols) + "\n")
    elif kind == "not_utf8":
        path.write_bytes(good.encode() + b"2021-04-02,10,\xff\xfe11,9,10,10,1\n")
    elif kind == "binary":
        path.write_bytes(b"\x00" + r.choice(gen.binary))
    elif kind == "ragged":
        path.write_text(good + "2021-04-02,10,11,9,10,10,1,extra,fields\n")
    elif kind == "gzip":
        path.write_bytes(gzip.compress(good.encode())[:20])
    else:
        path.write_bytes(b"")
    return kind


def test_fuzz_load_prices(engine, tmp_path):
    gen = Gen()
    tag = "FL" + uuid.uuid4().hex[:2].upper()
    expect: dict[str, dict] = {}  # file name -> {"good": {ts text: row}, "bad": {note: fields}}
    n_bad_rows, k = 0, 0
    while n_bad_rows < N_BAD_ROWS:
        name = f"{tag}{k:04d}.csv"
        rows, good, bad = [], {}, {}
        for j, day in enumerate(_dates_unique(gen, 50)):
            row = gen.good_row(day)
            if gen.rng.random() < 0.8:
                fields = gen.bad_row(row)
                bad[str(j)] = fields
            else:
                good[row[0]] = list(row)
            rows.append(row + [str(j)])
        (tmp_path / name).write_text("\n".join(",".join(x) for x in [HEADER, *rows]) + "\n")
        expect[name] = {"good": good, "bad": bad}
        n_bad_rows += len(bad)
        k += 1
    bad_files = {}
    for i in range(400):
        name = f"{tag}X{i:03d}.csv"
        bad_files[name] = _bad_file(gen, tmp_path / name, i)

    report = load_prices(engine, [tmp_path])
    failed = {p.split("/")[-1]: e for p, e in ((f.path, f.error) for f in report.failed)}
    assert set(failed) == set(bad_files), set(failed) ^ set(bad_files)
    for name, error in failed.items():
        assert error.startswith(str(tmp_path / name) + ": "), error
        if bad_files[name] in ("header", "missing_column", "not_utf8", "ragged"):
            assert "line " in error, (bad_files[name], error)
    loaded = {f.path.split("/")[-1]: f for f in report.files}
    assert set(loaded) == set(expect)
    wrong = []
    with engine.connect() as c:
        letters = c.execute(text("SELECT source, field, reason, payload->>'note' FROM dead_letters "
                                 "WHERE source LIKE :s"), {"s": f"load-prices:{tag}%"}).all()
        stored = c.execute(text("SELECT symbol, to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD'), open, high, low, "
                                "close, volume FROM market_bars WHERE symbol LIKE :s"), {"s": f"{tag}%"}).all()
    by_file: dict[str, dict] = {}
    for source, field, reason, note in letters:
        by_file.setdefault(source.removeprefix("load-prices:"), {})[note] = (field, reason)
    for name, exp in expect.items():
        got = by_file.get(name, {})
        if set(got) != set(exp["bad"]):
            wrong.append((name, "dead letters", sorted(set(got) ^ set(exp["bad"]))[:5]))
        for note, fields in exp["bad"].items():
            if note in got and got[note][0] not in fields:
                wrong.append((name, note, got[note], fields))
        if loaded[name].loaded != len(exp["good"]):
            wrong.append((name, "loaded", loaded[name].loaded, len(exp["good"])))
    assert not wrong, f"{len(wrong)} wrong, e.g. {wrong[:5]}"
    assert all(failed_name in by_file for failed_name in bad_files), "a refused file was not kept"
    rows = {(s, d): v for s, d, *v in stored}
    for name, exp in expect.items():
        sym = name.removesuffix(".csv")
        for ts, (t, o, hi, lo, c, adj, vol) in exp["good"].items():
            f = float(adj) / float(c)
            want = [float(o) * f, float(hi) * f, float(lo) * f, float(c) * f, float(vol)]
            have = rows.get((sym, ts))
            assert have is not None and all(math.isclose(a, b, rel_tol=1e-12) for a, b in zip(have, want)), \
                (sym, ts, have, want)
    assert len(rows) == sum(len(e["good"]) for e in expect.values())
    assert n_bad_rows + len(bad_files) >= N_BAD_ROWS

