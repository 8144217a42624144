"""In-worker cache of each (symbol, timeframe)'s last PANEL_WINDOW bars, for the live path.

Why: re-reading 261 bars per symbol on every new bar was half of a universe tick. A
cached window is only used while ``pattern_bar_versions.version`` (kept by statement
triggers on ``market_bars``, migration 0003) still equals the version it was read at:
appends of newer bars keep the version, so the live path then reads just the bars after
the cached one; anything else (an older bar inserted, a bar updated or deleted — e.g. the
loader re-adjusting history after a split —, a TRUNCATE) bumps it and the window is
re-read. The version check and the read are one statement (one snapshot), and an entry is
stored only after its transaction committed, so a rolled-back bar never enters the cache.

One cache per process (prefork children each have their own); LRU-bounded by
``PATTERNS_WINDOW_CACHE_SYMBOLS``.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from .live_batch import COLUMNS, PANEL_WINDOW, Segments


@dataclass(frozen=True)
class Window:
    """Bars of one symbol, oldest first, as one (1 + len(COLUMNS)) x n float array: row 0 the epoch
    seconds, then COLUMNS. One array, so a warm tick extends a window with one concatenate, not six
    (per symbol, ~500 a universe tick)."""

    version: int
    arr: np.ndarray

    @property
    def epoch(self) -> np.ndarray:
        return self.arr[0]

    @property
    def data(self) -> dict[str, np.ndarray]:
        return {k: self.arr[i + 1] for i, k in enumerate(COLUMNS)}

    @property
    def last_epoch(self) -> float:
        return float(self.arr[0, -1])

    def extended(self, version: int, new: np.ndarray, window: int = PANEL_WINDOW) -> "Window":
        """This window plus newer bars (an array shaped like ``arr``), trimmed to the last ``window`` bars."""
        if new.shape[1] == 0:
            return Window(version, self.arr)
        return Window(version, np.concatenate([self.arr, new], axis=1)[:, -window:])


class WindowCache:
    """LRU map (symbol, timeframe) -> Window; ``capacity`` 0 disables it (every get misses)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: OrderedDict[tuple[str, str], Window] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    def get(self, symbol: str, timeframe: str) -> Window | None:
        with self._lock:
            w = self._items.get((symbol, timeframe))
            if w is not None:
                self._items.move_to_end((symbol, timeframe))
            return w

    def put(self, symbol: str, timeframe: str, window: Window) -> None:
        if self.capacity <= 0:
            return
        with self._lock:
            self._items[(symbol, timeframe)] = window
            self._items.move_to_end((symbol, timeframe))
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def drop(self, symbols, timeframe: str) -> None:
        with self._lock:
            for s in symbols:
                self._items.pop((s, timeframe), None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_CACHES: dict[int, WindowCache] = {}


def process_cache() -> WindowCache:
    """This process's cache (a forked child starts empty rather than sharing its parent's)."""
    cache = _CACHES.get(os.getpid())
    if cache is None:
        from shared_models.settings import get_settings

        cache = _CACHES[os.getpid()] = WindowCache(get_settings().patterns.window_cache_symbols)
    return cache


def windows_from_rows(symbols: list[str], cached: list[Window | None], table: list[tuple]
              ) -> tuple[Segments, dict[str, Window], int]:
    """Each symbol's window (cached + the new rows, or ``live_path.READ_SQL``'s rows) as Segments for detection.

    The rows' float8 bytes are decoded once per column for all symbols (one join + frombuffer), and
    each symbol costs one slice and, when warm, one concatenate."""
    windows: dict[str, Window] = {}
    hits = 0
    cols = list(zip(*(row[3:4 + len(COLUMNS)] for row in table))) or [()] * (1 + len(COLUMNS))
    counts = np.array([len(b) // 8 if b is not None else 0 for b in cols[0]], dtype=np.int64)
    flat = np.vstack([np.frombuffer(b"".join(b for b in col if b is not None), dtype=">f8") for col in cols]
                     ).astype(np.float64)
    ends = np.cumsum(counts).tolist()
    for i, (k, version, warm, *_rest) in enumerate(table):
        s, w = symbols[k - 1], cached[k - 1]
        if version is None:
            continue  # no version row: nothing stored (cannot happen after the upsert)
        new = flat[:, ends[i] - int(counts[i]):ends[i]]
        if warm and w is not None:
            if new.shape[1] and new[0, 0] <= w.last_epoch:  # bars come oldest first
                new = new[:, new[0] > w.last_epoch]
            windows[s] = w.extended(int(version), new)
            hits += 1
        elif new.shape[1]:
            windows[s] = Window(int(version), new.copy())  # not a view: the cache must not pin ``flat``
    names = list(windows)
    if not names:
        return Segments([], np.array([], dtype=int), [], {c: np.array([]) for c in COLUMNS}), windows, hits
    ws = list(windows.values())
    cat = np.concatenate([w.arr for w in ws], axis=1)
    return (Segments(names, np.array([w.arr.shape[1] for w in ws]),
                     [datetime.fromtimestamp(w.last_epoch, timezone.utc) for w in ws],
                     {c: cat[i + 1] for i, c in enumerate(COLUMNS)}), windows, hits)
