"""Fuzz (#9 "Done means"): over 10,000 generated bad inputs per entry point, mixed with valid ones,
through a real ingest worker draining.

- ``track()``: every bad input is refused at the call with an EventValidationError naming the
  field (nothing reaches Redis); every accepted event is stored.
- a raw stream entry (anything written to ``shadowwatch:events`` by another producer): every
  valid entry is stored, every identical resend is a duplicate, every bad entry is dead-lettered
  with a field and a reason; the worker never crashes and nothing is left queued or pending.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from tests.workers.ingestion.helpers import make_license_key, new_user
from workers.app import app
from workers.ingestion.events import ACTIONS, MAX_METADATA_DEPTH, EventValidationError
from workers.ingestion.stream import GROUP, STREAM, ensure_group

pytestmark = pytest.mark.slow

BAD_PER_ENTRY_POINT = 10_000
ENTITIES = ["AAPL", "MSFT", "BRK.B", "BTC-USD", "ES=F", "NYSE:IBM", "SPY"]
NOW = time.time()  # strategies must not read the clock (hypothesis replays them)
IPS = ["203.0.113.9", "2001:db8::1", "198.51.100.7:8080", "http://[2001:db8::2]/x"]


def _nested(depth: int, leaf=1):
    value = leaf
    for i in range(depth):
        value = {"k": value} if i % 2 else [value]
    return value


# -- valid parts ------------------------------------------------------------------------------------------------
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**15, 10**15),
                    st.floats(allow_nan=False, allow_infinity=False, width=32),
                    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20),
                    st.sampled_from(IPS).map(lambda ip: f"from {ip} ok"))
good_metadata = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8).filter(lambda k: "\x00" not in k
                                                                             and not any(0xD800 <= ord(c) <= 0xDFFF
                                                                                         for c in k)),
                                                 inner, max_size=3)), max_leaves=8).map(lambda v: {"v": v})

# -- certainly-bad parts (per field; strings for user_id are left out on purpose: the seed-compat
#    work may make some of them valid) ------------------------------------------------------------------------
bad_user = st.one_of(st.integers(max_value=0), st.integers(min_value=2**63, max_value=2**70), st.booleans(),
                     st.none(), st.floats(), st.lists(st.integers(), max_size=2), st.binary(max_size=4))
bad_entity = st.one_of(
    st.just(""), st.text(min_size=33, max_size=60, alphabet="ABC"), st.sampled_from(
        ["ſPY", "ıbm", "ﬃ", "ＡＡＰＬ", "AAPL\u200b", "203.0.113.9", "2001:DB8::1", "10.0.0.1:80", "DROP TABLE x;",
         "a b", "$AAPL", "AAPL\x00"]),
    st.text(min_size=1, max_size=10).map(lambda s: s + "é"),
    st.integers(), st.none(), st.lists(st.text(max_size=3), max_size=2), st.floats())
bad_action = st.one_of(st.text(max_size=20).filter(lambda a: a not in ACTIONS and a != "watchlist"),
                       st.integers(), st.none(), st.lists(st.text(), max_size=1))
bad_metadata = st.one_of(
    st.lists(st.integers(), max_size=3), st.integers(), st.text(max_size=10),
    st.integers(MAX_METADATA_DEPTH + 1, 600).map(lambda d: {"deep": _nested(d)}),
    st.integers(5000, 20000).map(lambda n: {"big": "x" * n}),
    st.sampled_from([float("nan"), float("inf"), -float("inf")]).map(lambda f: {"x": [f]}),
    st.just({"x": "a\x00b"}), st.just({"x": "\ud83d"}))
# ... and those only Python can hold (a stream entry is JSON: there they would arrive as strings)
bad_track_metadata = st.one_of(bad_metadata, st.sampled_from([{"x": b"bytes"}, {"x": {1, 2}}, {"x": object()},
                                                              {(1, 2): "tuple key"}]))
bad_event_id = st.one_of(st.text(min_size=1, max_size=40).filter(lambda s: not _is_uuid(s)), st.integers(),
                         st.lists(st.integers(), max_size=2), st.floats(), st.booleans())
bad_ts = st.one_of(st.floats(min_value=NOW + 3600, max_value=1e12), st.floats(max_value=9.4e8),
                   st.sampled_from([float("nan"), float("inf"), True, "yesterday", datetime(2024, 1, 1)]))


def _is_uuid(s: str) -> bool:
    try:
        uuid.UUID(s)
        return True
    except ValueError:
        return False


# -- track() ----------------------------------------------------------------------------------------------------
@st.composite
def track_call(draw, user):
    """(the field made bad or None, kwargs): one valid call in ten; a bad call breaks exactly one field."""
    if draw(st.integers(0, 9)) == 0:
        return None, {"user_id": user, "entity_id": draw(st.sampled_from(ENTITIES)),
                      "action": draw(st.sampled_from(sorted(ACTIONS))), "metadata": draw(good_metadata),
                      "event_id": draw(st.one_of(st.none(), st.uuids().map(str))),
                      "ts": draw(st.one_of(st.none(), st.floats(NOW - 86400 * 30, NOW - 1)))}
    kwargs = {"user_id": user, "entity_id": "AAPL", "action": "view", "metadata": {"ok": 1}, "event_id": None,
              "ts": None}
    name = draw(st.sampled_from(["user_id", "entity_id", "action", "metadata", "event_id", "ts"]))
    kwargs[name] = draw({"user_id": bad_user, "entity_id": bad_entity, "action": bad_action,
                         "metadata": bad_track_metadata, "event_id": bad_event_id, "ts": bad_ts}[name])
    return name, kwargs


def test_track_refuses_every_bad_input_at_the_call_and_stores_every_good_one(workers, engine, database_url,
                                                                             redis_url):
    from shadowwatch import ShadowWatchSync

    sw = ShadowWatchSync(database_url, redis_url, make_license_key())
    user = new_user()
    accepted: list[str] = []
    refused = [0]

    @settings(max_examples=115, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(calls=st.lists(track_call(user), min_size=110, max_size=110))
    def run(calls):
        for bad_field, kwargs in calls:
            try:
                eid = sw.track(**kwargs)
            except EventValidationError as exc:
                assert bad_field is not None, f"valid input refused: {exc} ({kwargs!r:.300})"
                assert exc.field.split(".")[0].split("[")[0] == bad_field, (exc.field, bad_field, repr(kwargs)[:300])
                assert str(exc).startswith(exc.field + ":") and exc.reason
                refused[0] += 1
                continue
            assert bad_field is None, f"bad {bad_field} accepted: {kwargs[bad_field]!r:.200}"
            accepted.append(eid)

    counter = sw.quota()[0]
    used_before = int(sw.redis.get(counter) or 0)
    run()
    assert refused[0] >= BAD_PER_ENTRY_POINT
    assert int(sw.redis.get(counter) or 0) - used_before == len(accepted)  # a refused call enqueued nothing
    ids = sorted(set(accepted))
    deadline = time.monotonic() + 120
    while True:
        app.tasks["ingest.drain"].apply_async(ignore_result=False).get(timeout=120)
        with engine.connect() as c:
            stored = c.execute(text("SELECT count(*) FROM ingest_events WHERE event_id = ANY(CAST(:i AS uuid[]))"),
                               {"i": ids}).scalar_one()
        if stored == len(ids) or time.monotonic() > deadline:
            break
    assert stored == len(ids) and len(ids) > 500
    sw.close()


# -- raw stream entries -----------------------------------------------------------------------------------------
def _event(user):
    return {"event_id": str(uuid.uuid4()), "user_id": user, "entity_id": "AAPL", "action": "view", "weight": 1.0,
            "ts": time.time() - 10, "metadata": {"ok": True}}


bad_weight = st.one_of(st.sampled_from([float("nan"), float("inf"), 1e4, -1e4, True]), st.text(max_size=5),
                       st.none(), st.lists(st.integers(), max_size=1))
bad_stream_action = st.one_of(st.text(max_size=20).filter(lambda a: not (a[:1].isascii() and a[:1].islower()
                                                                        and a.isascii())), st.integers(), st.none())


@st.composite
def stream_entry(draw, user):
    """(expected outcome, event_id, fields): 'valid', 'dup' (identical resend) or 'bad'."""
    e = _event(user)
    kind = draw(st.integers(0, 19))
    if kind <= 2:
        e["metadata"] = draw(good_metadata)
        e["entity_id"] = draw(st.sampled_from(ENTITIES))
        return "valid" if kind < 2 else "dup_of_next", e, {"e": json.dumps(e)}
    how = draw(st.sampled_from(["field", "field", "field", "missing", "null_id", "not_json", "not_object",
                                "no_e", "huge", "deep_text", "binary"]))
    if how == "field":
        name = draw(st.sampled_from(["user_id", "entity_id", "action", "weight", "ts", "metadata", "event_id"]))
        e[name] = draw({"user_id": bad_user, "entity_id": bad_entity, "action": bad_stream_action,
                        "weight": bad_weight, "ts": bad_ts, "metadata": bad_metadata, "event_id": bad_event_id}[name])
        try:
            raw = json.dumps(e, default=repr)
        except (ValueError, TypeError):
            raw = repr(e)
        return "bad", e, {"e": raw}
    if how == "missing":
        e.pop(draw(st.sampled_from(["event_id", "user_id", "entity_id", "action", "weight", "ts"])))
        return "bad", e, {"e": json.dumps(e)}
    if how == "null_id":
        return "bad", e, {"e": json.dumps(dict(e, event_id=None))}
    if how == "not_json":
        return "bad", e, {"e": draw(st.binary(min_size=1, max_size=50)).replace(b"{", b"(") + b"\xff"}
    if how == "not_object":
        return "bad", e, {"e": json.dumps(draw(st.one_of(st.integers(), st.lists(st.integers()), st.text())))}
    if how == "no_e":
        return "bad", e, {"x": draw(st.text(min_size=1, max_size=20))}
    if how == "huge":
        return "bad", e, {"e": json.dumps(dict(e, metadata={"b": "z" * draw(st.integers(7000, 200_000))}))}
    if how == "deep_text":
        d = draw(st.integers(17, 50_000))
        e.pop("metadata")
        return "bad", e, {"e": json.dumps(e)[:-1] + ',"metadata":{"m":' + "[" * d + "]" * d + "}}"}
    return "bad", e, {"e": draw(st.binary(min_size=1, max_size=200))}


def _dead_count(engine) -> int:
    with engine.connect() as c:
        return c.execute(text("SELECT count(*) FROM dead_letters WHERE pool = 'ingest'")).scalar_one()


def test_raw_stream_entries_valid_stored_bad_dead_lettered_nothing_stuck(workers, engine, redis_client):
    totals = {"bad": 0, "valid": 0, "dup": 0}

    @settings(max_examples=45, deadline=None, suppress_health_check=list(HealthCheck), database=None,
              phases=[Phase.explicit, Phase.generate])  # entries carry fresh ids: a replay is no shrink
    @given(data=st.data())
    def run(data):
        user = new_user()
        drawn = data.draw(st.lists(stream_entry(user), min_size=300, max_size=300))
        fields, valid_ids, bad = [], [], 0
        for outcome, event, f in drawn:
            if outcome == "bad":
                fields.append(f)
                bad += 1
            else:
                fields.append(f)
                valid_ids.append(event["event_id"])
                if outcome == "dup_of_next":
                    fields.append(f)  # identical resend: a duplicate, not a dead letter
                    totals["dup"] += 1
        # ids reused with other content (after the originals): dead letters, the stored event unchanged
        reused = [dict(event, entity_id="ZZZZ") for outcome, event, _ in drawn if outcome != "bad"][:5]
        fields += [{"e": json.dumps(e)} for e in reused]
        bad += len(reused)
        ensure_group(redis_client)
        dead_before = _dead_count(engine)
        pipe = redis_client.pipeline(transaction=False)
        for f in fields:
            pipe.xadd(STREAM, f)
        pipe.execute()
        deadline = time.monotonic() + 120
        while True:
            app.tasks["ingest.drain"].apply_async(ignore_result=False).get(timeout=120)  # raises if the task failed
            if redis_client.xlen(STREAM) == 0 and redis_client.xpending(STREAM, GROUP)["pending"] == 0:
                break
            assert time.monotonic() < deadline, "entries stuck in the stream"
        with engine.connect() as c:
            stored = c.execute(text("SELECT event_id::text, entity_id FROM ingest_events WHERE user_id = :u"),
                               {"u": user}).all()
            reasons = c.execute(text("SELECT field, reason FROM dead_letters WHERE pool = 'ingest' "
                                     "ORDER BY id DESC LIMIT :n"), {"n": max(bad, 1)}).all()
        missing, extra = set(valid_ids) - {r[0] for r in stored}, {r[0] for r in stored} - set(valid_ids)
        if missing:
            with engine.connect() as c:
                why = c.execute(text("SELECT field, reason FROM dead_letters WHERE pool = 'ingest' AND id > "
                                     "(SELECT max(id) - :n FROM dead_letters) AND payload::text LIKE :p"),
                                {"n": bad + 10, "p": f"%{next(iter(missing))}%"}).all()
        assert not missing, ([f for o, ev_, f in drawn if str(ev_.get("event_id")) in missing], why)
        assert not extra, [f for o, ev_, f in drawn if str(ev_.get("event_id")) in extra]
        assert "ZZZZ" not in {r[1] for r in stored}                     # a reused id overwrote nothing
        assert _dead_count(engine) - dead_before == bad                 # 100 % of bad ones dead-lettered
        assert all(f and r for f, r in reasons[:bad])                   # ... each with a field and a reason
        totals["bad"] += bad
        totals["valid"] += len(valid_ids)

    run()
    assert totals["bad"] >= BAD_PER_ENTRY_POINT and totals["valid"] > 1000 and totals["dup"] > 100
    for w in workers.values():  # no worker crashed along the way
        assert w.proc.poll() is None

