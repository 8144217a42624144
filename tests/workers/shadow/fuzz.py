"""Hypothesis strategies for trade rows: valid ones, and bad ones that say which field is bad.

The oracle is the generator, not the schema: every bad row is made by breaking one
field of a valid row in a way that is wrong whatever the schema says (a list as a
return, a year 9999, a NUL in an id), and carries the field it broke. Trade ids
of every row are fresh UUIDs drawn at call time, so a replayed example never
collides with an earlier one.
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime, timedelta, timezone

from hypothesis import strategies as st

T0 = datetime(2026, 1, 5, tzinfo=timezone.utc)
REQUIRED = ("trade_id", "opened_at", "closed_at", "return")
NOT_TEXT = st.one_of(st.floats(allow_nan=True), st.lists(st.integers(), max_size=3), st.booleans(),
                     st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
CONTROL = st.sampled_from([chr(c) for c in range(0x20)] + ["\x7f"])
SOLID = st.characters(blacklist_categories=("Z", "C"))          # no spaces, no controls, no surrogates


def fresh_id() -> str:
    return uuid.uuid4().hex


_VALID = st.tuples(st.integers(0, 10 ** 8), st.integers(0, 10 ** 6), st.floats(-0.999, 100.0, allow_nan=False),
                   st.one_of(st.none(), st.floats(-1e12, 1e12, allow_nan=False)), st.sampled_from([None, True, False]),
                   st.one_of(st.none(), st.integers(0, 10 ** 6)), st.booleans())


@st.composite
def valid_row(draw, as_text: bool = False) -> dict:
    """A valid trade; ``as_text``: every value a string, as a CSV cell is."""
    start, hold, ret, pnl, flag, opp, native_time = draw(_VALID)
    opened = T0 + timedelta(seconds=start)
    closed = opened + timedelta(seconds=hold)
    row = {"opened_at": opened if native_time and not as_text else opened.isoformat(),
           "closed_at": closed.isoformat(), "return": repr(ret) if as_text else ret}
    if pnl is not None:
        row["pnl"] = repr(pnl) if as_text else pnl
    if flag is not None:
        row["shadow"] = str(flag).lower() if as_text else flag
    if opp is not None:
        row["opportunity_id"] = f"sig-{opp}"
    return row


NOT_ISO = st.tuples(st.sampled_from(["yesterday", "soon", "T12:00", "2026-13-45T00:00:00", "2026/01/05 10:00",
                                     "9999-01-01T00:00:00", "1900-01-01T00:00:00", "2026-01-05T10:00:00\x00",
                                     "x" * 50]), st.sampled_from(["", " x", "??"])).map("".join)
BAD = {
    "trade_id": st.one_of(
        st.just(""), st.just("   "), st.text(SOLID, min_size=101, max_size=110).map(lambda t: fresh_id() + t),
        st.tuples(CONTROL, st.text(max_size=5)).map(lambda p: fresh_id() + p[0] + "x" + p[1]),
        st.builds(lambda: fresh_id() + "\ud800"), NOT_TEXT.filter(lambda v: not isinstance(v, int) or
                                                                isinstance(v, bool)), st.none()),
    "time": st.one_of(NOT_ISO, NOT_TEXT, st.integers(), st.none()),
    "return": st.one_of(
        st.sampled_from([math.nan, math.inf, -math.inf, "nan", "inf", "-inf", "1e999", "", "abc", "1,5", "0x10",
                         True, False, None]),
        st.floats(-1e300, -1.0, allow_nan=False, allow_infinity=False),
        st.floats(100.0, 1e300, exclude_min=True, allow_nan=False, allow_infinity=False),
        st.text(st.characters(whitelist_categories=("L",)), min_size=1, max_size=5),
        st.lists(st.floats(0, 1), max_size=2), st.dictionaries(st.text(max_size=2), st.integers(), max_size=1)),
    "pnl": st.one_of(st.sampled_from([math.nan, math.inf, "nan", "1e999", "abc", True, [1]]),
                     st.floats(1e15, 1e300, exclude_min=True, allow_infinity=False)),
    "shadow": st.one_of(st.lists(st.integers(), max_size=2), st.integers(2, 10 ** 6), st.floats(allow_nan=True),
                        st.sampled_from(["maybe", "2", "truthy", "-1"]),
                        st.dictionaries(st.text(max_size=2), st.integers(), max_size=1)),
    "opportunity_id": st.one_of(st.text(SOLID, min_size=101, max_size=110).map(lambda t: "s" + t),
                                CONTROL.map(lambda c: "sig" + c + "x"), st.floats(allow_nan=False),
                                st.lists(st.integers(), max_size=2)),
    "row": st.one_of(st.integers(), st.floats(), st.text(max_size=10), st.none(), st.booleans(),
                     st.lists(st.integers(), max_size=3)),
}
KINDS = st.sampled_from(["not_object", "missing", "trade_id", "opened_at", "closed_at", "order", "return", "pnl",
                         "shadow", "opportunity_id"])


@st.composite
def bad_row(draw, as_text: bool = False) -> tuple[object, str]:
    """(row, the field it breaks): one field of a valid row broken (the valid rows' variety is the good rows')."""
    row = {"trade_id": fresh_id(), "opened_at": "2026-01-05T14:30:00+00:00", "closed_at": "2026-01-05T14:35:00",
           "return": "0.0125" if as_text else 0.0125, "pnl": "12.5" if as_text else 12.5}
    kind = draw(KINDS)
    if kind == "not_object":
        return draw(BAD["row"]), "row"
    if kind == "missing":
        name = draw(st.sampled_from(REQUIRED))
        row.pop(name)
        return row, name
    if kind == "order":                                      # closed before opened
        opened = T0 + timedelta(days=draw(st.integers(10, 1000)))
        row["opened_at"], row["closed_at"] = opened.isoformat(), (opened - timedelta(seconds=1)).isoformat()
        return row, "closed_at"
    row[kind] = draw(BAD["time" if kind in ("opened_at", "closed_at") else kind])
    return row, kind


@st.composite
def batch(draw, good: int, bad: int, as_text: bool = False) -> list[tuple[object, str | None]]:
    """A shuffled batch of (row, broken field or None)."""
    rows = [(r, None) for r in draw(st.lists(valid_row(as_text=as_text), min_size=good, max_size=good))]
    rows += draw(st.lists(bad_row(as_text=as_text), min_size=bad, max_size=bad))
    out = draw(st.permutations(rows))
    for r, f in out:
        if f is None:
            r["trade_id"] = fresh_id()
    return out
