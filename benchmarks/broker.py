"""Task fetch through the broker: quantpipe's atomic fetch against kombu's own, same run.

    python benchmarks/broker.py [--messages N] [--rounds N]

What a worker does per task before and after running it: fetch one message (prefetch 1),
record it unacked, ack it. kombu's Redis transport fetches with BRPOP and records with a
second round trip (a SIGKILL between the two loses the message); ``workers/broker.py``
fetches with BLMOVE into an inflight list and records with one Lua script, the same two
round trips. The baseline is kombu's stock transport on the same Redis, the same messages,
alternating rounds. Goal: ``ratio broker_fetch_vs_kombu >= 0.9`` (messages per second,
median round). Without REDIS_URL it starts a private embedded Redis (stopped at the end).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TRANSPORTS = {"kombu": "redis", "quantpipe": "workers.broker:Transport"}


def _round(url: str, transport: str, n: int) -> float:
    """Messages per second consumed and acked, one at a time, after publishing ``n``."""
    import kombu

    name = f"bench-broker-{uuid.uuid4().hex[:8]}"
    q = kombu.Queue(name, kombu.Exchange(name, type="direct"), routing_key=name)
    seen = []
    with kombu.Connection(url, transport=transport, transport_options={"priority_steps": [0]}) as conn:
        producer = conn.Producer()
        for i in range(n):
            producer.publish({"i": i}, exchange=q.exchange, routing_key=name, declare=[q] if i == 0 else [],
                             serializer="json")
        consumer = conn.Consumer(q, callbacks=[lambda body, m: (seen.append(body["i"]), m.ack())])
        consumer.qos(prefetch_count=1)
        with consumer:
            t0 = time.perf_counter()
            while len(seen) < n:
                conn.drain_events(timeout=5)
            elapsed = time.perf_counter() - t0
        conn.default_channel.client.delete(name)
    assert sorted(seen) == list(range(n)), "every message exactly once"
    return n / elapsed


def run(url: str, n: int, rounds: int) -> None:
    rates: dict[str, list[float]] = {k: [] for k in TRANSPORTS}
    _round(url, TRANSPORTS["quantpipe"], min(n, 500))  # warm both paths (script load, imports)
    _round(url, TRANSPORTS["kombu"], min(n, 500))
    for r in range(rounds):
        order = list(TRANSPORTS) if r % 2 == 0 else list(reversed(TRANSPORTS))
        for name in order:
            rates[name].append(_round(url, TRANSPORTS[name], n))
    print(f"load average {os.getloadavg()[0]:.2f}; {n:,} messages per round, {rounds} rounds")
    for name, values in rates.items():
        print(f"  {name:9} median {statistics.median(values):8,.0f} msg/s  "
              f"(min {min(values):,.0f}, max {max(values):,.0f})")
    ratio = statistics.median(rates["quantpipe"]) / statistics.median(rates["kombu"])
    print(f"ratio broker_fetch_vs_kombu = {ratio:.2f} (goal >= 0.9)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=5000, help="messages per round (default 5000)")
    ap.add_argument("--rounds", type=int, default=5, help="rounds per transport (default 5)")
    args = ap.parse_args()
    from tests import scratch

    env = scratch.start("qp_bench_broker")
    try:
        run(env.redis_url, args.messages, args.rounds)
    finally:
        env.close()


if __name__ == "__main__":
    main()
