"""``quant_shared``: the shared package under the name seed 002's services import.

The same objects as ``shared_models``, not copies: ``quant_shared.models`` gathers every
table class (``from quant_shared.models import Politician, Trade, PatternDiscovery,
AnomalyDetection``), and any other ``quant_shared.<name>`` is the module
``shared_models.<name>`` itself (``quant_shared.db is shared_models.db``), so sessions,
engines and metadata are shared with code that imports ``shared_models``.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

import shared_models as _shared
from shared_models import Base, Settings, SettingsError, get_settings  # noqa: F401

_OWN = {"quant_shared.models"}  # modules that live here (a superset of their shared_models namesake)


def __getattr__(name: str):
    return getattr(_shared, name)  # shared_models' lazy names, the same objects


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolve ``quant_shared.X`` to the already importable ``shared_models.X`` module object."""

    def find_spec(self, fullname, path, target=None):
        parts = fullname.split(".")
        if parts[0] != __name__ or len(parts) < 2 or fullname in _OWN:
            return None
        target_name = "shared_models." + ".".join(parts[1:])
        if importlib.util.find_spec(target_name) is None:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        module = importlib.import_module("shared_models" + spec.name[len(__name__):])
        self._specs[spec.name] = module.__spec__
        return module

    def exec_module(self, module) -> None:
        module.__spec__ = self._specs.pop(module.__spec__.name, module.__spec__)  # keep its own spec

    _specs: dict = {}


if not any(isinstance(f, _Alias) for f in sys.meta_path):
    sys.meta_path.insert(0, _Alias())
