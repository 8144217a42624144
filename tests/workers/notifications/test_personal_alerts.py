"""Personal pattern alerts (seed 000: "smart notifications — only for stocks they watch").

Users' libraries are built through the real ingest path (ShadowWatch.track / set_holdings, drained
by a real ingest worker); detections go through the patterns pool's real publisher; the alerts are
read back through a real ``quantpipe api``.
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from sqlalchemy import text

from shared_models.db import unit_of_work
from tests.api.conftest import api_server, keys  # noqa: F401 - fixtures (a real quantpipe api)
from tests.workers.ingestion.helpers import new_user, wait_for_events

SYMBOLS = ("ZQAA", "ZQBB", "ZQCC", "ZQDD")


def _detections(symbols, bar_ts: datetime, patterns=("Hammer", "Volume_Spike")):
    from workers.patterns.detection import Detection

    return [Detection(s, p, "daily", bar_ts, 0.8 + 0.01 * i, 10.0 + i, 1.5, 1e6, 1, {"relative_volume": 2.0})
            for i, s in enumerate(symbols) for p in patterns]


def _publish(detections):
    from workers.patterns.publisher import persist_detections

    with unit_of_work() as s:
        return persist_detections(s, detections, 24.0)


@pytest.fixture()
def libraries(engine, workers, celery_app):
    """Three users whose libraries differ: views (above and below the score), a watchlist, a holding."""
    from shadowwatch import ShadowWatchSync

    sw = ShadowWatchSync(database_url=engine.url.render_as_string(hide_password=False))
    a, b, c = new_user(), new_user(), new_user()
    events = ([(a, "ZQAA", "trade")] * 3 + [(a, "ZQBB", "view")] +          # a: ZQAA strongly, ZQBB barely
              [(b, "ZQBB", "trade")] * 3 + [(b, "ZQCC", "trade")] * 3 +   # b: ZQBB, ZQCC
              [(c, "ZQDD", "view")])                                     # c: ZQDD barely, but holds it
    for user, sym, action in events:
        sw.track(user_id=user, entity_id=sym, action=action, event_id=str(uuid.uuid4()))
    sw.set_holdings(c, ["ZQDD"])
    n = wait_for_events(engine, [a, b, c], len(events), kick=lambda: celery_app.send_task("ingest.drain"))
    assert n == len(events)
    with engine.connect() as conn:
        scores = dict(((u, e), s) for u, e, s in conn.execute(text(
            "SELECT user_id, entity_id, score FROM ingest_interests WHERE user_id = ANY(:u)"), {"u": [a, b, c]}))
    yield {"a": a, "b": b, "c": c, "scores": scores, "sw": sw}
    for u in (a, b, c):
        sw.delete_user(u)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM user_pattern_alerts WHERE symbol = ANY(:s)"), {"s": list(SYMBOLS)})


def test_each_user_sees_exactly_the_patterns_on_their_symbols(libraries, engine, api_server, keys):
    from shared_models.settings import get_settings

    min_score = get_settings().notify.alert_min_score
    a, b, c, scores = libraries["a"], libraries["b"], libraries["c"], libraries["scores"]
    assert scores[(a, "ZQAA")] >= min_score > scores[(a, "ZQBB")]   # the fixture means what it says
    bar = datetime(2031, 1, 6, tzinfo=timezone.utc) + timedelta(minutes=uuid.uuid4().int % 10_000)
    published = _publish(_detections(SYMBOLS, bar))
    assert len(published) == 8
    expected = {a: {"ZQAA"}, b: {"ZQBB", "ZQCC"}, c: {"ZQDD"}}
    headers = {"Authorization": f"Bearer {keys['track']}"}
    for user, symbols in expected.items():
        r = httpx.get(f"{api_server.url}/api/v1/users/{user}/alerts", headers=headers, timeout=30)
        assert r.status_code == 200, r.text
        rows = r.json()["data"]
        assert {x["symbol"] for x in rows} == symbols
        assert len(rows) == 2 * len(symbols)                    # both patterns of each of their symbols
        assert [x["created_at"] for x in rows] == sorted((x["created_at"] for x in rows), reverse=True)
        for x in rows:
            assert x["pattern"] in ("Hammer", "Volume_Spike") and 0.8 <= x["confidence"] <= 0.84
            assert x["why"].startswith(x["symbol"])
    [pinned] = {x["reason"] for x in httpx.get(f"{api_server.url}/api/v1/users/{c}/alerts", headers=headers,
                                                timeout=30).json()["data"]}
    assert pinned == "pinned"
    # user_count = the audience's size, in the PATTERN_PUBLISHED row and in the event (outbox payload)
    audience = {"ZQAA": 1, "ZQBB": 1, "ZQCC": 1, "ZQDD": 1}
    with engine.connect() as conn:
        logged = conn.execute(text(
            "SELECT e.symbol, e.user_count, o.payload FROM integration_events e JOIN pattern_outbox o "
            "ON o.flow_id = e.flow_id WHERE e.checkpoint = 'PATTERN_PUBLISHED' AND e.flow_id = ANY(:f)"),
            {"f": [uuid.UUID(p.flow_id) for p in published]}).all()
        counted = dict(conn.execute(text("SELECT CAST(flow_id AS text), count(*) FROM user_pattern_alerts "
                                         "WHERE flow_id = ANY(:f) GROUP BY 1"),
                                    {"f": [uuid.UUID(p.flow_id) for p in published]}).all())
    assert len(logged) == 8
    for symbol, user_count, payload in logged:
        assert user_count == audience[symbol] == payload["data"]["user_count"] == counted[payload["flow_id"]]
    # publishing the same detections again writes nothing (idempotent), audiences included
    assert _publish(_detections(SYMBOLS, bar)) == []


def test_erasure_removes_the_user_from_every_audience(libraries, engine):
    a, b = libraries["a"], libraries["b"]
    bar = datetime(2032, 1, 6, tzinfo=timezone.utc) + timedelta(minutes=uuid.uuid4().int % 10_000)
    _publish(_detections(("ZQBB",), bar))
    libraries["sw"].delete_user(b)
    with engine.connect() as conn:
        left = dict(conn.execute(text("SELECT user_id, count(*) FROM user_pattern_alerts WHERE user_id = ANY(:u) "
                                      "GROUP BY 1"), {"u": [a, b]}).all())
    assert b not in left and left.get(a, 0) == 0          # a follows ZQBB below the score: never in its audience
    _publish(_detections(("ZQBB",), bar + timedelta(days=1)))  # later patterns do not reach an erased user
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM user_pattern_alerts WHERE user_id = :u"), {"u": b}).scalar() == 0


def test_erasure_waits_for_a_publishing_transaction_in_flight(libraries, engine):
    """A pattern batch that already wrote b's alert but has not committed: the erasure waits for it,
    then deletes the row it wrote (no alert of an erased user survives the race)."""
    from shared_models.notifications import audience_params
    from workers.patterns.publisher import PERSIST_SQL, persist_params

    b = libraries["b"]
    bar = datetime(2033, 1, 6, tzinfo=timezone.utc) + timedelta(minutes=uuid.uuid4().int % 10_000)
    conn = engine.raw_connection()
    try:
        cur = conn.cursor()
        cur.execute(PERSIST_SQL, {**persist_params(_detections(("ZQCC",), bar), 24.0), **audience_params()})
        with engine.connect() as other:
            assert other.execute(text("SELECT count(*) FROM user_pattern_alerts WHERE user_id = :u AND "
                                      "symbol = 'ZQCC'"), {"u": b}).scalar() == 0   # not committed yet
        done = threading.Event()
        eraser = threading.Thread(target=lambda: (libraries["sw"].delete_user(b), done.set()), daemon=True)
        eraser.start()
        time.sleep(1.0)
        assert not done.is_set(), "the erasure did not wait for the publishing transaction"
        conn.commit()
        eraser.join(30)
        assert done.is_set()
    finally:
        conn.close()
    with engine.connect() as other:
        assert other.execute(text("SELECT count(*) FROM user_pattern_alerts WHERE user_id = :u"), {"u": b}).scalar() == 0
