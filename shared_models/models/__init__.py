"""All tables, one module per owner. Importing this package registers every table
on ``Base.metadata`` (Alembic and the tests rely on that)."""

from ..base import Base
from .core import DeadLetter, MarketBar
from . import api, ingest, patterns, discovery, shadow, notifications  # noqa: F401  (register tables)

__all__ = ["Base", "DeadLetter", "MarketBar"]
