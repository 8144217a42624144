"""Seed 000 (integration plan) and seed 003 (deployment guide): their Shadow Watch code, run as written
against real PostgreSQL, Redis and the session's ingest worker.

Each ``SEED_*`` string is a code block of the seed, copied unchanged (``test_blocks_are_the_seeds``
checks them against the seed files when ``shared/seeds`` is reachable). Only what the seeds leave
to their environment is supplied: connection strings (``connect``), licence keys where the seed
writes a placeholder (the placeholder itself is run first and must be refused as invalid), and the
app objects the snippets use without defining (``settings``, ``app``, ``logger``, ``current_user``,
``request``, ``get_device_id``, ``recommendation_engine``, ...). The load test uses ``random``
without importing it; it is supplied too. Streamlit calls of the admin script are not run (no
Shadow Watch call among them); its SQL is.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import json
import logging
import random
import re
import subprocess
import sys
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import text

from tests.support import ROOT
from tests.workers.ingestion.helpers import make_license_key, new_user, wait_for_events

# -- seed 000: Shadow Watch -> QuantTerminal integration plan ------------------------------------------------
SEED_000_INIT = '''# In QuantTerminal backend
from shadowwatch import ShadowWatch

# Initialize Shadow Watch
sw = ShadowWatch(
    database_url=settings.DATABASE_URL,  # Your PostgreSQL connection
    license_key=None,  # Local dev mode first, then production license
    redis_url=settings.REDIS_URL  # Your existing Redis
)

# On startup
@app.on_event("startup")
async def init_shadow_watch():
    await sw.init_database()
    logger.info("âœ… Shadow Watch initialized")
'''
SEED_000_VIEW = '''# When user views stock details
await sw.track(
    user_id=current_user.id,
    entity_id=stock_symbol,  # "AAPL", "MSFT", etc.
    action="view",
    metadata={"source": "dashboard", "duration_seconds": 45}
)
'''
SEED_000_TRADE = '''# When user executes trade
await sw.track(
    user_id=current_user.id,
    entity_id=stock_symbol,
    action="trade",
    metadata={
        "type": "buy",
        "quantity": 100,
        "price": 150.25
    }
)
'''
SEED_000_WATCHLIST = '''# When user adds to watchlist
await sw.track(
    user_id=current_user.id,
    entity_id=stock_symbol,
    action="watchlist",
    metadata={"action": "add"}
)
'''
SEED_000_ANALYZE = '''# When user analyzes portfolio
await sw.track(
    user_id=current_user.id,
    entity_id="portfolio_tech",
    action="analyze",
    metadata={"type": "sector_analysis"}
)
'''
SEED_000_PROFILE = '''# Get user's stock interests
profile = await sw.get_profile(user_id=current_user.id)

# Use for recommendations
top_stocks = [item['entity_id'] for item in profile['library'][:5]]
recommendation_engine.suggest_similar(top_stocks)
'''
SEED_000_LOGIN = '''# On login
trust_result = await sw.verify_login(
    user_id=current_user.id,
    request_context={
        "ip_address": request.client.host,
        "user_agent": request.headers.get("user-agent"),
        "device_fingerprint": get_device_id(request)
    }
)

if trust_result['trust_score'] < 0.5:
    # Suspicious login!
    logger.warning(f"Low trust score for user {current_user.id}")
    # Require 2FA or email verification
'''
SEED_000_INTERESTS = '''# Use Shadow Watch profile to:
# 1. Personalize dashboard (show stocks they care about)
# 2. Smart notifications (only for stocks they watch)
# 3. Onboarding shortcuts (skip irrelevant sectors)

interests = await sw.get_profile(user_id=new_user.id)
if not interests['library']:
    # New user - show onboarding
    show_welcome_tour()
else:
    # Returning user - show their portfolio
    show_personalized_dashboard(interests['library'])
'''
SEED_000_LOAD_TEST = '''# Script to simulate realistic usage
import asyncio
from shadowwatch import ShadowWatch

async def simulate_users(num_users=100, events_per_user=100):
    sw = ShadowWatch(
        database_url="postgresql+asyncpg://...",
        license_key="SW-PROD-YOUR-KEY"
    )
    
    stocks = ["AAPL", "MSFT", "GOOGL", "AMZN", "TSLA", "META"]
    
    for user_id in range(1, num_users + 1):
        for _ in range(events_per_user):
            stock = random.choice(stocks)
            action = random.choice(["view", "trade", "watchlist"])
            
            await sw.track(user_id, stock, action)
        
        if user_id % 10 == 0:
            print(f"Processed {user_id} users...")
    
    print(f"\\nâœ… Generated {num_users * events_per_user} events")

# Run load test
asyncio.run(simulate_users(100, 100))  # 10,000 events
'''
SEED_000_TIMING = '''# Check response times
import time

start = time.time()
await sw.track(user_id=1, entity_id="AAPL", action="view")
elapsed = time.time() - start

print(f"Track time: {elapsed*1000:.2f}ms")
# Should be < 50ms for PostgreSQL
'''
SEED_000_GENERATE_LICENSE = '''# Use your admin script
license_key = await generate_production_license(
    company="QuantTerminal",
    contact_email="your@email.com",
    event_limit=None,  # Unlimited
    valid_days=365
)

print(f"License: {license_key}")
'''
SEED_000_VERIFY_LICENSE = '''# Should NOT show "LOCAL DEV MODE" warning
# Should NOT have event limit
assert not sw._local_mode
assert sw._event_limit is None
'''
SEED_000_MULTI_INSTANCE = '''# Track event on instance 1
# Verify cache hit on instance 2

# Instance 1:
await sw.track(user_id=123, entity_id="AAPL", action="view")

# Instance 2 (should use cached license):
await sw.track(user_id=456, entity_id="MSFT", action="view")
# Should be fast (cache hit)
'''
SEED_000_ADMIN_MONITOR_SW = '''sw = ShadowWatch(...)  # Your connection'''
SEED_000_ADMIN_MONITOR_SQL = '''SELECT entity_id, COUNT(*) FROM shadow_watch_activities GROUP BY entity_id ORDER BY count DESC LIMIT 10'''

# -- seed 003: Shadow Watch production deployment guide ------------------------------------------------------
SEED_003_SINGLE = '''from shadowwatch import ShadowWatch

sw = ShadowWatch(
    database_url="postgresql://...",
    license_key="SW-TRIAL-XXXX-..."
    # redis_url not provided → uses in-memory cache (OK for single instance)
)
'''
SEED_003_MULTI = '''from shadowwatch import ShadowWatch

sw = ShadowWatch(
    database_url="postgresql://...",
    license_key="SW-PROD-XXXX-...",
    redis_url="redis://localhost:6379"  # ✅ REQUIRED for production!
)
'''
SEED_003_LOAD_BALANCED = '''sw = ShadowWatch(
    database_url="...",
    license_key="...",
    redis_url="redis://redis-server:6379"  # ✅ REQUIRED
)
'''
SEED_003_KUBERNETES = '''import os

sw = ShadowWatch(
    database_url=os.getenv("DATABASE_URL"),
    license_key=os.getenv("SHADOWWATCH_LICENSE"),
    redis_url=os.getenv("REDIS_URL")  # ✅ From environment
)
'''
SEED_003_CUSTOM_TTL = '''# In your application code
await sw.cache.set(
    "custom:key",
    {"data": "value"},
    ttl_seconds=1800  # 30 minutes
)
'''
SEED_003_WRONG_AND_CORRECT = '''# WRONG (each instance has separate cache)
sw = ShadowWatch(database_url="...", license_key="...")

# CORRECT (shared cache)
sw = ShadowWatch(
    database_url="...",
    license_key="...",
    redis_url="redis://localhost:6379"  # ✅ Add this!
)
'''
SEED_003_REDIS_AUTH = '''sw = ShadowWatch(
    database_url="...",
    license_key="...",
    redis_url="redis://:your-strong-password@localhost:6379"
)
'''

SEEDS = {"000": [SEED_000_INIT, SEED_000_VIEW, SEED_000_TRADE, SEED_000_WATCHLIST, SEED_000_ANALYZE,
                 SEED_000_PROFILE, SEED_000_LOGIN, SEED_000_INTERESTS, SEED_000_LOAD_TEST, SEED_000_TIMING,
                 SEED_000_GENERATE_LICENSE, SEED_000_VERIFY_LICENSE, SEED_000_MULTI_INSTANCE,
                 SEED_000_ADMIN_MONITOR_SW, SEED_000_ADMIN_MONITOR_SQL],
         "003": [SEED_003_SINGLE, SEED_003_MULTI, SEED_003_LOAD_BALANCED, SEED_003_KUBERNETES, SEED_003_CUSTOM_TTL,
                 SEED_003_WRONG_AND_CORRECT, SEED_003_REDIS_AUTH]}


def _seed_file(number: str) -> Path | None:
    for base in (ROOT.parent / "shared" / "seeds", Path("/work/shared/seeds")):
        found = sorted(base.glob(f"{number}_*.txt")) if base.is_dir() else []
        if found:
            return found[0]
    return None


def test_blocks_are_the_seeds():
    """Every SEED_* block occurs in its seed document as written (the text, not a paraphrase)."""
    for number, blocks in SEEDS.items():
        path = _seed_file(number)
        if path is None:
            pytest.skip("shared/seeds is not reachable from this checkout")
        seed = path.read_text(encoding="utf-8")
        for block in blocks:
            assert block in seed, block[:80]


# -- running the blocks --------------------------------------------------------------------------------------
def connect(src: str, database_url: str, redis_url: str, license_key: str | None = None) -> str:
    """The seed's connection strings (and, given ``license_key``, its placeholder keys) made real."""
    async_url = database_url.replace("postgresql://", "postgresql+asyncpg://", 1)
    out = (src.replace('"postgresql+asyncpg://..."', repr(async_url))
           .replace('"postgresql://..."', repr(database_url))
           .replace('database_url="..."', f"database_url={database_url!r}")
           .replace('"redis://localhost:6379"', repr(redis_url)).replace('"redis://redis-server:6379"', repr(redis_url))
           .replace("ShadowWatch(...)", f"ShadowWatch(database_url={database_url!r}, redis_url={redis_url!r})"))
    if license_key is not None:
        out = re.sub(r'license_key="(SW-[A-Z]+-[^"]*|\.\.\.)"', f"license_key={license_key!r}", out)
    return out


async def run_block(src: str, ns: dict) -> dict:
    """Execute a block in ``ns`` as a module body; top-level ``await`` as in the seed (a notebook/REPL)."""
    code = compile(src, "<seed>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(code, ns)  # noqa: S307 - the seed's own code
    if inspect.iscoroutine(result):
        await result
    return ns


class Calls(list):
    def __getattr__(self, name):
        return lambda *a, **k: self.append((name, a, k))


def drain_until(engine, users, n: int) -> int:
    from workers.app import app

    kick = lambda: app.tasks["ingest.drain"].apply_async(expires=30)  # noqa: E731
    kick()
    return wait_for_events(engine, users, n, timeout=180, kick=kick)


@pytest.fixture(scope="module")
def app_env(database_url, redis_url):
    from fastapi import FastAPI
    from starlette.requests import Request

    records: list[logging.LogRecord] = []
    logger = logging.getLogger("quantterminal")
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    request = Request({"type": "http", "method": "POST", "path": "/login", "client": ("203.0.113.61", 51000),
                       "headers": [(b"user-agent", b"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 "
                                                   b"(KHTML, like Gecko) Version/17.4 Safari/605.1.15"),
                                   (b"x-device-id", b"qt-device-7f3a")]})
    yield {"settings": SimpleNamespace(DATABASE_URL=database_url, REDIS_URL=redis_url), "app": FastAPI(),
           "logger": logger, "request": request, "get_device_id": lambda req: req.headers.get("x-device-id"),
           "stock_symbol": "AAPL", "recommendation_engine": Calls(), "__records__": records}
    logger.removeHandler(handler)


@pytest.mark.parametrize("app_user_id", [lambda: int(new_user()), lambda: uuid.uuid4(),
                                         lambda: f"auth0|{uuid.uuid4().hex[:24]}"], ids=["int", "uuid", "string"])
def test_integration_plan_phases_1_and_2(app_env, app_user_id, workers, engine):
    """init on startup, the four track calls, profile for recommendations, trust on login, onboarding."""
    from workers.ingestion.events import check_user_id

    ns = dict(app_env, current_user=SimpleNamespace(id=app_user_id()), recommendation_engine=Calls())
    ns["new_user"], screens = SimpleNamespace(id=app_user_id()), Calls()
    ns["show_welcome_tour"], ns["show_personalized_dashboard"] = screens.welcome_tour, screens.dashboard

    async def scenario():
        await run_block(SEED_000_INIT, ns)
        async with ns["app"].router.lifespan_context(ns["app"]):  # the app's startup runs init_shadow_watch
            for block in (SEED_000_VIEW, SEED_000_TRADE, SEED_000_WATCHLIST, SEED_000_ANALYZE):
                await run_block(block, ns)
            await asyncio.to_thread(drain_until, engine, [check_user_id(ns["current_user"].id)], 4)
            await run_block(SEED_000_PROFILE, ns)
            await run_block(SEED_000_LOGIN, ns)
            await run_block(SEED_000_INTERESTS, ns)  # a new user: the welcome tour
            ns["new_user"] = ns["current_user"]
            await run_block(SEED_000_INTERESTS, ns)  # a returning user: their dashboard
        await ns["sw"].close()

    with pytest.warns(UserWarning, match="local dev mode"):  # license_key=None: dev mode, said once
        asyncio.run(scenario())
    messages = [r.getMessage() for r in app_env["__records__"]]
    assert any(m.endswith(" Shadow Watch initialized") for m in messages)  # the seed's text, mojibake and all
    lib = ns["profile"]["library"]
    assert [e["entity_id"] for e in lib] == ["AAPL", "PORTFOLIO_TECH"]
    assert lib[0]["action_counts"] == {"view": 1, "trade": 1, "watchlist_add": 1}
    assert ns["recommendation_engine"] == [("suggest_similar", (["AAPL", "PORTFOLIO_TECH"],), {})]
    # a first login has no history: below 0.5, so the seed's own check asks for 2FA
    assert ns["trust_result"]["trust_score"] < 0.5 and ns["trust_result"]["action"] == "require_mfa"
    assert f"Low trust score for user {ns['current_user'].id}" in messages
    assert [name for name, _, _ in screens] == ["welcome_tour", "dashboard"]
    assert screens[1][1][0] == lib


def test_load_test_placeholder_key_is_refused_then_10000_events(database_url, redis_url, workers, engine, capsys):
    from workers.ingestion.licenses import LicenseError

    users = [str(u) for u in range(1, 101)]
    with engine.connect() as c:
        before = c.execute(text("SELECT count(*) FROM ingest_events WHERE user_id = ANY(:u)"), {"u": users}).scalar()
    with pytest.raises(LicenseError, match="this licence key is invalid"):  # "SW-PROD-YOUR-KEY", as written
        exec(connect(SEED_000_LOAD_TEST, database_url, redis_url), {"random": random})  # noqa: S102
    script = connect(SEED_000_LOAD_TEST, database_url, redis_url, license_key=make_license_key())
    exec(script, {"random": random})  # noqa: S102 - a plain script: it calls asyncio.run itself
    out = capsys.readouterr().out
    assert "Processed 100 users..." in out and "Generated 10000 events" in out
    assert drain_until(engine, users, before + 10_000) == before + 10_000


def test_monitor_performance_and_licence_phases(database_url, redis_url, capsys):
    from shadowwatch.admin import generate_production_license

    ns = {"generate_production_license": generate_production_license}

    async def scenario():
        await run_block(SEED_000_GENERATE_LICENSE, ns)
        ns["sw"] = sw = __import__("shadowwatch").ShadowWatch(database_url=database_url, redis_url=redis_url,
                                                              license_key=ns["license_key"])
        await run_block(SEED_000_TIMING, ns)
        await run_block(SEED_000_VERIFY_LICENSE, ns)
        dev = dict(ns, sw=__import__("shadowwatch").ShadowWatch(database_url=database_url, redis_url=redis_url))
        with pytest.raises(AssertionError):  # the check is not vacuous: dev mode fails it
            await run_block(SEED_000_VERIFY_LICENSE, dev)
        await sw.close()

    asyncio.run(scenario())
    out = capsys.readouterr().out
    assert re.search(r"License: SW-PROD-[\w-]+\.[\w-]+", out) and re.search(r"Track time: [\d.]+ms", out)


INSTANCE = r'''
import asyncio, json, sys
from shadowwatch import ShadowWatch

async def main(src):
    sw = ShadowWatch(database_url=sys.argv[1], license_key=sys.argv[2], redis_url=sys.argv[3])
    code = compile(src, "<seed>", "exec", flags=__import__("ast").PyCF_ALLOW_TOP_LEVEL_AWAIT)
    await eval(code, {"sw": sw})
    print(json.dumps({"usage": sw.sync.usage()["used"], "licence": sw.sync.license()["id"],
                      "cache_reads": sw.sync.cache.local.stats()["by_kind"]}))
    await sw.close()

asyncio.run(main(sys.stdin.read()))
'''


def test_multi_instance_phase_5(database_url, redis_url, redis_client):
    """Phase 5 in two real processes. What the seed expects from a licence cache quantpipe does without
    one: each instance verifies the key's signature offline (nothing about a licence is trusted from
    Redis), and the event count every limit is checked against is shared."""
    key = make_license_key()
    lines = SEED_000_MULTI_INSTANCE.splitlines()
    split = lines.index("# Instance 2 (should use cached license):")
    seen = []
    for part in ("\n".join(lines[:split]), "\n".join(lines[split:])):
        proc = subprocess.run([sys.executable, "-c", INSTANCE, database_url, key, redis_url], input=part,
                              capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert proc.returncode == 0, proc.stderr
        seen.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert seen[0]["licence"] == seen[1]["licence"]
    assert [s["usage"] for s in seen] == [1, 2]  # instance 2 counts on from instance 1
    assert all("license" not in s["cache_reads"] for s in seen)
    assert not redis_client.keys("shadowwatch:license:*")


def test_admin_monitor_query_runs_verbatim(database_url, redis_url, engine, workers):
    ns: dict = {"ShadowWatch": __import__("shadowwatch").ShadowWatch}
    asyncio.run(run_block(connect(SEED_000_ADMIN_MONITOR_SW, database_url, redis_url), ns))
    assert ns["sw"].sync.database_url.startswith("postgresql+psycopg2://")
    user = new_user()
    with pytest.warns(UserWarning, match="local dev mode"):
        for entity in ("AAPL", "AAPL", "MSFT"):
            ns["sw"].sync.track(user, entity, "view")
    drain_until(engine, [user], 3)
    import psycopg2

    with psycopg2.connect(database_url.replace("postgresql+psycopg2://", "postgresql://")) as conn:
        with conn.cursor() as cur:
            cur.execute(SEED_000_ADMIN_MONITOR_SQL)
            names = [d.name for d in cur.description]
            rows = cur.fetchall()
    assert names == ["entity_id", "count"] and rows and all(isinstance(n, int) for _, n in rows)
    assert rows == sorted(rows, key=lambda r: -r[1]) and len(rows) <= 10


def test_deployment_guide_configurations(database_url, redis_url, redis_client, monkeypatch):
    from shadowwatch import ShadowWatch
    from workers.ingestion.cache import AsyncRedisCache
    from workers.ingestion.licenses import LicenseError

    key = make_license_key()
    monkeypatch.setenv("SHADOWWATCH_LICENSE", key)
    configs = [SEED_003_SINGLE, SEED_003_MULTI, SEED_003_LOAD_BALANCED, SEED_003_KUBERNETES,
               SEED_003_WRONG_AND_CORRECT, SEED_003_REDIS_AUTH]

    async def scenario():
        for src in configs[:3] + configs[4:5]:  # placeholder keys, as written: refused as invalid when used
            ns = await run_block(connect(src, database_url, redis_url), {"ShadowWatch": ShadowWatch})
            assert not ns["sw"]._local_mode
            with pytest.raises(LicenseError, match="this licence key is invalid"):
                await ns["sw"].track(user_id=1, entity_id="AAPL", action="view")
        for src in configs[:3] + configs[4:5]:
            ns = await run_block(connect(src, database_url, redis_url, license_key=key), {"ShadowWatch": ShadowWatch})
            await ns["sw"].track(user_id=int(new_user()), entity_id="AAPL", action="view")
        k8s = await run_block(SEED_003_KUBERNETES, {"ShadowWatch": ShadowWatch})  # DATABASE_URL, REDIS_URL set
        sw = k8s["sw"]
        await sw.track(user_id=int(new_user()), entity_id="MSFT", action="view")
        assert isinstance(sw.cache, AsyncRedisCache)
        await run_block(SEED_003_CUSTOM_TTL, {"sw": sw})
        assert await sw.cache.get("custom:key") == {"data": "value"}
        await sw.close()

    asyncio.run(scenario())
    assert 1790 < redis_client.pttl("custom:key") / 1000 <= 1800
    keys = {k.decode().split(":")[1] for k in redis_client.keys("shadowwatch:*")}  # the guide's `redis-cli keys`
    assert {"events", "usage"} <= keys and "license" not in keys  # licences are verified, never cached
    # the auth form names a password the test Redis does not have: it fails on use, saying so
    ns = asyncio.run(run_block(connect(SEED_003_REDIS_AUTH, database_url, redis_url, license_key=key),
                               {"ShadowWatch": ShadowWatch}))
    assert ns["sw"].sync.redis_url.startswith("redis://:your-strong-password@")
    redis_client.delete("custom:key")
