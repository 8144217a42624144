"""CPU seconds of each part of the ingest benchmark (producer, workers, PostgreSQL, Redis).

Why: on a shared 2-core machine the end-to-end rate swings with the other jobs; CPU time per
event of each process group moves far less, and says where an event's cost goes. A group is a
process and its descendants alive at both readings (a process that exits in between is lost:
PostgreSQL's autovacuum workers, a small share).
"""

from __future__ import annotations

import os

import psutil


def _tree_cpu(pid: int | None) -> dict[int, float]:
    if not pid:
        return {}
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return {}
    out = {}
    for p in procs:
        try:
            t = p.cpu_times()
            out[p.pid] = t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return out


class CpuMeter:
    """``take()`` before and after a run; ``per_event(a, b, n)``: µs of CPU per event of each group."""

    def __init__(self, groups: dict[str, int | None]):
        self.groups = groups

    def take(self) -> dict[str, dict[int, float]]:
        snap = {name: _tree_cpu(pid) for name, pid in self.groups.items()}
        if "producer" in snap:  # this process only (its children are the servers or workers)
            t = psutil.Process(os.getpid()).cpu_times()
            snap["producer"] = {os.getpid(): t.user + t.system}
        return snap

    @staticmethod
    def per_event(before: dict, after: dict, n: int) -> dict[str, float]:
        out = {}
        for name, now in after.items():
            then = before.get(name, {})
            out[name] = sum(v - then.get(pid, 0.0) for pid, v in now.items()) / n * 1e6
        return out

    @staticmethod
    def line(per: dict[str, float]) -> str:
        total = sum(per.values())
        return ", ".join(f"{k} {v:.1f}" for k, v in per.items()) + f"; total {total:.1f} µs of CPU per event"
