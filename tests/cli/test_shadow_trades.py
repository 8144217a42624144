"""Fuzz: the CLI's CSV loader (`quantpipe shadow record-trades`) on 10,000+ generated bad lines mixed with good
ones — not UTF-8, ragged, bad cells, blank model. Every bad line is reported with its line and the field at
fault and dead-lettered; every good line is stored; the CLI itself never crashes."""

from __future__ import annotations

import csv
import io
import os
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from cli.shadow_trades import load
from shared_models.settings import get_settings
from tests.support import run_cli
from tests.workers.shadow.conftest import registry_db  # noqa: F401 (fixture)
from tests.workers.shadow.fuzz import BAD, CONTROL, NOT_ISO, SOLID, fresh_id, valid_row

COLUMNS = ["trade_id", "opened_at", "closed_at", "return", "pnl", "shadow", "opportunity_id", "model"]
CELL_BAD = {   # bad as CSV text, whatever a cell's text becomes
    "trade_id": st.one_of(st.just(""), st.just("  "), st.text(SOLID, min_size=101, max_size=110),
                          st.tuples(CONTROL, st.text(SOLID, max_size=3)).map(lambda p: "id" + p[0] + "x" + p[1])),
    "opened_at": NOT_ISO, "closed_at": NOT_ISO,
    "return": BAD["return"].map(lambda v: "" if v is None else str(v)),
    "pnl": BAD["pnl"].map(str),
    "shadow": BAD["shadow"].map(str),
    "opportunity_id": st.one_of(st.text(SOLID, min_size=101, max_size=110),
                                CONTROL.map(lambda c: "sig" + c + "x")),
}
KIND = st.sampled_from(["cell"] * 6 + ["ragged", "encoding", "model"])
BREAK = re.compile(rb"\r\n|\r|\n")


def starts(lines) -> list[int]:
    """First physical line of each record (a quoted cell may hold line breaks), after the header."""
    out, at = [], 2
    for b, _, _ in lines:
        out.append(at)
        at += len(BREAK.findall(b))
    return out


def _cells(row: dict, model: str = "fz") -> list[str]:
    return [str(row.get(c, "")) if c != "model" else model for c in COLUMNS]


def _line(cells: list[str]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf).writerow(cells)                  # \r\n: cells holding \r or \n get quoted
    return buf.getvalue().encode("utf-8")


@st.composite
def bad_line(draw) -> tuple[bytes, str]:
    """(line, the field it breaks): one cell of a valid line broken (the good lines carry the variety)."""
    row = {"trade_id": fresh_id(), "opened_at": "2026-01-05T14:30:00+00:00", "closed_at": "2026-01-05T14:35:00",
           "return": "0.0125", "pnl": "12.5", "shadow": "true", "opportunity_id": "sig-1"}
    kind = draw(KIND)
    if kind == "ragged":
        cells = _cells(row)
        cut = draw(st.integers(1, len(cells) + 3))
        cells = cells[:cut] if cut < len(cells) else cells + ["extra"] * (cut - len(cells) + 1)
        return _line(cells), "row"
    if kind == "encoding":
        col = draw(st.sampled_from(COLUMNS))
        cells = _cells(row)
        cells[COLUMNS.index(col)] += "§"
        return _line(cells).replace("§".encode(), draw(st.sampled_from([b"\xff", b"\xc3(", b"\x80", b"\xed\xa0\x80"]))), col
    if kind == "model":
        return _line(_cells(row, model="")), "model"
    col = draw(st.sampled_from(list(CELL_BAD)))
    row[col] = draw(CELL_BAD[col])
    return _line(_cells(row)), col


@st.composite
def trade_file(draw, good: int, bad: int):
    goods = []
    for row in draw(st.lists(valid_row(as_text=True), min_size=good, max_size=good)):
        row["trade_id"] = fresh_id()
        goods.append((_line(_cells(row)), None, row["trade_id"]))
    bads = [(b, f, None) for b, f in draw(st.lists(bad_line(), min_size=bad, max_size=bad))]
    return draw(st.permutations(goods + bads))


@pytest.mark.slow
def test_fuzz_the_csv_loader_of_record_trades(registry_db, tmp_path):  # noqa: F811
    from shared_models.db import unit_of_work
    from workers.shadow import registry

    with unit_of_work() as s:
        registry.deploy(s, "fz", "momentum", champion=True)
    good_ids: set[str] = set()
    counts = {"bad": 0}
    path = tmp_path / "trades.csv"

    @settings(max_examples=110, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(trade_file(good=15, bad=95))
    def one(lines):
        path.write_bytes(_line(COLUMNS) + b"".join(b for b, _, _ in lines))
        report = load(path, None, get_settings(), progress=False)
        want = [(n, f) for n, (_, f, _) in zip(starts(lines), lines) if f is not None]
        assert [(line, fld) for line, fld, _ in report.problems] == want
        assert all(reason.startswith(fld + ":") for _, fld, reason in report.problems)
        assert sum(r.inserted for r in report.results) == len(lines) - len(want)
        good_ids.update(i for _, f, i in lines if f is None)
        counts["bad"] += len(want)

    one()
    assert counts["bad"] >= 10_000, counts
    with registry_db.connect() as c:
        stored = set(c.execute(text("SELECT trade_id FROM shadow_trades")).scalars())
        letters = c.execute(text("SELECT count(*) FROM dead_letters WHERE pool = 'shadow'")).scalar()
    assert stored == good_ids and letters == counts["bad"]


@settings(max_examples=1, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(lines=trade_file(good=40, bad=160))
def test_the_cli_itself_on_a_generated_file(registry_db, tmp_path, lines):  # noqa: F811
    """The same generator through the real command: exit 0, every bad line counted, the good ones stored."""
    run_cli("shadow", "deploy", "fz", "--type", "momentum", "--champion")
    path = tmp_path / "gen.csv"
    path.write_bytes(_line(COLUMNS) + b"".join(b for b, _, _ in lines))
    out = run_cli("shadow", "record-trades", str(path), "--no-evaluate",
                  env={**os.environ, "COLUMNS": "200"}).stdout
    assert "160 line(s) rejected" in out and "… and 140 more" in out, out
    first = next(n for n, (_, f, _) in zip(starts(lines), lines) if f is not None)
    assert re.search(rf"^  line {first}: ", out, re.M), out
    with registry_db.connect() as c:
        assert c.execute(text("SELECT count(*) FROM shadow_trades")).scalar() == 40
