"""A universe tick in units, two at a time: the next unit's read and detection overlap this unit's
persist and publish.

Why: a warm 503-symbol tick spent about as long in the client (window decode, detection, the
persist's JSON: ~120 ms CPU) as waiting on PostgreSQL (the read and the persist: ~200 ms), one
after the other (issue #16 item 2). Here unit *i*'s persist + COMMIT + PUBLISHes run in a helper
thread on one of the process's two live connections while the calling thread sends unit *i + 1*'s
first round trip on the other and detects on it; psycopg2 and redis-py release the GIL while they
wait, so the client's CPU and the server's work proceed together.

What stays as in ``live_path`` (one unit at a time): each unit is one transaction and publishes
after its COMMIT; unit *i + 1*'s persist starts only after unit *i* published, so an event still
waits for its own unit only; a unit's sent mark rides on a later unit's first round trip (here
unit *i + 2*'s: unit *i + 1*'s read was sent before unit *i* published), the last two on the way
out. Unit *i + 1*'s read may run after unit *i*'s COMMIT and before its mark: ``pending`` keeps
those rows from sending unit *i + 1* down the claim path. The units hold different symbols, so the
two transactions touch different rows. A failure anywhere lets the other unit end (committed, or
rolled back), marks what was published and raises: whole units only are committed, and the
redelivered tick adds nothing they already added (``test_live_units.py``).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

from sqlalchemy import Engine

from workers.gc_pause import gc_paused

from . import live_path
from .live_path import LiveResult
from .window_cache import WindowCache


def run(engine: Engine, redis_client, timeframe: str, tier: str, units: list[dict[str, dict]], ttl_hours: float,
        cache: WindowCache, source: str, letters: Sequence = ()) -> list[LiveResult]:
    """Each of ``units`` ({symbol: validated bar}) through ``live_path``'s steps, overlapped as above;
    ``letters`` commit with the last unit. Results in unit order (all of them, or an exception)."""
    if len(units) == 1:  # nothing to overlap
        r = live_path.ingest(engine, redis_client, timeframe, tier, units[0], ttl_hours, cache, source, letters)
        return [r]
    results: list[LiveResult] = []

    def marks(done: list[LiveResult]) -> list[int]:  # ids those units published, sent mark not committed
        return [x for r in done for x in (r.unmarked or [])]

    def open_unit(i: int, pending: Sequence[str]) -> live_path.Unit:
        # unit i - 2's mark rides on this read; unit i - 1 may still be publishing
        return live_path.begin(engine, timeframe, tier, units[i], ttl_hours, cache, source,
                               letters if i == len(units) - 1 else (), marks(results[i - 2:i - 1]) if i >= 2 else [],
                               slot=i % 2, pending=pending)

    with gc_paused(), ThreadPoolExecutor(1, thread_name_prefix="live-tick") as pool:
        nxt = open_unit(0, ())
        try:
            for i in range(len(units)):
                unit, nxt = nxt, None
                job = pool.submit(live_path.finish, unit, redis_client, True)
                try:
                    if i + 1 < len(units):
                        nxt = open_unit(i + 1, list(unit.events))
                finally:
                    results.append(job.result())  # on an error above, unit i still ends (committed or rolled back)
                    unit.keep()
        except BaseException as exc:
            if nxt is not None:  # opened, then unit i failed: roll the next one back
                nxt.fail(exc)
            _mark_quietly(engine, marks(results[-2:]))  # the marks no read carried
            raise
    live_path.mark_sent(engine, marks(results[-2:]))
    return results


def _mark_quietly(engine: Engine, ids: list[int]) -> None:
    """Best effort on the way out of a failed tick: an unmarked row is the relay's, and its flow's
    marker keeps it from being published twice."""
    try:
        live_path.mark_sent(engine, ids)
    except Exception:  # noqa: BLE001 - the unit's own error is the one to raise
        pass
