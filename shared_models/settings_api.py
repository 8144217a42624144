"""The API's settings section (``shared_models.settings`` builds it with the others; kept apart only for
module size)."""

from __future__ import annotations

from dataclasses import dataclass

from .settings import _positive, env


@dataclass(frozen=True)
class ApiSettings:
    host: str = env("QUANTPIPE_API_HOST", "127.0.0.1", help="Address `quantpipe api` binds")
    port: int = env("QUANTPIPE_API_PORT", 8000, help="Port of the HTTP API", check=lambda v: 0 < v < 65536,
                    check_msg="must be a TCP port")
    workers: int = env("QUANTPIPE_API_WORKERS", 1, help="uvicorn worker processes of `quantpipe api`",
                       check=_positive[0], check_msg=_positive[1])
    database_url: str | None = env("QUANTPIPE_API_DATABASE_URL", None, secret=True,
                                   help="PostgreSQL URL of the API's own login role (unset = DATABASE_URL "
                                        "with role QUANTPIPE_API_DB_ROLE)")
    db_role: str = env("QUANTPIPE_API_DB_ROLE", "quantpipe_api",
                       help="Role the API's connections take (never the owner); empty = the URL's user",
                       check=lambda v: v == "" or v.replace("_", "").isalnum(), check_msg="must be a role name")
    db_pool: int = env("QUANTPIPE_API_DB_POOL", 10, help="Database connections per API worker process",
                       check=_positive[0], check_msg=_positive[1])
    max_page: int = env("QUANTPIPE_API_MAX_PAGE", 500, help="Largest page (limit) any list endpoint returns",
                        check=_positive[0], check_msg=_positive[1])
    key_cache_seconds: float = env("QUANTPIPE_API_KEY_CACHE_SECONDS", 5.0,
                                   help="An API process trusts a verified key this long (a revocation "
                                        "takes effect within it; 0 = look the key up on every request)",
                                   check=lambda v: 0 <= v <= 300, check_msg="must be in 0..300")
    health_cache_seconds: float = env("QUANTPIPE_API_HEALTH_CACHE_SECONDS", 5.0,
                                      help="/health and /metrics reuse worker/queue facts this long",
                                      check=lambda v: v >= 0, check_msg="must be >= 0")
    dashboard_secret: str | None = env("QUANTPIPE_DASHBOARD_SECRET", None, secret=True,
                                       help="Key signing dashboard session cookies, shared by every API process "
                                            "(unset = generated once in QUANTPIPE_HOME/dashboard_secret)",
                                       check=lambda v: v is None or len(v) >= 32, check_msg="must be >= 32 characters")
    dashboard_session_hours: float = env("QUANTPIPE_DASHBOARD_SESSION_HOURS", 8.0,
                                         help="A dashboard login lasts this long", check=lambda v: 0 < v <= 24 * 30,
                                         check_msg="must be in (0, 720]")
