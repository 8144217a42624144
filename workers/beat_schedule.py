"""The one beat schedule: each pool contributes entries from its own ``schedule`` module.

A ``schedule`` module is light (names and periods): beat imports no pool's tasks and
sends every entry by name, routed by its prefix.
"""

from __future__ import annotations

import importlib
from typing import Any

from .routing import POOL_PACKAGES, POOLS


def build_schedule(settings) -> dict[str, Any]:
    schedule: dict[str, Any] = {}
    for pool in POOLS:
        module = importlib.import_module(f"{POOL_PACKAGES[pool]}.schedule")
        for name, entry in module.entries(settings).items():
            if not entry["task"].startswith(pool + "."):
                raise ValueError(f"beat entry {name!r} runs {entry['task']!r} outside pool {pool!r}")
            schedule[f"{pool}:{name}"] = entry
        period = float(settings.retention.interval_seconds)  # workers/retention.py: each pool prunes its own rows
        schedule[f"{pool}:prune"] = {"task": f"{pool}.prune", "schedule": period, "options": {"expires": period}}
    return schedule
