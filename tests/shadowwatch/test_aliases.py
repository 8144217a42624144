"""The client moved to the top-level ``shadowwatch`` package; the old names still work (one release)."""

from __future__ import annotations

import importlib
import sys

import pytest


def test_old_names_are_deprecated_aliases_of_the_new_package():
    import shadowwatch
    import shared_models

    with pytest.warns(DeprecationWarning, match="from shadowwatch import ShadowWatch"):
        assert shared_models.ShadowWatch is shadowwatch.ShadowWatch
    sys.modules.pop("shared_models.shadow_watch", None)
    with pytest.warns(DeprecationWarning, match="shared_models.shadow_watch is deprecated"):
        old = importlib.import_module("shared_models.shadow_watch")
    assert old.ShadowWatchSync is shadowwatch.ShadowWatchSync
    assert old.EventValidationError is shadowwatch.EventValidationError


def test_worker_drains_through_the_pool_not_the_client():
    """ingest.drain must not depend on the app-facing client."""
    import inspect

    from workers.ingestion import tasks

    source = inspect.getsource(tasks)
    assert "shadowwatch" not in source and "ShadowWatch" not in source and "drain_now" not in source
