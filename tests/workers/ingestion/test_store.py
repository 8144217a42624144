"""Batched writes: decay formula, idempotency, concurrency, dead letters."""

from __future__ import annotations

import math
import threading
import time
import uuid

from sqlalchemy import text

from workers.ingestion import events as ev
from workers.ingestion import erasure, store
from workers.ingestion.batch import Reject
from tests.workers.ingestion.helpers import new_user

HALF_LIFE = 14 * 86400.0


def _event(user, entity="AAPL", action="view", ts=None, event_id=None):
    return {"event_id": event_id or str(uuid.uuid4()), "user_id": user, "entity_id": entity, "action": action,
            "weight": ev.ACTIONS[action], "ts": ts or time.time(), "metadata": {"k": 1}}


def _interest(engine, user, entity="AAPL"):
    with engine.connect() as c:
        return c.execute(text("SELECT * FROM ingest_interests WHERE user_id = :u AND entity_id = :e"),
                         {"u": user, "e": entity}).mappings().one_or_none()


def expected_score(events, half_life=HALF_LIFE):
    t_max = max(e["ts"] for e in events)
    return sum(e["weight"] * 2 ** (-(t_max - e["ts"]) / half_life) for e in events)


def test_decay_formula_and_no_cap(engine):
    user = new_user()
    t0 = time.time() - 60 * 86400
    evs = [_event(user, action=a, ts=t0 + i * 86400 * 3.5) for i, a in enumerate(["trade", "view", "search"] * 20)]
    with engine.begin() as c:
        n, users, _ = store.write_events(c, evs[:30], HALF_LIFE)
    with engine.begin() as c:
        store.write_events(c, evs[30:], HALF_LIFE)
    assert n == 30 and users == [user]
    row = _interest(engine, user)
    assert math.isclose(row["score"], expected_score(evs), rel_tol=1e-9)
    assert row["score"] > 1.0  # no cap: heavy users keep a ranking
    assert row["event_count"] == 60
    assert row["action_counts"] == {"trade": 20, "view": 20, "search": 20}


def test_out_of_order_batches_commute(engine):
    a, b = new_user(), new_user()
    t0 = time.time() - 10 * 86400
    evs = [_event(None, action=act, ts=t0 + i * 3600 * 7) for i, act in enumerate(["trade", "view", "alert"] * 5)]
    for user, order in ((a, evs), (b, list(reversed(evs)))):
        for e in order:
            with engine.begin() as c:
                store.write_events(c, [dict(e, user_id=user, event_id=str(uuid.uuid4()))], HALF_LIFE)
    assert math.isclose(_interest(engine, a)["score"], _interest(engine, b)["score"], rel_tol=1e-9)
    assert math.isclose(_interest(engine, a)["score"], expected_score(evs), rel_tol=1e-9)


def test_replayed_batch_changes_nothing(engine):
    user = new_user()
    evs = [_event(user, action="trade") for _ in range(50)]
    with engine.begin() as c:
        assert store.write_events(c, evs, HALF_LIFE)[0] == 50
    before = _interest(engine, user)
    with engine.begin() as c:
        assert store.write_events(c, evs + evs[:5], HALF_LIFE)[0] == 0
    assert _interest(engine, user) == before


def test_eight_concurrent_producers_one_row_exact_score(engine):
    user = new_user()
    t0 = time.time() - 86400
    batches = [[_event(user, entity="TSLA", action=("trade", "view", "search")[(w + i) % 3], ts=t0 + w * 97 + i * 13.0)
                for i in range(200)] for w in range(8)]
    barrier = threading.Barrier(8)
    errors = []

    def produce(batch):
        try:
            barrier.wait()
            for i in range(0, len(batch), 20):
                with engine.begin() as c:
                    store.write_events(c, batch[i:i + 20], HALF_LIFE)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=produce, args=(b,)) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with engine.connect() as c:
        rows = c.execute(text("SELECT score, event_count FROM ingest_interests WHERE user_id = :u"),
                         {"u": user}).all()
    assert len(rows) == 1
    flat = [e for b in batches for e in b]
    assert rows[0].event_count == 1600
    assert math.isclose(rows[0].score, expected_score(flat), rel_tol=1e-9)


def test_far_decayed_scores_do_not_underflow(engine):
    user = new_user()
    old = _event(user, action="view", ts=946684800 + 10)
    with engine.begin() as c:
        store.write_events(c, [old], 3600.0)  # half-life 1 h: 25 years = 200k half-lives
        store.write_events(c, [_event(user, action="trade")], 3600.0)
    assert math.isclose(_interest(engine, user)["score"], 10.0)


def test_negative_weights_lower_interest(engine):
    user = new_user()
    now = time.time()
    with engine.begin() as c:
        store.write_events(c, [_event(user, action="watchlist_add", ts=now - 10),
                               _event(user, action="watchlist_remove", ts=now)], HALF_LIFE)
    assert _interest(engine, user)["score"] < ev.ACTIONS["watchlist_add"]


def test_delete_user_rows_and_dead_letters(engine):
    user = new_user()
    with engine.begin() as c:
        store.write_events(c, [_event(user)], HALF_LIFE)
        store.dead_letter(c, [Reject({"user_id": user, "action": "nope"}, "action", "unknown", user)], "test")
    with engine.begin() as c:
        counts = erasure.delete_user_rows(c, user)
    assert counts["ingest_events"] == 1 and counts["ingest_interests"] == 1 and counts["dead_letters"] == 1


def test_purge_keeps_interests(engine):
    user = new_user()
    with engine.begin() as c:
        store.write_events(c, [_event(user, ts=time.time() - 400 * 86400), _event(user)], HALF_LIFE)
        assert store.purge_old_events(c, 90) >= 1
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM ingest_events WHERE user_id = :u"), {"u": user}).scalar() == 1
    assert _interest(engine, user)["event_count"] == 2


def test_awkward_strings_round_trip_exactly(engine):
    """The batch travels as PostgreSQL array literals: quotes, backslashes, braces, commas, NULL-like
    text and non-ASCII must arrive unchanged."""
    user = new_user()
    meta = {"q": 'say "hi"', "b": "C:\\temp\\{x}", "c": "a,b}{", "n": "NULL", "u": "żółw ✓", "e": ""}
    e = dict(_event(user, entity='BRK."B\\'), metadata=meta)
    e.pop("metadata_json", None)
    with engine.begin() as c:
        assert store.write_events(c, [e], HALF_LIFE)[0] == 1
    with engine.connect() as c:
        row = c.execute(text("SELECT entity_id, metadata, ts FROM ingest_events WHERE user_id = :u"),
                        {"u": user}).one()
    assert row.entity_id == 'BRK."B\\' and row.metadata == meta
    assert abs(row.ts.timestamp() - e["ts"]) < 1e-6


def _reference_text_array(values) -> str:
    """The literal as written before the unescaped fast path (every element escaped)."""
    return "{" + ",".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "}"


def test_text_array_equals_the_escaping_reference(engine):
    from hypothesis import given, settings, strategies as st

    @settings(max_examples=300, deadline=None)
    @given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                            max_size=12), max_size=8))
    def check(values):
        assert store._text_array(values) == _reference_text_array(values)
        assert store._text_array(iter(values)) == _reference_text_array(values)

    check()
    tricky = ['a"b', "c\\d", "NULL", "", "{x,y}", " sp "]
    with engine.connect() as c:
        got = c.execute(text("SELECT CAST(:a AS text[])"), {"a": store._text_array(tricky)}).scalar_one()
    assert got == tricky
