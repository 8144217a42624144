"""Settings sections of the platform: each pool's database login and retention (``shared_models.settings``
builds them with the others; kept apart only for module size)."""

from __future__ import annotations

from dataclasses import dataclass

from .settings import _positive, env


@dataclass(frozen=True)
class RolesSettings:
    """Which login each pool's workers use (``shared_models.roles``)."""

    db_roles: str = env("QUANTPIPE_DB_ROLES", "auto",
                        help="How a worker of one pool reaches PostgreSQL: login (as its role quantpipe_<pool>, "
                             "no password: the embedded server's trust socket), set (the URL's user, then "
                             "`-c role=quantpipe_<pool>`), off (the URL's user); auto = login on the embedded "
                             "server, else set. A <POOL>_DATABASE_URL wins over all",
                        check=lambda v: v in ("auto", "login", "set", "off"), check_msg="must be auto, login, set or off")
    ingest_database_url: str | None = env("INGEST_DATABASE_URL", None, secret=True,
                                          help="Ingest workers' own login (quantpipe_ingest); unset = QUANTPIPE_DB_ROLES")
    patterns_database_url: str | None = env("PATTERNS_DATABASE_URL", None, secret=True,
                                            help="Patterns workers' and listener's login (quantpipe_patterns)")
    discovery_database_url: str | None = env("DISCOVERY_DATABASE_URL", None, secret=True,
                                             help="Discovery workers' login (quantpipe_discovery)")
    shadow_database_url: str | None = env("SHADOW_DATABASE_URL", None, secret=True,
                                          help="Shadow workers' login (quantpipe_shadow)")
    notify_database_url: str | None = env("QUANTPIPE_NOTIFY_DATABASE_URL", None, secret=True,
                                          help="Notify workers' login (quantpipe_notify)")


_days = (lambda v: v >= 0, "must be >= 0 (0 keeps rows forever)")


@dataclass(frozen=True)
class RetentionSettings:
    """How long operational rows live; each pool's ``<pool>.prune`` beat task deletes older ones in batches."""

    integration_events_days: int = env("QUANTPIPE_RETAIN_INTEGRATION_EVENTS_DAYS", 30,
                                       help="Flow checkpoints and PRODUCER_ALIVE heartbeats kept this long",
                                       check=_days[0], check_msg=_days[1])
    outbox_sent_days: int = env("QUANTPIPE_RETAIN_OUTBOX_SENT_DAYS", 7,
                                help="Published (sent) pattern_outbox rows kept this long; unsent rows stay",
                                check=_days[0], check_msg=_days[1])
    detections_expired_days: int = env("QUANTPIPE_RETAIN_DETECTIONS_EXPIRED_DAYS", 30,
                                       help="pattern_detections deleted this long after expires_at (a backfill "
                                            "over older bars would detect them again)",
                                       check=_days[0], check_msg=_days[1])
    shadow_evaluations_days: int = env("QUANTPIPE_RETAIN_SHADOW_EVALUATIONS_DAYS", 90,
                                       help="Looks of archived challengers kept this long (active models' looks "
                                            "and each pair's latest look are never deleted)",
                                       check=_days[0], check_msg=_days[1])
    dead_letters_days: int = env("QUANTPIPE_RETAIN_DEAD_LETTERS_DAYS", 30,
                                 help="Dead letters kept this long (each pool prunes its own)",
                                 check=_days[0], check_msg=_days[1])
    notification_attempts_days: int = env("QUANTPIPE_RETAIN_NOTIFICATION_ATTEMPTS_DAYS", 30,
                                          help="Attempts of finished (delivered/dead/cancelled) deliveries kept "
                                               "this long", check=_days[0], check_msg=_days[1])
    notification_alerts_days: int = env("QUANTPIPE_RETAIN_NOTIFICATION_ALERTS_DAYS", 90,
                                        help="Alerts kept this long once every delivery is finished (an "
                                             "alert key raised again after that makes a new alert)",
                                        check=_days[0], check_msg=_days[1])
    discovery_scan_runs_days: int = env("QUANTPIPE_RETAIN_DISCOVERY_SCAN_RUNS_DAYS", 30,
                                        help="Finished discovery scan runs (and their parts) kept this long",
                                        check=_days[0], check_msg=_days[1])
    batch_rows: int = env("QUANTPIPE_RETAIN_BATCH_ROWS", 5000,
                          help="Rows one prune transaction deletes (short locks; the task loops)",
                          check=lambda v: 1 <= v <= 100_000, check_msg="must be in 1..100000")
    interval_seconds: float = env("QUANTPIPE_RETAIN_INTERVAL_SECONDS", 3600.0,
                                  help="Beat period of each pool's prune task", check=_positive[0],
                                  check_msg=_positive[1])
