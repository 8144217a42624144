"""The one beat schedule: each pool contributes entries from its own ``schedule`` module."""

from __future__ import annotations

import importlib
from typing import Any

from .routing import POOLS

_POOL_PACKAGES = {"ingest": "ingestion", "patterns": "patterns", "discovery": "discovery", "shadow": "shadow"}


def build_schedule(settings) -> dict[str, Any]:
    schedule: dict[str, Any] = {}
    for pool in POOLS:
        module = importlib.import_module(f"workers.{_POOL_PACKAGES[pool]}.schedule")
        for name, entry in module.entries(settings).items():
            if not entry["task"].startswith(pool + "."):
                raise ValueError(f"beat entry {name!r} runs {entry['task']!r} outside pool {pool!r}")
            schedule[f"{pool}:{name}"] = entry
    return schedule
