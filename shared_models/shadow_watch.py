"""Deprecated alias (one release): the client moved to the top-level ``shadowwatch`` package."""

import warnings

from shadowwatch import EventValidationError, LicenseError, ShadowWatch, ShadowWatchSync  # noqa: F401

warnings.warn("shared_models.shadow_watch is deprecated; use `from shadowwatch import ShadowWatch`",
              DeprecationWarning, stacklevel=2)

__all__ = ["ShadowWatch", "ShadowWatchSync", "EventValidationError", "LicenseError"]
