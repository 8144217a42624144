"""Delivery against a real local HTTP receiver and a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import time

from sqlalchemy import text

from shared_models.notifications import EVENTS, PUBLIC_EVENTS
from workers.notifications import signing

from .conftest import fast
from .helpers import SAMPLES, attempts, deliveries, drain, raise_, subscribe
from .receivers import Behaviour, WebhookReceiver, closed_port_url


def test_every_event_is_delivered_once_with_a_valid_signature(notify_db, notify_engine, engine, receiver):
    sub, secret = subscribe(receiver.url, "*", "json")
    for i, event in enumerate(PUBLIC_EVENTS):
        assert raise_(event, f"k{i}").deliveries == 1
    drain(notify_engine, fast(), engine)
    assert len(receiver.requests) == len(PUBLIC_EVENTS)
    seen = {}
    for r in receiver.requests:
        payload = signing.verify(secret, r.body, r.headers["x-quantpipe-signature"])  # raises if forged/replayed
        assert r.headers["idempotency-key"] == payload["idempotency_key"]
        assert r.headers["x-quantpipe-event"] == payload["event"]
        assert abs(float(r.headers["x-quantpipe-timestamp"]) - payload["sent_at"]) < 0.01
        assert payload["priority"] == EVENTS[payload["event"]]
        assert payload["subscription_id"] == sub["id"] and payload["attempt"] == 1
        assert payload["title"] and payload["summary"] and payload["action"] and payload["link"].startswith("http")
        seen[payload["event"]] = payload
    assert sorted(seen) == sorted(PUBLIC_EVENTS)
    assert seen["shadow.promotion"]["data"] == SAMPLES["shadow.promotion"]
    assert all(d["status"] == "delivered" and d["attempts"] == 1 and d["last_status"] == 200
               for d in deliveries(engine))
    # a forged body or a replayed one is refused by the receiver-side check
    body = receiver.requests[0].body
    for bad, when in ((body.replace(b'"attempt":1', b'"attempt":2'), None), (body, time.time() + 3600)):
        try:
            signing.verify(secret, bad, receiver.requests[0].headers["x-quantpipe-signature"], now=when)
        except ValueError:
            continue
        raise AssertionError("a forged or replayed body was accepted")


def test_raising_the_same_fact_twice_is_one_alert(notify_db, notify_engine, engine, receiver):
    subscribe(receiver.url, "shadow.*")
    assert raise_("shadow.rollback", "event:9").deliveries == 1
    again = raise_("shadow.rollback", "event:9")
    assert again.duplicate and again.key == "shadow.rollback:event:9"
    drain(notify_engine, fast(), engine)
    drain(notify_engine, fast(), engine)
    assert len(receiver.requests) == 1


def test_subscriptions_match_events_and_min_priority(notify_db, notify_engine, engine, receiver):
    subscribe(receiver.url, "shadow.*", min_priority="high")    # promotion, rollback, degradation
    subscribe(receiver.url, "anomaly.critical,pipeline.dead_letters")
    for i, event in enumerate(PUBLIC_EVENTS):
        raise_(event, f"m{i}")
    drain(notify_engine, fast(), engine)
    got = sorted(r.json["event"] + f"@{r.json['subscription_id']}" for r in receiver.requests)
    assert got == sorted(["shadow.promotion@1", "shadow.rollback@1", "shadow.degradation@1",
                          "anomaly.critical@2", "pipeline.dead_letters@2"])


def test_fails_three_times_then_succeeds_is_delivered_exactly_once(notify_db, notify_engine, engine):
    with WebhookReceiver(Behaviour(fail_first=3, fail_status=503)) as rx:
        subscribe(rx.url, "shadow.promotion")
        raise_("shadow.promotion", "event:1")
        t0 = time.time()
        drain(notify_engine, fast(), engine)
        assert len(rx.requests) == 4 and len(rx.accepted) == 1
        [d] = deliveries(engine)
        assert d["status"] == "delivered" and d["attempts"] == 4
        log = attempts(engine, d["id"])
        assert [a["http_status"] for a in log] == [503, 503, 503, 200]
        assert all(a["finished_at"] is not None for a in log)
        gaps = [b.at - a.at for a, b in zip(rx.requests, rx.requests[1:])]
        assert gaps[0] >= 0.05 and gaps[1] >= 0.1 * 0.99  # backoff: 0.1·2^(n-1) with equal jitter (≥ half)
        assert {r.key for r in rx.requests} == {d["key"]}   # every retry carries the same idempotency key
        assert time.time() - t0 < 20


def test_a_receiver_down_for_good_ends_in_dead_letters_with_every_attempt(notify_db, notify_engine, engine):
    url = closed_port_url()
    subscribe(url, "*")
    raise_("anomaly.critical", "anomaly:17")
    drain(notify_engine, fast(max_attempts=4), engine)
    [d] = deliveries(engine)
    assert d["status"] == "dead" and d["attempts"] == 4
    log = attempts(engine, d["id"])
    assert [a["attempt"] for a in log] == [1, 2, 3, 4]
    assert all(a["http_status"] is None and "ConnectError" in a["error"] for a in log)
    with engine.connect() as c:
        letter = c.execute(text("SELECT source, field, reason, payload FROM dead_letters WHERE pool = 'notify'")).one()
    assert letter.source == "notify.deliver" and letter.field == "target" and "after 4 attempt(s)" in letter.reason
    assert [a["attempt"] for a in letter.payload["attempts"]] == [1, 2, 3, 4]
    assert letter.payload["idempotency_key"] == d["key"]


def test_a_permanent_refusal_is_dead_lettered_at_once(notify_db, notify_engine, engine):
    with WebhookReceiver(Behaviour(status=410)) as rx:
        subscribe(rx.url, "*")
        raise_("shadow.degradation", "x")
        drain(notify_engine, fast(), engine)
        assert len(rx.requests) == 1
    [d] = deliveries(engine)
    assert d["status"] == "dead" and d["attempts"] == 1 and d["last_status"] == 410


def test_one_dead_receiver_does_not_hold_up_the_others(notify_db, notify_engine, engine, receiver):
    subscribe(closed_port_url(), "*")
    subscribe(receiver.url, "*")
    for i in range(5):
        raise_("pipeline.dead_letters", f"p{i}")
    drain(notify_engine, fast(max_attempts=3), engine)
    assert len(receiver.accepted) == 5
    statuses = sorted(d["status"] for d in deliveries(engine))
    assert statuses == ["dead"] * 5 + ["delivered"] * 5


def test_slack_format_is_a_readable_incoming_webhook_payload(notify_db, notify_engine, engine, receiver):
    _, secret = subscribe(receiver.url, "shadow.promotion", "slack")
    raise_("shadow.promotion", "event:3")
    drain(notify_engine, fast(), engine)
    [r] = receiver.requests
    assert r.headers["x-quantpipe-signature"] == signing.signature(secret, r.body)
    body = r.json
    assert set(body) == {"text", "blocks"}
    t = body["text"]
    for needle in ("[HIGH] Promotion: momentum_v2 is the new champion", "replaced ensemble_xgb_v1",
                   "Win rate: 56.2 % vs 51.0 %", "Promotion score: 87.5 / 100", "What to do:",
                   "/dashboard/shadow"):
        assert needle in t, (needle, t)
    kinds = [b["type"] for b in body["blocks"]]
    assert kinds[:2] == ["header", "section"] and "actions" in kinds and kinds[-1] == "context"
    assert r.key in body["blocks"][-1]["elements"][0]["text"]


def test_email_goes_through_a_real_smtp_server(notify_db, notify_engine, engine, smtp):
    import dataclasses

    subscribe("mailto:ops@example.com", "shadow.rollback", "email")
    raise_("shadow.rollback", "event:5")
    settings = fast(smtp_host="127.0.0.1", smtp_port=smtp.port)
    drain(notify_engine, settings, engine)
    [(rcpt, msg)] = smtp.mailbox.messages
    [d] = deliveries(engine)
    assert rcpt == ["ops@example.com"] and d["status"] == "delivered" and d["last_status"] == 250
    assert msg["Subject"] == "[CRITICAL] Rollback: ensemble_xgb_v1 is champion again"
    assert msg["Message-ID"] == f"<{d['key']}@quantpipe>" and msg["Idempotency-Key"] == d["key"]
    body = msg.get_content()
    assert "momentum_v2 was demoted" in body and "What to do:" in body
    assert dataclasses.is_dataclass(settings)
