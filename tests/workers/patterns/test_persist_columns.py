"""``PERSIST_SQL`` reads a detection's columns from its event, which travels once (issue #16 item 2):
the stored row must still hold exactly the detection's own values, also where the event's differ
(an int volume, indicators with the two keys ``build_event`` adds) and for a bar time with
microseconds; the outbox payload is the event itself."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from workers.patterns.detection import Detection
from workers.patterns.publisher import PERSIST_SQL, persist_params


def test_stored_columns_are_the_detections_own_values(engine):
    sym = f"ZPC{uuid.uuid4().hex[:4].upper()}"
    bar = datetime(2035, 3, 1, 14, 30, 0, 123457, tzinfo=timezone.utc) + timedelta(days=uuid.uuid4().int % 3000)
    dets = [Detection(sym, "Doji", "daily", bar, 0.555, 10.1234, -1.25, 1234.75, 0, {"talib_value": 100.0}),
            Detection(sym, "Hammer", "intraday", bar + timedelta(minutes=1), 0.7, 9.5, 0.0, 10.0, 1,
                      {"direction": 1, "bar_time": 5.0, "relative_volume": 1.3}),
            Detection(sym, "Gap_Up", "daily", bar, 0.61, 11.0, 3.5, 2e9, 1, {})]
    events: dict = {}
    conn = engine.raw_connection()
    try:
        cur = conn.cursor()
        cur.execute(PERSIST_SQL, persist_params(dets, 24.0, events=events))
        assert len(cur.fetchall()) == 3
        cur.execute("SELECT d.pattern, d.symbol, d.tier, d.bar_ts, d.confidence, d.current_price, d.price_change, "
                    "d.volume, d.indicators, d.flow_id::text, o.payload FROM pattern_detections d "
                    "JOIN pattern_outbox o ON o.detection_id = d.id WHERE d.symbol = %(s)s", {"s": sym})
        got = {r[0]: r for r in cur.fetchall()}
        conn.rollback()
    finally:
        conn.close()
    for d in dets:
        row = got[d.pattern]
        assert row[1:8] == (d.symbol, d.tier, d.bar_ts, round(d.confidence, 2), d.current_price, d.price_change,
                            d.volume)
        assert isinstance(row[7], float) and row[8] == d.indicators
        ev = events[row[9]]
        assert row[10] == {**ev, "data": {**ev["data"], "user_count": 0}}
