"""The synchronous Shadow Watch client, thin over the ingest pool's logic (``workers.ingestion``).

``track()`` validates, stamps an event id and XADDs the event to a Redis Stream in one
round trip (a Lua script that also counts the licence's events); it never touches
PostgreSQL. The ``ingest.drain`` workers batch the stream into PostgreSQL. Everything
else (profiles, login trust, erasure, stats) reads PostgreSQL through the pool's modules.
"""

from __future__ import annotations

import time
import warnings
from typing import Any, Iterable, Mapping

from workers.ingestion import cache as cache_mod
from workers.ingestion import erasure, licenses, logins, profile, store, stream
from workers.ingestion import events as ev
from workers.ingestion import stats as stats_mod
from workers.ingestion.events import EventValidationError
from workers.ingestion.licenses import LicenseError
from workers.ingestion.pool import IngestPool
from shared_models.settings import Settings

__all__ = ["ShadowWatchSync", "EventValidationError", "LicenseError"]

DEV_WINDOW_SECONDS = 24 * 3600
ARGV_CHUNK = 1000


class _Core(IngestPool):
    """Shared state and logic of the sync and async clients."""

    def __init__(self, database_url: str | None = None, redis_url: str | None = None,
                 license_key: str | None = None, *, cache: str | Any = "redis",
                 settings: Settings | None = None, dev_event_limit: int | None = None):
        super().__init__(database_url, redis_url, cache=cache, settings=settings)
        self._enqueue = self.redis.register_script(stream.ENQUEUE_LUA)
        self.license_key = license_key or self.settings.ingest.license_key
        self._dev_event_limit = dev_event_limit or self.settings.ingest.dev_event_limit
        self._quota: tuple[str, int, int, dict | None] | None = None
        self._group_ready = False

    # -- licence -----------------------------------------------------------------------------------------------
    def license(self) -> dict | None:
        """The licence, its signature verified on every call (never trusted from Redis), or None in dev mode."""
        if not self.license_key:
            return None
        return licenses.verified_license(self.license_key, self.settings)  # raises LicenseError, expiry too

    @property
    def _local_mode(self) -> bool:
        """True without a licence key (the seed checks ``assert not sw._local_mode``)."""
        return not self.license_key

    @property
    def _event_limit(self) -> int | None:
        """The licence's event limit, None if unlimited; the dev-mode limit without a key.
        Verifies the key (LicenseError if it is invalid), as the seed's check expects."""
        lic = self.license()
        return self._dev_event_limit if lic is None else lic["events"]

    def quota(self) -> tuple[str, int, int, dict | None]:
        """(counter key, event limit (0: none), counter ttl, licence) for the shared Redis counter."""
        if self._quota is None or (self._quota[3] and time.time() >= self._quota[3]["expires"]):
            lic = self.license()
            if lic is None:
                warnings.warn("ShadowWatch: no licence key, running in local dev mode "
                              f"(limit {self._dev_event_limit} events per 24 h)", stacklevel=3)
                self._quota = (stream.USAGE_PREFIX + "dev", self._dev_event_limit, DEV_WINDOW_SECONDS, None)
            else:
                ttl = max(1, int(lic["expires"] - time.time()) + 86400)
                self._quota = (stream.USAGE_PREFIX + lic["id"], lic["events"] or 0, ttl, lic)
        return self._quota

    def usage(self) -> dict[str, Any]:
        key, limit, _, lic = self.quota()
        used = int(self.redis.get(key) or 0)
        return {"mode": "licensed" if lic else "dev", "license": lic, "used": used, "limit": limit or None}

    # -- track -------------------------------------------------------------------------------------------------
    def build(self, user_id: Any, entity_id: Any, action: Any, metadata: Any = None, event_id: Any = None,
              ts: Any = None) -> dict:
        return ev.build_event(user_id=user_id, entity_id=entity_id, action=action, metadata=metadata,
                              event_id=event_id, ts=ts, max_metadata_bytes=self.settings.ingest.max_metadata_bytes,
                              hash_ip=self.hasher.ip)

    def enqueue_args(self, events: list[dict]) -> tuple[list[str], list]:
        """The enqueue script's keys and arguments: consecutive events go as packs (stream.pack)."""
        key, limit, ttl, _ = self.quota()
        return [stream.STREAM, key], [limit, ttl, len(events), *stream.pack([stream.encode(e) for e in events])]

    def ensure_group(self) -> None:
        if not self._group_ready:
            stream.ensure_group(self.redis)
            self._group_ready = True

    def check_enqueued(self, result: int, n: int) -> None:
        if result == -1:
            _, limit, _, lic = self.quota()
            who = f"licence {lic['id']} of {lic['company']}" if lic else "local dev mode"
            raise LicenseError(f"event limit reached for {who} ({limit} events); {n} event(s) refused")

    def forget_local(self, user_ids: Iterable[str]) -> None:
        """A MemoryCache counts this process's tracked events per user (its staleness counter);
        a RedisCache's counter is advanced by the drain after COMMIT."""
        self.entries.note_tracked(user_ids)

    # -- reads and the client's own writes ---------------------------------------------------------------------
    def get_profile(self, user_id: Any, *, fresh: bool = False) -> dict:
        """The user's profile. Cached reads may lag by up to INGEST_CACHE_MAX_AGE_SECONDS and
        INGEST_CACHE_MAX_NEW_EVENTS committed events; ``fresh=True`` reads PostgreSQL (and
        re-caches). Events still queued in the stream are in neither."""
        user_id = ev.check_user_id(user_id)
        return profile.cached_profile(self.engine, self.entries, user_id, self.half_life_seconds, fresh=fresh)

    def fingerprint(self, user_id: Any, *, fresh: bool = False) -> dict:
        """The behavioural fingerprint, with the profile's staleness bound (``fresh=True``: none)."""
        user_id = ev.check_user_id(user_id)
        return profile.fingerprint(self.engine, self.entries, user_id, self.half_life_seconds, fresh=fresh)

    def set_holdings(self, user_id: Any, entity_ids: Iterable[str]) -> None:
        user_id = ev.check_user_id(user_id)
        ents = sorted({ev.check_entity_id(e) for e in entity_ids})
        with self.engine.begin() as conn:
            store.lock_for_writing(conn)  # an erasure in progress waits for this, then deletes it
            store.set_holdings(conn, user_id, ents)
        self.cache.delete(*cache_mod.entry_keys(user_id))  # the app's own write: read it back

    # -- logins ------------------------------------------------------------------------------------------------
    def reduce_context(self, ctx: Mapping[str, Any] | None):
        return logins.reduce_context(self.hasher, ctx)

    def verify_login(self, user_id: Any, request_context: Mapping[str, Any] | None = None) -> dict:
        user_id = ev.check_user_id(user_id)
        ctx = logins.reduce_context(self.hasher, request_context)
        top = set(self.fingerprint(user_id)["top_entities"])
        return logins.verify(self.engine, user_id, ctx, top)

    def confirm_login(self, user_id: Any, attempt_id: str, success: bool) -> dict:
        """The application reports the outcome; only a success teaches the known device/network/hour."""
        user_id = ev.check_user_id(user_id)
        aid = logins.parse_attempt_id(attempt_id)
        top = self.fingerprint(user_id)["top_entities"] if success else []
        return logins.confirm(self.engine, user_id, aid, success, top)

    # -- erasure, maintenance, stats ---------------------------------------------------------------------------
    def drain_now(self, time_budget: float = 60.0) -> stream.DrainStats:
        """Drain the stream in this process (tools and the CLI's --drain; workers call the pool directly)."""
        return self.drain(time_budget)

    def delete_user(self, user_id: Any) -> dict[str, int]:
        """Right to erasure (see workers/ingestion/erasure.py); idempotent."""
        user_id = ev.check_user_id(user_id)
        return erasure.delete_user(self.engine, self.cache, self.redis, user_id,
                                   aof_rewrite=self.settings.ingest.erasure_aof_rewrite)

    def init_database(self) -> None:
        from shared_models import migrate

        migrate.upgrade(self.database_url)
        self.ensure_group()

    def close(self) -> None:
        flush = getattr(self.cache, "flush", None)
        if flush is not None:
            try:
                flush()  # the last second of MemoryCache counts
            except Exception:  # noqa: BLE001 - counters are informative; closing must not fail on them
                pass
        super().close()

    def stats(self, top: int = 10) -> dict[str, Any]:
        out = stats_mod.collect(self.engine, top)
        try:
            licence: dict[str, Any] = self.usage()
        except LicenseError as exc:
            licence = {"mode": "invalid", "error": str(exc)}
        out.update(license=licence, cache=self.cache.stats(), stream=stream.lag(self.redis))
        return out


class ShadowWatchSync(_Core):
    """Synchronous client (scripts, the CLI)."""

    def track(self, user_id: Any, entity_id: Any, action: Any, metadata: Any = None, *, event_id: Any = None,
              ts: Any = None) -> str:
        """Validate and enqueue one event; returns its event_id. Raises EventValidationError naming the field."""
        event = self.build(user_id, entity_id, action, metadata, event_id, ts)
        self.ensure_group()
        keys, args = self.enqueue_args([event])
        self.check_enqueued(self._enqueue(keys=keys, args=args), 1)
        self.forget_local([event["user_id"]])
        return event["event_id"]

    def track_many(self, events: Iterable[Mapping[str, Any]]) -> list[str]:
        """Validate all, then enqueue in pipelined chunks; nothing is sent if any event is invalid."""
        built = []
        for i, e in enumerate(events):
            try:
                built.append(self.build(**dict(e)))
            except EventValidationError as exc:
                raise EventValidationError(f"events[{i}].{exc.field}", exc.reason) from None
            except TypeError as exc:
                raise EventValidationError(f"events[{i}]", str(exc)) from None
        self.ensure_group()
        for i in range(0, len(built), ARGV_CHUNK):
            chunk = built[i:i + ARGV_CHUNK]
            keys, args = self.enqueue_args(chunk)
            self.check_enqueued(self._enqueue(keys=keys, args=args), len(chunk))
        self.forget_local(e["user_id"] for e in built)
        return [e["event_id"] for e in built]
