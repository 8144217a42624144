"""The demo's Slack-format receiver: a promotion raised by the shadow pool's data arrives through
the real dispatcher in the real Slack format and is written where a person reads it."""

from __future__ import annotations

from sqlalchemy import text

from cli.demo.slack_sink import SUBSCRIPTION_NAME, SlackSink, readable, subscribe, unsubscribe

from .conftest import fast
from .helpers import drain, raise_


def test_a_promotion_reaches_the_demo_slack_log_readably(notify_db, notify_engine, engine, tmp_path):
    old = SlackSink(tmp_path / "old.log").start()
    subscribe(engine, old.url)  # an earlier demo run's receiver, gone since
    old.stop()
    sink = SlackSink(tmp_path / "slack.log").start()
    try:
        subscribe(engine, sink.url)
        with engine.connect() as c:
            active = c.execute(text("SELECT target, format FROM notification_subscriptions "
                                    "WHERE name = :n AND removed_at IS NULL"), {"n": SUBSCRIPTION_NAME}).all()
        assert active == [(sink.url, "slack")]  # one demo subscription: the previous run's is removed
        raise_("shadow.promotion", "event:demo")
        drain(notify_engine, fast(), engine)
    finally:
        sink.stop()
        unsubscribe(engine)
    with engine.connect() as c:
        assert not c.execute(text("SELECT count(*) FROM notification_subscriptions "
                                  "WHERE name = :n AND removed_at IS NULL"), {"n": SUBSCRIPTION_NAME}).scalar()
    [message] = sink.messages
    logged = (tmp_path / "slack.log").read_text()
    assert message in logged
    for needle in ("Promotion: momentum_v2 is the new champion", "*HIGH*", "replaced ensemble_xgb_v1",
                   "What to do:", "/dashboard/shadow", "quantpipe · shadow.promotion"):
        assert needle in message, (needle, message)
    # read as text, not as the JSON body: Slack's block keys and JSON quoting are gone
    assert not any(k in message for k in ('"blocks"', '"type"', '"mrkdwn"', '\\n')), message
    assert len(message.splitlines()) >= 3  # one line per block, as a person reads it


def test_readable_falls_back_to_text_without_blocks():
    assert readable({"text": "hello"}) == "hello"
