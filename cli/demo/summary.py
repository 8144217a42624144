"""One line per pool after a demo run, from the database (what grew) and the sources' own counts."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text

DECISION_SQL = text("""
SELECT c.name, e.decision, e.n_trades, e.score, e.metrics->'metrics'->>'reason'
FROM shadow_evaluations e JOIN shadow_models c ON c.id = e.challenger_id
WHERE e.created_at >= :since AND e.decision IN ('APPROVED', 'REJECTED')
ORDER BY e.created_at, e.id
""")
PROMOTIONS_SQL = text("SELECT count(*) FROM shadow_promotions WHERE created_at >= :since AND event IN ('promote', 'manual')")
FLOW_SQL = text("""
SELECT count(*), percentile_cont(0.99) WITHIN GROUP (ORDER BY total_latency_ms)
FROM pattern_flow_analysis WHERE start_time >= :since AND checkpoints_logged >= 2
""")


@dataclass
class Line:
    pool: str
    text: str
    ok: bool


def decided(engine, since) -> bool:
    with engine.connect() as conn:
        return conn.execute(DECISION_SQL, {"since": since}).first() is not None


def _decisions(engine, since) -> list[tuple]:
    with engine.connect() as conn:
        return list(conn.execute(DECISION_SQL, {"since": since}))


def _flows(engine, since) -> tuple[int, float | None]:
    with engine.connect() as conn:
        n, p99 = conn.execute(FLOW_SQL, {"since": since}).one()
    return int(n), (float(p99) if p99 is not None else None)


def lines(sources, before: dict[str, int], after: dict[str, int]) -> list[Line]:
    grew = {k: after[k] - before[k] for k in after}
    since = sources.started_at
    p, d, u = sources.patterns, sources.discovery, sources.users.counts
    span = f" ({p.first:%Y-%m-%d}..{p.last:%Y-%m-%d})" if p.first is not None and p.last is not None else ""
    n_flows, p99 = _flows(sources.engine, since)
    flow = f", p99 flow latency {p99:.0f} ms over {n_flows:,} flows" if p99 is not None else ""
    patterns = Line("patterns", f"{p.ticks} days x {len(sources.plan.symbols)} symbols replayed{span}: "
                                f"{grew['detections']:,} patterns detected, {grew['published']:,} events published"
                                f"{flow}" + (f" [error: {p.error}]" if p.error else ""),
                    grew["detections"] > 0 and grew["published"] > 0)
    if not sources.plan.days:
        patterns.text = "nothing to replay: every shipped bar is stored already (bars are replayed once per database)"
    takeovers = (f", {u.takeovers_challenged}/{u.takeovers} takeovers challenged" if u.takeovers else "")
    legit = (f", {u.legit_challenged}/{u.legit} usual logins challenged" if u.legit else "")
    ingest = Line("ingest", f"{u.events:,} events tracked, {grew['ingest_events']:,} stored; {u.logins:,} logins"
                            f"{takeovers}{legit}" + (f" [{u.error}]" if u.error else ""), grew["ingest_events"] > 0)
    total = after["findings"]
    if d.done:
        disc = Line("discovery", f"scan all of {d.politicians} politicians: {total:,} findings "
                                 f"({grew['findings']:,} new)", total > 0)
    else:
        disc = Line("discovery", f"scan all: {d.scanned}/{d.politicians} politicians scanned, not finished"
                                 + (f" [error: {d.error}]" if d.error else ""), False)
    verdicts = _decisions(sources.engine, since)
    with sources.engine.connect() as conn:
        promoted = int(conn.execute(PROMOTIONS_SQL, {"since": since}).scalar_one())
    if verdicts:
        name, decision, n, score, reason = verdicts[0]
        what = f"challenger {name} {decision} at {n:,} trades (score {score:.0f})"
        if decision == "REJECTED" and reason:
            what += f": {reason}"
        if len(verdicts) > 1:
            what += f"; {len(verdicts) - 1} more decision(s)"
        what += f"; {promoted} promotion(s)"
    else:
        what = "no decision yet (evaluations PENDING)"
    shadow = Line("shadow", f"{grew['shadow_trades']:,} trades recorded, {grew['shadow_evaluations']:,} "
                            f"evaluations; {what}", grew["shadow_trades"] > 0 and grew["shadow_evaluations"] > 0)
    return [patterns, ingest, disc, shadow]
