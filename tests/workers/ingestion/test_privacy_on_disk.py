"""What reaches the disk (#9 items 8, 9): no raw IP in a pg_dump of the tables or in the Redis AOF,
whatever shape the address has in the metadata; after delete_user, nothing in the AOF names the user."""

from __future__ import annotations

import dataclasses
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.support import RedisServer
from tests.workers.ingestion.helpers import make_license_key, new_user, wait_for_events
from workers.ingestion import erasure

IPS = ["203.0.113.41", "198.51.100.42", "2001:db8:42::43", "192.0.2.44", "2001:db8::45", "198.51.100.46",
       "203.0.113.47", "192.0.2.48"]


def _pg_dump(database_url: str) -> str:
    import pgserver

    url = make_url(database_url)
    binary = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pg_dump"
    host = url.host or url.query.get("host") or "127.0.0.1"  # the embedded server's URL names a socket dir
    cmd = [str(binary), "--data-only", "-h", host, "-p", str(url.port or 5432),
           "-U", url.username or "postgres", "-d", url.database]
    env = {"PGPASSWORD": url.password or "", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _aof(data_dir: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(data_dir.rglob("*.aof*")))


@pytest.fixture()
def private_redis(tmp_path):
    server = RedisServer(Path(tmp_path) / "redis", fsync="always").start()
    yield server
    server.stop()


def _client(database_url, server, **ingest):
    from shadowwatch import ShadowWatchSync
    from shared_models.settings import get_settings

    s = get_settings()
    s = dataclasses.replace(s, ingest=dataclasses.replace(s.ingest, **ingest))
    return ShadowWatchSync(database_url, server.url, make_license_key(), settings=s)


def test_no_raw_ip_in_pg_dump_or_aof_whatever_its_shape(database_url, engine, private_redis):
    sw = _client(database_url, private_redis)
    user = new_user()
    a, b, c, d, e, f, g, h = IPS
    shapes = [
        {"hops": [a, [b]]},                                       # inside (nested) lists
        {c: "seen"},                                              # as a dict key
        {"url": f"https://{d}/login?next=/", "v6url": f"http://[{e}]:8080/x"},  # in URLs
        {"peer": f"{f}:5432"},                                    # ip:port
        {"note": f"user logged in from {g}, then from {h}."},     # free text
        {"pair": (a, "tuple")},                                   # a tuple
    ]
    for meta in shapes:
        sw.track(user, "AAPL", "view", meta)
    with pytest.raises(Exception) as info:
        sw.track(user, a, "view")                                 # an IP-shaped entity id
    assert getattr(info.value, "field", None) == "entity_id"
    sw.drain_now(time_budget=30)
    assert wait_for_events(sw.engine, [user], len(shapes)) == len(shapes)
    dump, aof = _pg_dump(database_url), _aof(private_redis.data_dir)
    assert "iphash:" in dump and b"iphash:" in aof  # the addresses were there, hashed
    for ip in IPS:
        assert ip not in dump, f"{ip} in pg_dump"
        assert ip.encode() not in aof, f"{ip} in the Redis AOF"
    sw.delete_user(user)
    sw.close()


def test_erasure_leaves_no_trace_of_the_user_in_the_aof(database_url, engine, private_redis):
    sw = _client(database_url, private_redis)
    user = new_user()
    sw.track_many([{"user_id": user, "entity_id": ent, "action": "view"} for ent in ("AAPL", "MSFT", "NVDA")] * 20)
    sw.drain_now(time_budget=30)
    wait_for_events(sw.engine, [user], 60)
    sw.get_profile(user)                                          # cached profile and fingerprint
    sw.verify_login(user, {"ip_address": IPS[0], "device_fingerprint": "dev-1"})
    sw.track(user, "TSLA", "view")                                # still queued at the erasure
    assert str(user).encode() in _aof(private_redis.data_dir)     # today: 122 times
    counts = sw.delete_user(user)
    assert counts["stream_entries"] == 1 and counts["redis_aof_rewrites"] == 1
    assert erasure.wait_for_aof_rewrite(sw.redis, timeout=60)
    assert _aof(private_redis.data_dir).count(str(user).encode()) == 0
    sw.close()


def test_erasure_without_the_rewrite_says_so(database_url, engine, private_redis):
    """The operator can turn the rewrite off (INGEST_ERASURE_AOF_REWRITE=false): then the AOF keeps the
    user until Redis rewrites it by itself; the result says no rewrite was requested."""
    sw = _client(database_url, private_redis, erasure_aof_rewrite=False)
    user = new_user()
    sw.track(user, "AAPL", "view")
    counts = sw.delete_user(user)
    assert counts["redis_aof_rewrites"] == 0
    time.sleep(0.1)
    assert str(user).encode() in _aof(private_redis.data_dir)
    sw.close()
