"""Shadow Watch: the app-facing client of quantpipe's ingest pool.

    from shadowwatch import ShadowWatch          # async: await sw.track(...)
    from shadowwatch import ShadowWatchSync      # sync twin (also ``sw.sync``)

Thin over ``workers.ingestion`` (validation, stream, store, profile, trust, licences).
"""

from workers.ingestion.events import EventValidationError
from workers.ingestion.licenses import LicenseError

from .aio import ShadowWatch
from .client import ShadowWatchSync

__all__ = ["ShadowWatch", "ShadowWatchSync", "EventValidationError", "LicenseError"]
