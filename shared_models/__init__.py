"""What the main app and every pool share: settings, engine/session, embedded servers, the
models, migration helpers, the dead-letter helper and the read queries the main app calls.

No pool's logic lives here (it is in ``workers/<pool>/``), no loader (``loaders/``) and no
test scaffolding (``tests/scratch.py``); see docs/architecture.md. Heavy pieces are
imported lazily so ``import shared_models`` stays cheap in CLI start-up.
"""

from __future__ import annotations

from typing import Any

from .base import Base
from .settings import Settings, SettingsError, get_settings

__all__ = ["Base", "Settings", "SettingsError", "get_settings", "ShadowWatch"]


def __getattr__(name: str) -> Any:
    if name == "ShadowWatch":  # deprecated alias (one release): the client is the top-level `shadowwatch`
        import warnings

        from shadowwatch import ShadowWatch

        warnings.warn("shared_models.ShadowWatch is deprecated; use `from shadowwatch import ShadowWatch`",
                      DeprecationWarning, stacklevel=2)
        return ShadowWatch
    raise AttributeError(name)
