"""ShadowWatch: the client API of the ingest pool (behavioural intelligence).

``track()`` validates, stamps an event id and XADDs the event to a Redis Stream in
one round trip (a Lua script that also counts the licence's events); it never
touches PostgreSQL. The ``ingest.drain`` workers batch the stream into PostgreSQL.
Everything else (profiles, login trust, erasure, stats) reads PostgreSQL.

``ShadowWatch`` is async (``await sw.track(...)``), ``ShadowWatchSync`` (also as
``sw.sync``) is its twin for sync code; both share one implementation.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
import warnings
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry
from sqlalchemy import text

from .ingest import cache as cache_mod
from .ingest import events as ev
from .ingest import licenses, privacy, store, stream, trust
from .ingest.licenses import LicenseError
from .ingest.events import EventValidationError
from .ingest.profile import load_profile
from .settings import Settings, get_settings

log = logging.getLogger(__name__)

__all__ = ["ShadowWatch", "ShadowWatchSync", "EventValidationError", "LicenseError"]

DEV_WINDOW_SECONDS = 24 * 3600
ARGV_CHUNK = 1000


def _redis_retry() -> Retry:
    # A restarting Redis is absorbed by a short retry; a duplicate XADD after an ambiguous
    # failure is harmless because PostgreSQL dedups on event_id.
    return Retry(ExponentialBackoff(cap=0.5, base=0.02), 6)


class _Core:
    """Shared state and logic of the sync and async clients."""

    def __init__(self, database_url: str | None = None, redis_url: str | None = None,
                 license_key: str | None = None, *, cache: str | Any = "redis",
                 settings: Settings | None = None, dev_event_limit: int | None = None):
        self.settings = settings or get_settings()
        if database_url is None or redis_url is None:
            from .db import service_urls

            db, rd = service_urls()
            database_url, redis_url = database_url or db, redis_url or rd
        from .db import normalize_url

        self.database_url = normalize_url(database_url)  # accepts +asyncpg / +psycopg2 / plain
        self.redis_url = redis_url
        self.redis = redis.Redis.from_url(redis_url, retry=_redis_retry(),
                                          retry_on_error=[redis.ConnectionError, redis.TimeoutError])
        self._enqueue = self.redis.register_script(stream.ENQUEUE_LUA)
        if cache == "redis":
            self.cache: Any = cache_mod.RedisCache(self.redis)
        elif cache == "memory":
            self.cache = cache_mod.MemoryCache()
        else:
            self.cache = cache
        self.hasher = privacy.Hasher(privacy.hmac_key(self.settings))
        self.license_key = license_key or self.settings.ingest.license_key
        self._dev_event_limit = dev_event_limit or self.settings.ingest.dev_event_limit
        self._quota: tuple[str, int, int, dict | None] | None = None
        self._group_ready = False

    # -- resources ---------------------------------------------------------------------------------------------
    @property
    def engine(self):
        from .db import get_engine

        return get_engine(self.database_url)

    @property
    def half_life_seconds(self) -> float:
        return self.settings.ingest.half_life_days * 86400.0

    # -- licence -----------------------------------------------------------------------------------------------
    def license(self) -> dict | None:
        """The verified licence (cached 24 h under shadowwatch:license:{key}), or None in dev mode."""
        if not self.license_key:
            return None
        ck = cache_mod.license_key(self.license_key)
        data = self.cache.get(ck)
        if data is None:
            lic = licenses.verify(self.license_key, licenses.load_public_key(self.settings))
            data = lic.as_dict()
            self.cache.set(ck, data, min(cache_mod.LICENSE_TTL, max(1.0, lic.expires - time.time())))
        if time.time() >= data["expires"]:
            raise LicenseError(f"licence {data['id']} of {data['company']} has expired")
        return data

    def quota(self) -> tuple[str, int, int, dict | None]:
        """(counter key, event limit, counter ttl, licence) for the shared Redis counter."""
        if self._quota is None or (self._quota[3] and time.time() >= self._quota[3]["expires"]):
            lic = self.license()
            if lic is None:
                warnings.warn("ShadowWatch: no licence key, running in local dev mode "
                              f"(limit {self._dev_event_limit} events per 24 h)", stacklevel=3)
                self._quota = (stream.USAGE_PREFIX + "dev", self._dev_event_limit, DEV_WINDOW_SECONDS, None)
            else:
                ttl = max(1, int(lic["expires"] - time.time()) + 86400)
                self._quota = (stream.USAGE_PREFIX + lic["id"], lic["events"], ttl, lic)
        return self._quota

    def usage(self) -> dict[str, Any]:
        key, limit, _, lic = self.quota()
        used = int(self.redis.get(key) or 0)
        return {"mode": "licensed" if lic else "dev", "license": lic, "used": used, "limit": limit}

    # -- track -------------------------------------------------------------------------------------------------
    def build(self, user_id: Any, entity_id: Any, action: Any, metadata: Any = None, event_id: Any = None,
              ts: Any = None) -> dict:
        return ev.build_event(user_id=user_id, entity_id=entity_id, action=action, metadata=metadata,
                              event_id=event_id, ts=ts, max_metadata_bytes=self.settings.ingest.max_metadata_bytes,
                              hash_ip=self.hasher.ip)

    def enqueue_args(self, events: list[dict]) -> tuple[list[str], list]:
        key, limit, ttl, _ = self.quota()
        return [stream.STREAM, key], [limit, ttl, *map(stream.encode, events)]

    def ensure_group(self) -> None:
        if not self._group_ready:
            stream.ensure_group(self.redis)
            self._group_ready = True

    def check_enqueued(self, result: int, n: int) -> None:
        if result == -1:
            _, limit, _, lic = self.quota()
            who = f"licence {lic['id']} of {lic['company']}" if lic else "local dev mode"
            raise LicenseError(f"event limit reached for {who} ({limit} events); {n} event(s) refused")

    def forget_local(self, user_ids: Iterable[int]) -> None:
        if isinstance(self.cache, cache_mod.MemoryCache):
            for u in set(user_ids):
                self.cache.delete(*cache_mod.user_keys(u))

    # -- reads -------------------------------------------------------------------------------------------------
    def get_profile(self, user_id: int) -> dict:
        ev.check_user_id(user_id)
        ck = cache_mod.profile_key(user_id)
        cached = self.cache.get(ck)
        if cached is not None:
            return cached
        with self.engine.connect() as conn:
            read_at = conn.execute(text("SELECT clock_timestamp()")).scalar_one()
            profile = load_profile(conn, user_id, self.half_life_seconds)
        self.cache.set(ck, profile, cache_mod.PROFILE_TTL)
        self.cache.set(cache_mod.fingerprint_key(user_id), profile["fingerprint"], cache_mod.FINGERPRINT_TTL)
        self._uncache_if_erased_since(user_id, read_at)
        return profile

    def _uncache_if_erased_since(self, user_id: int, read_at: datetime) -> None:
        """An erasure that committed its tombstone after our read began may have cleared the cache
        before our set: take the keys back out. (Tombstone after this check => its erasure clears
        the cache after our set.)"""
        with self.engine.connect() as conn:
            erased = conn.execute(text("SELECT 1 FROM ingest_erasures WHERE user_key = :k AND erased_at >= :t"),
                                  {"k": store.erasure_key(str(user_id)), "t": read_at}).first()
        if erased:
            self.cache.delete(*cache_mod.user_keys(user_id))

    def fingerprint(self, user_id: int) -> dict:
        cached = self.cache.get(cache_mod.fingerprint_key(user_id))
        if cached is not None:
            return cached
        return self.get_profile(user_id)["fingerprint"]

    def set_holdings(self, user_id: int, entity_ids: Iterable[str]) -> None:
        ev.check_user_id(user_id)
        ents = sorted({ev.check_entity_id(e) for e in entity_ids})
        with self.engine.begin() as conn:
            store.lock_for_writing(conn)  # an erasure in progress waits for this, then deletes it
            store.set_holdings(conn, user_id, ents)
        self.cache.delete(*cache_mod.user_keys(user_id))

    # -- logins ------------------------------------------------------------------------------------------------
    def reduce_context(self, ctx: Mapping[str, Any] | None) -> trust.LoginContext:
        ctx = dict(ctx or {})
        ip = ctx.get("ip_address")
        ip_hmac = network = None
        if ip:
            try:
                ip_hmac, network = self.hasher.ip(str(ip)), privacy.network_prefix(str(ip))
            except ValueError:
                raise EventValidationError("request_context.ip_address", "is not an IP address") from None
        device = ctx.get("device_fingerprint")
        if device is not None and (not isinstance(device, str) or not 0 < len(device) <= 512):
            raise EventValidationError("request_context.device_fingerprint", "must be a string of 1-512 characters")
        family, os_name = privacy.reduce_user_agent(ctx.get("user_agent"))
        when = ctx.get("timestamp")
        now = when if isinstance(when, datetime) else datetime.fromtimestamp(
            float(when) if when is not None else time.time(), tz=timezone.utc)
        return trust.LoginContext(ip_hmac=ip_hmac, network=network,
                                  device_hash=self.hasher.device(device) if device else None,
                                  ua_family=family, ua_os=os_name, hour=now.astimezone(timezone.utc).hour)

    def _history(self, conn, user_id: int) -> trust.LoginHistory:
        h = trust.LoginHistory()
        for kind, value, count in conn.execute(text(
                "SELECT kind, value, count FROM ingest_known_signals WHERE user_id = :u"), {"u": user_id}):
            if kind == "device":
                h.devices.add(value)
            elif kind == "network":
                h.networks.add(value)
            elif kind == "ua":
                h.user_agents.add(value)
            elif kind == "hour":
                h.hours[int(value)] = count
            elif kind == "top_entity":
                h.last_top_entities.add(value)
        row = conn.execute(text(f"""
            SELECT count(*) FILTER (WHERE success IS FALSE
                                    AND created_at > now() - interval '{trust.FAILURE_WINDOW_MIN} minutes') AS failures,
                   count(*) FILTER (WHERE created_at > now() - interval '{trust.VELOCITY_WINDOW_MIN} minutes')
                       AS attempts,
                   array_remove(array_agg(DISTINCT network), NULL) AS networks
            FROM ingest_login_attempts WHERE user_id = :u AND created_at > now() - interval '1 hour'"""),
            {"u": user_id}).one()
        h.recent_failures, h.recent_attempts, h.recent_networks = int(row[0]), int(row[1]), set(row[2] or [])
        return h

    def verify_login(self, user_id: int, request_context: Mapping[str, Any] | None = None) -> dict:
        ev.check_user_id(user_id)
        ctx = self.reduce_context(request_context)
        current_top = set(self.fingerprint(user_id)["top_entities"])
        attempt_id = uuid.uuid4()
        with self.engine.begin() as conn:
            store.lock_for_writing(conn)  # an erasure in progress waits for this, then deletes it
            h = self._history(conn, user_id)
            h.current_top_entities = current_top
            result = trust.score_login(ctx, h)
            conn.execute(text(
                "INSERT INTO ingest_login_attempts (attempt_id, user_id, ip_hmac, network, device_hash, ua_family, "
                "ua_os, hour, fingerprint, trust_score, action) VALUES (:a, :u, :ip, :net, :dev, :fam, :os, :hour, "
                ":fp, :trust, :action)"),
                {"a": attempt_id, "u": user_id, "ip": ctx.ip_hmac, "net": ctx.network, "dev": ctx.device_hash,
                 "fam": ctx.ua_family, "os": ctx.ua_os, "hour": ctx.hour, "fp": None,
                 "trust": result["trust_score"], "action": result["action"]})
        return {"user_id": user_id, "attempt_id": str(attempt_id), **result}

    def confirm_login(self, user_id: int, attempt_id: str, success: bool) -> dict:
        """The application reports the outcome; only a success teaches the known device/network/hour."""
        ev.check_user_id(user_id)
        try:
            aid = uuid.UUID(str(attempt_id))
        except ValueError:
            raise EventValidationError("attempt_id", "is not a UUID") from None
        top = self.fingerprint(user_id)["top_entities"] if success else []
        with self.engine.begin() as conn:
            store.lock_for_writing(conn)  # an erasure in progress waits for this, then deletes it
            row = conn.execute(text(
                "UPDATE ingest_login_attempts SET success = :s, confirmed_at = now() "
                "WHERE attempt_id = :a AND user_id = :u AND success IS NULL "
                "RETURNING device_hash, network, ua_family, ua_os, hour"), {"s": bool(success), "a": aid,
                                                                           "u": user_id}).one_or_none()
            if row is None:
                exists = conn.execute(text("SELECT success FROM ingest_login_attempts WHERE attempt_id = :a "
                                           "AND user_id = :u"), {"a": aid, "u": user_id}).one_or_none()
                if exists is None:
                    raise EventValidationError("attempt_id", f"no login attempt {aid} for user {user_id}")
                return {"attempt_id": str(aid), "success": exists[0], "already_confirmed": True}
            if success:
                signals = [("hour", str(row.hour))]
                signals += [(k, v) for k, v in (("device", row.device_hash), ("network", row.network),
                                                ("ua", f"{row.ua_family}|{row.ua_os}" if row.ua_family else None))
                            if v]
                conn.execute(text(
                    "INSERT INTO ingest_known_signals AS k (user_id, kind, value, count, first_seen, last_seen) "
                    "VALUES (:u, :k, :v, 1, now(), now()) ON CONFLICT (user_id, kind, value) DO UPDATE "
                    "SET count = k.count + 1, last_seen = now()"),
                    [{"u": user_id, "k": k, "v": v} for k, v in signals])
                conn.execute(text("DELETE FROM ingest_known_signals WHERE user_id = :u AND kind = 'top_entity'"),
                             {"u": user_id})
                if top:
                    conn.execute(text(
                        "INSERT INTO ingest_known_signals (user_id, kind, value, count, first_seen, last_seen) "
                        "VALUES (:u, 'top_entity', :v, 1, now(), now())"), [{"u": user_id, "v": e} for e in top])
        return {"attempt_id": str(aid), "success": bool(success), "already_confirmed": False}

    # -- erasure, maintenance, stats ---------------------------------------------------------------------------
    def drain_now(self, time_budget: float = 60.0) -> stream.DrainStats:
        """Drain the stream in this process (what an ingest worker does); used by delete_user and tools."""
        s = self.settings.ingest
        return stream.drain(self.redis, self.engine, batch_size=s.batch_size,
                            half_life_seconds=self.half_life_seconds, max_metadata_bytes=s.max_metadata_bytes,
                            hash_ip=self.hasher.ip, reclaim_idle_seconds=s.reclaim_idle_seconds,
                            time_budget=time_budget, on_committed=self.invalidate_users)

    def invalidate_users(self, user_ids: Iterable[int]) -> None:
        keys = [k for u in set(user_ids) for k in cache_mod.user_keys(u)]
        for i in range(0, len(keys), 1000):
            self.cache.delete(*keys[i:i + 1000])

    def delete_user(self, user_id: int) -> dict[str, int]:
        """Right to erasure, race-free against batches in flight (see store.record_erasure/delete_user_rows).

        1. commit a tombstone: later batch statements skip the user's events stamped before it;
        2. under a lock that waits for every batch transaction in flight, delete every row of the user;
        3. delete the user's cache keys. Idempotent; never drains the stream (events still queued are
        skipped by the tombstone when a worker writes them).
        """
        ev.check_user_id(user_id)
        with self.engine.begin() as conn:
            store.record_erasure(conn, user_id, time.time())
        with self.engine.begin() as conn:
            counts = store.delete_user_rows(conn, user_id)
        keys = cache_mod.user_keys(user_id)
        self.cache.delete(*keys)
        self.redis.delete(*keys)
        return counts

    def init_database(self) -> None:
        from . import migrate

        migrate.upgrade(self.database_url)
        self.ensure_group()

    def stats(self, top: int = 10) -> dict[str, Any]:
        with self.engine.connect() as conn:
            totals = conn.execute(text(
                "SELECT count(DISTINCT user_id), coalesce(sum(event_count), 0) FROM ingest_interests")).one()
            raw = conn.execute(text("SELECT count(*) FROM ingest_events")).scalar_one()
            top_entities = conn.execute(text(
                "SELECT entity_id, sum(event_count) AS n, count(*) AS users FROM ingest_interests "
                "GROUP BY entity_id ORDER BY n DESC, entity_id LIMIT :n"), {"n": top}).all()
            top_users = conn.execute(text(
                "SELECT user_id, sum(event_count) AS n, count(*) AS entities FROM ingest_interests "
                "GROUP BY user_id ORDER BY n DESC, user_id LIMIT :n"), {"n": top}).all()
            dead = conn.execute(text("SELECT count(*) FROM dead_letters WHERE pool = 'ingest'")).scalar_one()
        users, events = int(totals[0]), int(totals[1])
        try:
            licence: dict[str, Any] = self.usage()
        except LicenseError as exc:
            licence = {"mode": "invalid", "error": str(exc)}
        return {
            "users": users, "events": events, "raw_events": int(raw),
            "events_per_user": round(events / users, 2) if users else 0.0,
            "top_entities": [{"entity_id": e, "events": int(n), "users": int(u)} for e, n, u in top_entities],
            "top_users": [{"user_id": int(u), "events": int(n), "entities": int(k)} for u, n, k in top_users],
            "license": licence, "cache": self.cache.stats(), "dead_letters": int(dead),
            "stream": stream.lag(self.redis),
        }

    def close(self) -> None:
        self.redis.close()


class ShadowWatchSync(_Core):
    """Synchronous client (scripts, Celery tasks, the CLI)."""

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


class ShadowWatch:
    """Async client, as the seed's FastAPI apps use it. ``sw.sync`` is the sync twin.

    track() talks to Redis with redis.asyncio (no thread hop); database work runs in a
    worker thread so it never blocks the event loop.
    """

    def __init__(self, database_url: str | None = None, redis_url: str | None = None,
                 license_key: str | None = None, **kwargs: Any):
        self.sync = ShadowWatchSync(database_url, redis_url, license_key, **kwargs)
        self._aredis = None
        self._aenqueue = None

    def __getattr__(self, name: str) -> Any:  # settings, cache, hasher, ...
        return getattr(self.sync, name)

    def _async_redis(self):
        if self._aredis is None:
            import redis.asyncio as aredis
            from redis.asyncio.retry import Retry as ARetry

            self._aredis = aredis.Redis.from_url(self.sync.redis_url, retry=ARetry(ExponentialBackoff(0.5, 0.02), 6),
                                                 retry_on_error=[redis.ConnectionError, redis.TimeoutError])
            self._aenqueue = self._aredis.register_script(stream.ENQUEUE_LUA)
        return self._aredis

    async def track(self, user_id: Any, entity_id: Any, action: Any, metadata: Any = None, *, event_id: Any = None,
                    ts: Any = None) -> str:
        s = self.sync
        event = s.build(user_id, entity_id, action, metadata, event_id, ts)
        if not s._group_ready:
            await asyncio.to_thread(s.ensure_group)
        if s._quota is None:
            await asyncio.to_thread(s.quota)
        self._async_redis()
        keys, args = s.enqueue_args([event])
        s.check_enqueued(await self._aenqueue(keys=keys, args=args), 1)
        s.forget_local([event["user_id"]])
        return event["event_id"]

    async def track_many(self, events: Iterable[Mapping[str, Any]]) -> list[str]:
        return await asyncio.to_thread(self.sync.track_many, list(events))

    async def init_database(self) -> None:
        await asyncio.to_thread(self.sync.init_database)

    async def get_profile(self, user_id: int) -> dict:
        return await asyncio.to_thread(self.sync.get_profile, user_id)

    async def verify_login(self, user_id: int, request_context: Mapping[str, Any] | None = None) -> dict:
        return await asyncio.to_thread(self.sync.verify_login, user_id, request_context)

    async def confirm_login(self, user_id: int, attempt_id: str, success: bool) -> dict:
        return await asyncio.to_thread(self.sync.confirm_login, user_id, attempt_id, success)

    async def delete_user(self, user_id: int) -> dict[str, int]:
        return await asyncio.to_thread(self.sync.delete_user, user_id)

    async def set_holdings(self, user_id: int, entity_ids: Iterable[str]) -> None:
        await asyncio.to_thread(self.sync.set_holdings, user_id, list(entity_ids))

    async def stats(self) -> dict[str, Any]:
        return await asyncio.to_thread(self.sync.stats)

    async def close(self) -> None:
        if self._aredis is not None:
            await self._aredis.aclose()
        self.sync.close()
