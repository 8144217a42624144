"""What an alert says: what happened, the numbers behind it, what to do, where to look.

Pools store facts (``notification_alerts.data``); this module turns them into a
``Message`` once, and each channel lays the same message out its own way (JSON,
Slack blocks, a plain-text email), so every channel tells the same story.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

ICONS = {"critical": ":rotating_light:", "high": ":warning:", "medium": ":large_blue_circle:", "low": ":white_circle:"}


@dataclass
class Message:
    event: str
    priority: str
    title: str
    summary: str
    facts: list[tuple[str, str]] = field(default_factory=list)
    action: str = ""
    link: str | None = None
    link_label: str = "Open the dashboard"

    def text(self) -> str:
        """The whole message as plain text (email body, Slack's notification text)."""
        lines = [f"[{self.priority.upper()}] {self.title}", "", self.summary]
        if self.facts:
            lines += [""] + [f"  {k}: {v}" for k, v in self.facts]
        if self.action:
            lines += ["", f"What to do: {self.action}"]
        if self.link:
            lines += ["", f"{self.link_label}: {self.link}"]
        return "\n".join(lines)


def _pct(v: Any, digits: int = 1, signed: bool = False) -> str:
    if v is None:
        return "n/a"
    return f"{float(v) * 100:{'+' if signed else ''}.{digits}f} %"


def _num(v: Any, digits: int = 3) -> str:
    return "n/a" if v is None else f"{float(v):.{digits}f}"


def _int(v: Any) -> str:
    return "n/a" if v is None else f"{int(v):,}"


def _vs(a: Any, b: Any, fmt: Callable[[Any], str]) -> str:
    return f"{fmt(a)} vs {fmt(b)}"


def _model_facts(ev: dict, trades: dict | None = None) -> list[tuple[str, str]]:
    """Challenger vs champion, from a stored evaluation (``shadow_evaluations.metrics``)."""
    m = (ev or {}).get("metrics") or {}
    ch, cp = m.get("challenger") or {}, m.get("champion") or {}
    facts: list[tuple[str, str]] = []
    if ch or cp:
        facts += [("Win rate", _vs(ch.get("win_rate"), cp.get("win_rate"), _pct)),
                  ("Sharpe per trade", _vs(ch.get("sharpe"), cp.get("sharpe"), _num)),
                  ("Mean return", _vs(ch.get("mean"), cp.get("mean"), lambda v: _pct(v, 2, True))),
                  ("Max drawdown", _vs(ch.get("max_drawdown"), cp.get("max_drawdown"), _pct))]
        if m.get("welch_z") is not None:
            facts.append(("Welch z (boundary)", f"{float(m['welch_z']):.2f} ({_num(ev.get('boundary'), 2)})"))
    if ev and ev.get("score") is not None:
        facts.append(("Promotion score", f"{float(ev['score']):.1f} / 100"))
    if trades:
        facts.append(("Trades", _vs(trades.get("challenger"), trades.get("champion"), _int)))
    return facts


def _promotion(d: dict, base: str) -> Message:
    ev = d.get("evaluation") or {}
    how = "manually" if d.get("forced") else (f"after the sequential test APPROVED it at {_int(ev.get('n_trades'))} "
                                             "trades" if ev else "")
    facts = _model_facts(ev, d.get("trades")) + [("Decided by", f"{d.get('actor')} in {_num(d.get('elapsed_ms'), 1)} ms"),
                                                 ("Reason", str(d.get("reason") or "-"))]
    return Message("shadow.promotion", "high", f"Promotion: {d.get('challenger')} is the new champion",
                   f"{d.get('challenger')} replaced {d.get('previous_champion')} as champion {how}.".replace("  ", " "),
                   facts, "Watch the new champion's first trades on the shadow dashboard. The rollback monitor reverts "
                   "it automatically if its win rate falls significantly; to revert now run `quantpipe shadow "
                   "rollback --reason \"…\"`.", f"{base}/dashboard/shadow", "Open the shadow models dashboard")


def _rollback(d: dict, base: str) -> Message:
    mon = (d.get("metrics") or {}).get("monitor") or {}
    facts = [("Rolled back", f"{d.get('from_model')} → {d.get('to_model')}"),
             ("Reason", str(d.get("reason") or "-")),
             ("Decided by", f"{d.get('actor')} in {_num(d.get('elapsed_ms'), 1)} ms")]
    if mon:
        facts += [("Trades since promotion", _int(mon.get("n_trades"))),
                  ("z (boundary)", f"{_num(mon.get('z'), 2)} ({_num(mon.get('boundary'), 2)})")]
    return Message("shadow.rollback", "critical", f"Rollback: {d.get('to_model')} is champion again",
                   f"{d.get('from_model')} was demoted and {d.get('to_model')} restored as champion.", facts,
                   f"Find out why {d.get('from_model')} underperformed before redeploying it: compare its "
                   "post-promotion trades with the champion's on the shadow dashboard.", f"{base}/dashboard/shadow",
                   "Open the shadow models dashboard")


def _manual_review(d: dict, base: str) -> Message:
    ev = d.get("evaluation") or {}
    decision = d.get("decision", "APPROVED")
    if decision == "APPROVED":
        summary = (f"{d.get('challenger')} passed every primary criterion against {d.get('champion')} at "
                   f"{_int(ev.get('n_trades'))} trades, but automatic promotion is off (SHADOW_AUTO_PROMOTE=false).")
        action = (f"Review the comparison, then promote with `quantpipe shadow promote {d.get('challenger')}` "
                  "or from the shadow dashboard.")
    else:
        summary = (f"{d.get('challenger')} was REJECTED against {d.get('champion')} at {_int(ev.get('n_trades'))} "
                   f"trades and archived: {d.get('reason') or (ev.get('metrics') or {}).get('reason')}.")
        action = "No action is needed unless you expected it to win: check its criteria on the shadow dashboard."
    return Message("shadow.manual_review", "medium", f"Manual review: {d.get('challenger')} {decision}", summary,
                   _model_facts(ev, d.get("trades")), action, f"{base}/dashboard/shadow",
                   "Open the shadow models dashboard")


def _degradation(d: dict, base: str) -> Message:
    mon = d.get("monitor") or {}
    return Message("shadow.degradation", "high", f"Degradation: champion {d.get('champion')} is slipping",
                   f"{d.get('champion')}'s win rate since its promotion is significantly below its predecessor's "
                   "(one-sided z ≤ −1.645), but has not crossed the rollback boundary yet.",
                   [("Trades since promotion", _int(mon.get("n_trades"))), ("Looks", _int(mon.get("looks_done"))),
                    ("z (rollback boundary)", f"{_num(mon.get('z'), 2)} ({_num(mon.get('boundary'), 2)})"),
                    ("Detail", str(mon.get("reason") or "-"))],
                   "Watch the next looks; roll back by hand (`quantpipe shadow rollback --reason \"…\"`) if you "
                   "do not want to wait for the boundary.", f"{base}/dashboard/shadow", "Open the shadow models dashboard")


def _anomaly(d: dict, base: str) -> Message:
    pid = d.get("politician_id")
    return Message("anomaly.critical", "critical",
                   f"Critical anomaly: {d.get('politician_name') or pid} — {d.get('anomaly_type')}",
                   str(d.get("description") or "A new uninvestigated anomaly at or above the critical severity."),
                   [("Severity", f"{_num(d.get('severity'), 2)} (threshold {_num(d.get('threshold'), 2)})"),
                    ("Confidence", _num(d.get("confidence"), 2)), ("Subject", str(d.get("subject") or "-")),
                    ("Anomaly id", str(d.get("anomaly_id")))],
                   "Investigate the trades behind it, then mark it investigated: "
                   f"`POST /api/v1/anomalies/{d.get('anomaly_id')}/investigated`.",
                   f"{base}/dashboard/politicians/{pid}" if pid else f"{base}/dashboard/discovery",
                   "Open the politician's page")


def _producer_down(d: dict, base: str) -> Message:
    return Message("patterns.producer_down", "high", "Pattern producer down: no heartbeat",
                   f"The patterns producer's heartbeat is {_int(d.get('age_seconds'))} s old (limit "
                   f"{_int(d.get('limit_seconds'))} s): consumers treat it as offline and receive no patterns.",
                   [("Last heartbeat", str(d.get("last_heartbeat_iso") or "never")),
                    ("Heartbeat age", f"{_int(d.get('age_seconds'))} s"),
                    ("Seen from", str(d.get("source") or "redis"))],
                   "Check the patterns workers and beat (`quantpipe status`); restart `quantpipe worker patterns` "
                   "and make sure exactly one beat runs.", f"{base}/dashboard/patterns", "Open the patterns dashboard")


def _dead_letters(d: dict, base: str) -> Message:
    top = d.get("top_reasons") or []
    facts = [("Pool", str(d.get("pool"))), ("Rejected", f"{_int(d.get('count'))} in {_int(d.get('window_seconds'))} s"),
             ("Threshold", _int(d.get("threshold")))]
    facts += [(f"Reason ({_int(r.get('count'))})", f"{r.get('source')}: {str(r.get('reason'))[:160]}") for r in top[:3]]
    return Message("pipeline.dead_letters", "medium", f"Burst of rejected input in the {d.get('pool')} pool",
                   f"{_int(d.get('count'))} inputs were rejected and kept as dead letters in the last "
                   f"{_int(d.get('window_seconds'))} s.", facts,
                   "Look at the dead letters (`dead_letters` table, newest first) and fix the producer sending them; "
                   "nothing was dropped.", f"{base}/dashboard", "Open the overview")


def _test(d: dict, base: str) -> Message:
    return Message("notify.test", "low", "Test alert from quantpipe",
                   f"A test requested by {d.get('actor')} for subscription {d.get('subscription_id')}: if you read "
                   "this, delivery (and the signature, for webhooks) works.", [("Subscription", str(d.get("name")))],
                   "Nothing to do.", f"{base}/dashboard", "Open the overview")


RENDERERS: dict[str, Callable[[dict, str], Message]] = {
    "shadow.promotion": _promotion, "shadow.rollback": _rollback, "shadow.manual_review": _manual_review,
    "shadow.degradation": _degradation, "anomaly.critical": _anomaly, "patterns.producer_down": _producer_down,
    "pipeline.dead_letters": _dead_letters, "notify.test": _test,
}


def dashboard_base(settings) -> str:
    if settings.notify.dashboard_url:
        return settings.notify.dashboard_url.rstrip("/")
    return f"http://{settings.api.host}:{settings.api.port}"


def render(event: str, priority: str, title: str, data: dict, base: str) -> Message:
    """The message of one alert; an event without a renderer (or bad facts) still says what it knows."""
    try:
        msg = RENDERERS[event](data or {}, base)
    except Exception:  # noqa: BLE001 - an alert must go out even if its facts are not what we expect
        msg = Message(event, priority, title, title, [(str(k), str(v)[:200]) for k, v in (data or {}).items()][:10])
    msg.priority = priority
    return msg


def slack_payload(msg: Message, idempotency_key: str) -> dict:
    """A Slack incoming-webhook body: ``text`` alone is readable (notifications, old clients); blocks lay it out."""
    blocks: list[dict] = [
        {"type": "header", "text": {"type": "plain_text", "text": f"{msg.title}"[:150], "emoji": True}},
        {"type": "section", "text": {"type": "mrkdwn", "text": f"{ICONS.get(msg.priority, '')} *{msg.priority.upper()}* "
                                                               f"· {msg.summary}"[:3000]}},
    ]
    if msg.facts:
        blocks.append({"type": "section", "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"[:2000]}
                                                     for k, v in msg.facts[:10]]})
    if msg.action:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"*What to do:* {msg.action}"[:3000]}})
    if msg.link:
        blocks.append({"type": "actions", "elements": [{"type": "button", "url": msg.link,
                                                        "text": {"type": "plain_text", "text": msg.link_label[:75]}}]})
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"quantpipe · {msg.event} · "
                                                                              f"key {idempotency_key}"}]})
    return {"text": msg.text()[:4000], "blocks": blocks}
