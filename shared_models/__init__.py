"""quantpipe's shared models package: settings, engine/session, tables, query functions.

Heavy pieces are imported lazily so ``import shared_models`` stays cheap in CLI start-up.
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
