"""Each pool's database login: which role a worker of one pool connects as, and how.

Migrations (run as the owner) create one NOLOGIN role per pool with exactly the grants
its tasks need (0004 discovery, 0012 notify, 0014 ingest/patterns/shadow). A worker
consuming one pool's queue calls :func:`shared_models.db.use_pool` at start-up, so every
engine of that process uses :func:`pool_database_url`:

1. ``<POOL>_DATABASE_URL`` when set (production, docker-compose: the role's own login
   and password; ``quantpipe db logins`` gives the role LOGIN and that password);
2. else ``QUANTPIPE_DB_ROLES``: ``login`` = the same server as the role itself without a
   password (the embedded server trusts its private Unix socket; migrating there gives
   the roles LOGIN), ``set`` = the URL's user then ``SET ROLE`` at connect (``-c role=``:
   grants enforced, but the session could ``RESET ROLE``), ``off`` = the URL's user.
   ``auto``: ``login`` on the embedded server, else ``set``.

Every pool URL carries ``application_name=quantpipe-<pool>`` so ``pg_stat_activity`` shows
which pool holds a connection.
"""

from __future__ import annotations

from sqlalchemy.engine import make_url

POOL_ROLES = {"ingest": "quantpipe_ingest", "patterns": "quantpipe_patterns", "discovery": "quantpipe_discovery",
              "shadow": "quantpipe_shadow", "notify": "quantpipe_notify"}


def mode(settings) -> str:
    """The effective QUANTPIPE_DB_ROLES (``auto`` resolved)."""
    m = settings.roles.db_roles
    if m == "auto":
        return "login" if settings.database_url is None else "set"
    return m


def explicit_url(pool: str, settings) -> str | None:
    """The pool's ``<POOL>_DATABASE_URL`` (None when unset)."""
    return getattr(settings.roles, f"{pool}_database_url", None)


def _with(url: str, *, role: str | None = None, user: str | None = None, app: str | None = None) -> str:
    from .db import normalize_url

    parsed = make_url(normalize_url(url))
    if user is not None:
        parsed = parsed.set(username=user, password=None)
    query = dict(parsed.query)
    if role:
        query["options"] = " ".join(filter(None, [query.get("options"), f"-c role={role}"]))
    if app:
        query.setdefault("application_name", app)
    return parsed.set(query=query).render_as_string(hide_password=False)


def pool_database_url(pool: str, owner_url: str, settings) -> str:
    """The URL a worker of ``pool`` uses (``owner_url``: the process's configured/embedded URL)."""
    if pool not in POOL_ROLES:
        raise ValueError(f"unknown pool {pool!r}")
    app = f"quantpipe-{pool}"
    explicit = explicit_url(pool, settings)
    if explicit:
        return _with(explicit, app=app)
    m, role = mode(settings), POOL_ROLES[pool]
    if m == "login":
        return _with(owner_url, user=role, app=app)
    if m == "set":
        return _with(owner_url, role=role, app=app)
    return _with(owner_url, app=app)


def _quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def enable_logins(owner_url: str) -> list[str]:
    """Give every pool role LOGIN without a password (the embedded server: trust on its socket only)."""
    from sqlalchemy import create_engine, pool, text

    from .db import normalize_url

    engine = create_engine(normalize_url(owner_url), poolclass=pool.NullPool)
    done = []
    try:
        with engine.begin() as conn:
            for role in POOL_ROLES.values():
                if conn.execute(text("SELECT NOT rolcanlogin FROM pg_roles WHERE rolname = :r"), {"r": role}).scalar():
                    conn.execute(text(f"ALTER ROLE {role} LOGIN"))
                    done.append(role)
    finally:
        engine.dispose()
    return done


def set_logins(owner_url: str, settings) -> list[str]:
    """``quantpipe db logins``: LOGIN + the password of each ``<POOL>_DATABASE_URL`` (and the API's) whose
    user is the role; a URL naming another user (an operator's own login IN ROLE ...) is left alone."""
    from sqlalchemy import create_engine, pool

    from .db import normalize_url

    engine = create_engine(normalize_url(owner_url), poolclass=pool.NullPool)
    done = []
    try:
        with engine.begin() as conn:
            for name, role in [*POOL_ROLES.items(), ("api", settings.api.db_role or "quantpipe_api")]:
                url = settings.api.database_url if name == "api" else explicit_url(name, settings)
                if not url:
                    continue
                parsed = make_url(normalize_url(url))
                if parsed.username != role:  # an operator's own login (IN ROLE ...): theirs to manage
                    continue
                pw = f" PASSWORD {_quote_literal(parsed.password)}" if parsed.password else ""
                with conn.connection.driver_connection.cursor() as cur:  # no bind parsing of the password
                    cur.execute(f"ALTER ROLE {role} LOGIN{pw}")
                done.append(role)
    finally:
        engine.dispose()
    return done
