"""No cyclic GC during a hot unit of work.

A drain batch or a universe tick allocates tens of thousands of acyclic objects (entries,
events, rows: freed by reference counting) that still trigger generation-0..2 collections,
each walking the worker's whole heap (pandas, TA-Lib, SQLAlchemy). Measured in BENCHMARKS.md:
ingest split + array literals 6.3-7.0 -> 5.2-5.3 us per entry; patterns +70-130 ms of CPU in
2-3 of 7 warm ticks without it. Collection resumes after the unit.
"""

from __future__ import annotations

import contextlib
import gc


@contextlib.contextmanager
def gc_paused():
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
