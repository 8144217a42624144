"""Issue #15 item 3: between a PATTERN_PUBLISHED row and its PUBLISH the producer does one
database round trip (COMMIT + claim) and opens nothing. Behaviour, not a timing goal: the
figures (log row -> PUBLISH against a floor, on every path) are benchmarks/patterns_flow.py's."""

from datetime import datetime, timezone

import psycopg2.extensions
import redis
from sqlalchemy import create_engine

from shared_models.db import normalize_url

from workers.patterns.detection import Detection
from workers.patterns.live_path import publish_detections
from workers.patterns.publisher import CHANNEL

LOG: list[tuple] = []


class _Cursor(psycopg2.extensions.cursor):
    def execute(self, query, vars=None):
        LOG.append(("sql", query if isinstance(query, str) else query.decode()))
        return super().execute(query, vars)


class _Connection(psycopg2.extensions.connection):
    def __init__(self, *args, **kwargs):
        LOG.append(("connect",))
        super().__init__(*args, **kwargs)

    def cursor(self, *args, **kwargs):
        kwargs.setdefault("cursor_factory", _Cursor)
        return super().cursor(*args, **kwargs)


class _Redis:
    """The real client; records when a publish script is sent and any new connection."""

    def __init__(self, url):
        self.client = redis.Redis.from_url(url)

    def register_script(self, source):
        script = self.client.register_script(source)

        def recorded(*a, **k):
            LOG.append(("publish",))
            return script(*a, **k)

        return recorded


def _det(i):
    return Detection("FLOWRT", "Doji", "daily", datetime(2021, 1, 4 + i, tzinfo=timezone.utc), 0.8, 10.0, 0.0, 1.0,
                     0, {})


def test_one_round_trip_between_the_log_row_and_the_publish(database_url, redis_url, redis_client):
    engine = create_engine(normalize_url(database_url),
                           connect_args={"connection_factory": _Connection})
    client = _Redis(redis_url)
    sub = redis_client.pubsub(ignore_subscribe_messages=True)
    sub.subscribe(CHANNEL)
    try:
        publish_detections(engine, client, [_det(0)], 24)  # warm: the process's live connection exists
        LOG.clear()
        out = publish_detections(engine, client, [_det(1), _det(2)], 24)
        assert out.published == 2 and out.error is None and out.subscribers >= 2
        kinds = [e[0] for e in LOG]
        log_at = next(i for i, e in enumerate(LOG) if e[0] == "sql" and "INSERT INTO integration_events" in e[1])
        publish_at = kinds.index("publish")
        between = LOG[log_at + 1:publish_at]
        assert "connect" not in kinds, "a database connection was opened for the publish"
        assert len(between) == 1 and between[0][1].startswith("COMMIT; BEGIN;") and "pattern_outbox" in between[0][1]
        assert kinds[publish_at + 1:] == ["sql"]  # the sent mark's COMMIT, after the publish
    finally:
        sub.close()
        engine.dispose()
