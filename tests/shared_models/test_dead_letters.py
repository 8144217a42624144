"""One dead-letter helper: any rejected input is kept, capped, measured and hashed."""

from __future__ import annotations

import hashlib
import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.orm import Session

from shared_models import dead_letters as dl
from shared_models.models import DeadLetter

POOL = "platform-test"


@pytest.fixture()
def clean(engine):
    def wipe():
        with engine.begin() as c:
            c.execute(text("DELETE FROM dead_letters WHERE pool = :p"), {"p": POOL})
    wipe()
    yield
    wipe()


def _rows(engine, source):
    with engine.connect() as c:
        return c.execute(text("SELECT field, reason, payload, payload_bytes, payload_sha256, payload_truncated, "
                              "octet_length(payload::text) AS stored FROM dead_letters "
                              "WHERE pool = :p AND source = :s ORDER BY id"), {"p": POOL, "s": source}).all()


def test_a_two_megabyte_entry_is_not_kept_whole(engine, clean):
    garbage = "\x00garbage" * 250_000  # 2 MB, with NULs PostgreSQL text cannot hold
    with engine.begin() as c:
        dl.keep(c, POOL, "big", "entry: not JSON", garbage, field="entry")
    (row,) = _rows(engine, "big")
    assert row.payload_bytes == len(garbage.encode()) == 2_000_000
    assert row.payload_sha256 == hashlib.sha256(garbage.encode()).hexdigest()
    assert row.payload_truncated and row.stored <= 2 * 4096 + 2  # escaped NULs may double the prefix
    assert row.payload.startswith("\\x00garbage") and row.field == "entry"


def test_small_payloads_are_kept_as_json_and_queryable(engine, clean):
    payload = {"user_id": 7, "bar": {"open": float("nan"), "volume": float("inf")}, "note": "a\x00b"}
    with Session(engine) as s, s.begin():
        dl.keep(s, POOL, "small", "bar.open: not finite", payload, field="bar.open")
    (row,) = _rows(engine, "small")
    assert not row.payload_truncated
    assert row.payload == {"user_id": 7, "bar": {"open": "NaN", "volume": "Infinity"}, "note": "a\\x00b"}
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM dead_letters WHERE pool = :p AND payload ->> 'user_id' = '7'"),
                         {"p": POOL}).scalar() == 1


def test_every_kind_of_writer_is_accepted(engine, clean):
    """Session, Connection, raw psycopg2 connection and cursor (the bulk loaders)."""
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        dl.keep(cur, POOL, "writers", "r", {"via": "cursor"})
        dl.keep(raw, POOL, "writers", "r", {"via": "connection"})
        raw.commit()
    finally:
        raw.close()
    with engine.begin() as c:
        dl.keep_many(c, POOL, [dl.Letter("writers", "r", {"via": "sqlalchemy"}, "via")])
    assert [r.payload["via"] for r in _rows(engine, "writers")] == ["cursor", "connection", "sqlalchemy"]


def test_forget_sources_replaces_a_loaders_earlier_letters(engine, clean):
    with engine.begin() as c:
        dl.keep_many(c, POOL, [dl.Letter("file-a", "r", {"i": i}) for i in range(3)])
        dl.keep(c, POOL, "file-b", "r", {"i": 9})
        assert dl.forget_sources(c, POOL, ["file-a"]) == 3
    assert len(_rows(engine, "file-a")) == 0 and len(_rows(engine, "file-b")) == 1


def test_rows_written_without_the_helper_are_measured_and_capped(engine, clean):
    """The trigger is the backstop: plain SQL and ORM inserts get size, hash and the cap too."""
    big = {"blob": "x" * 100_000}
    with Session(engine) as s, s.begin():
        s.add(DeadLetter(pool=POOL, source="orm", field=None, reason="r", payload=big))
    with engine.begin() as c:
        c.execute(text("INSERT INTO dead_letters (pool, source, reason, payload) VALUES (:p, 'sql', 'r', '[1]')"),
                  {"p": POOL})
    (orm,), (sql,) = _rows(engine, "orm"), _rows(engine, "sql")
    assert orm.payload_truncated and orm.payload_bytes > 100_000 and orm.stored < 4200
    assert sql.payload == [1] and sql.payload_bytes == 3 and not sql.payload_truncated
    assert sql.payload_sha256 == hashlib.sha256(b"[1]").hexdigest()


def test_deep_and_circular_payloads_are_kept():
    deep: list = []
    for _ in range(50_000):
        deep = [deep]
    loop: dict = {}
    loop["self"] = loop
    for payload in (deep, loop):
        row = dl.prepare(POOL, "odd", "r", payload, prefix_bytes=1024)
        assert row["payload_bytes"] > 0 and len(row["payload"].encode()) <= 2 * 1024 + 2
        json.loads(row["payload"])  # valid JSON text for ::jsonb


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True, allow_infinity=True) | st.integers()
    | st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from("\x00\\\"u0")),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=40)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=json_values | st.binary(max_size=600) | st.text(max_size=600),
       field=st.none() | st.text(max_size=150), reason=st.text(max_size=3000),
       prefix=st.integers(min_value=256, max_value=2048))
def test_anything_is_storable_and_bounded(engine, payload, field, reason, prefix):
    row = dl.prepare(POOL, "fuzz", reason, payload, field=field, prefix_bytes=prefix)
    with engine.begin() as c:  # PostgreSQL accepts every row the helper prepares
        stored = c.execute(text(dl._SA_SQL + " RETURNING payload, octet_length(payload::text)"), row).one()
        c.execute(text("DELETE FROM dead_letters WHERE pool = :p"), {"p": POOL})
    assert len(row["payload"].encode()) <= 2 * prefix + 2
    if not row["payload_truncated"] and not isinstance(payload, (str, bytes)):
        def same(a, b):
            if isinstance(a, float) and not math.isfinite(a):
                return b == str(a).replace("inf", "Infinity").replace("nan", "NaN")
            if isinstance(a, dict):
                keys = {k.replace("\x00", "\\x00"): v for k, v in a.items()}
                return isinstance(b, dict) and keys.keys() == b.keys() and all(same(keys[k], b[k]) for k in keys)
            if isinstance(a, list):
                return isinstance(b, list) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
            if isinstance(a, str):
                return b == a.replace("\x00", "\\x00")
            return a == b or (isinstance(a, (int, float)) and math.isclose(a, b))
        assert same(payload, stored[0]), (payload, stored[0])
