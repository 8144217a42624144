"""The watchdog: facts no single transaction records, observed every QUANTPIPE_NOTIFY_WATCH_SECONDS.

- ``patterns.producer_down``: the producer's heartbeat (the Redis key of the TickStock
  contract, or failing that the newest PRODUCER_ALIVE row) is older than
  QUANTPIPE_NOTIFY_PRODUCER_DOWN_SECONDS. One alert per outage: the key is the last
  heartbeat's time, which stays put while the producer is down. A producer that never
  beat is not "down" (the pool is not deployed).
- ``pipeline.dead_letters``: a pool kept at least QUANTPIPE_NOTIFY_DEAD_LETTER_BURST dead
  letters within the last window; at most one alert per pool and window.

Each alert is raised in the transaction that observed it (``raise_alert``), so a
re-run in the same outage or window writes nothing new.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

from sqlalchemy import Engine, text

from shared_models.notifications import raise_alert

HEARTBEAT_KEY = "tickstock:producer:heartbeat"  # DESIGN §4: the consumer's liveness contract


def last_heartbeat(engine: Engine, redis_client) -> tuple[float | None, str]:
    """(epoch of the producer's last sign of life, where it was seen)."""
    try:
        raw = redis_client.get(HEARTBEAT_KEY)
        if raw is not None:
            return float(raw), "redis"
    except ValueError:
        pass  # an unreadable key is no heartbeat; PostgreSQL still knows
    with engine.connect() as conn:
        row = conn.execute(text("SELECT extract(epoch FROM max(timestamp)) FROM integration_events "
                                "WHERE checkpoint = 'PRODUCER_ALIVE'")).scalar()
    return (float(row), "postgresql PRODUCER_ALIVE") if row is not None else (None, "never")


def check_producer(engine: Engine, redis_client, settings, now: float | None = None):
    now = time.time() if now is None else now
    last, source = last_heartbeat(engine, redis_client)
    limit = settings.notify.producer_down_seconds
    if last is None or now - last <= limit:
        return None
    data = {"age_seconds": round(now - last, 1), "limit_seconds": limit, "last_heartbeat": last, "source": source,
            "last_heartbeat_iso": datetime.fromtimestamp(last, timezone.utc).isoformat(timespec="seconds")}
    with engine.begin() as conn:
        return raise_alert(conn, "patterns.producer_down", f"{last:.3f}",
                           f"Pattern producer down: heartbeat {now - last:.0f} s old", data)


BURST_SQL = """
SELECT pool, count(*) FROM dead_letters WHERE created_at > now() - make_interval(secs => :w)
GROUP BY pool HAVING count(*) >= :n ORDER BY pool
"""
REASONS_SQL = """
SELECT source, left(reason, 200) AS reason, count(*) FROM dead_letters
WHERE pool = :pool AND created_at > now() - make_interval(secs => :w) GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 3
"""


def check_dead_letters(engine: Engine, settings) -> list:
    n = settings.notify
    raised = []
    with engine.begin() as conn:
        now = float(conn.execute(text("SELECT extract(epoch FROM now())")).scalar())  # numeric in PostgreSQL 14+
        bucket = int(now // n.dead_letter_window_seconds)
        for pool, count in conn.execute(text(BURST_SQL), {"w": n.dead_letter_window_seconds,
                                                          "n": n.dead_letter_burst}).all():
            top = [{"source": s, "reason": r, "count": c} for s, r, c in
                   conn.execute(text(REASONS_SQL), {"pool": pool, "w": n.dead_letter_window_seconds})]
            data = {"pool": pool, "count": int(count), "window_seconds": n.dead_letter_window_seconds,
                    "threshold": n.dead_letter_burst, "top_reasons": top}
            raised.append(raise_alert(conn, "pipeline.dead_letters", f"{pool}:{bucket}",
                                      f"{count} dead letters in the {pool} pool", data))
    return raised


def run(engine: Engine, redis_client, settings) -> dict:
    down = check_producer(engine, redis_client, settings)
    bursts = check_dead_letters(engine, settings)
    return {"producer_down": bool(down and not down.duplicate),
            "dead_letter_bursts": [r.key for r in bursts if not r.duplicate]}
