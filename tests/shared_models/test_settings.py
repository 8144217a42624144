from pathlib import Path

import pytest

from shared_models.settings import Settings, SettingsError, declared_variables


def test_defaults_match_the_seed():
    s = Settings.from_env({})
    assert (s.shadow.min_trades, s.shadow.mdd_tolerance, s.shadow.alpha) == (500, 1.20, 0.05)
    assert (s.shadow.n_bootstrap, s.shadow.check_interval, s.shadow.enabled) == (10_000, 100, True)
    assert s.database_url is None and s.redis_url is None and s.embedded
    assert s.home == Path(".quantpipe")


def test_values_are_parsed_and_typed():
    s = Settings.from_env({"SHADOW_ALPHA": "0.01", "ENABLE_SHADOW_MODELS": "false", "SHADOW_MIN_TRADES": "200",
                           "DATABASE_URL": "postgresql://u@h/db", "REDIS_URL": "redis://h:6379/1"})
    assert s.shadow.alpha == 0.01 and s.shadow.enabled is False and s.shadow.min_trades == 200
    assert not s.embedded


@pytest.mark.parametrize("env,name", [
    ({"SHADOW_MIN_TRADES": "lots"}, "SHADOW_MIN_TRADES"),
    ({"SHADOW_ALPHA": "1.5"}, "SHADOW_ALPHA"),
    ({"ENABLE_SHADOW_MODELS": "maybe"}, "ENABLE_SHADOW_MODELS"),
    ({"SHADOW_ALHPA": "0.01"}, "SHADOW_ALHPA"),
    ({"QUANTPIPE_HOMEDIR": "/x"}, "QUANTPIPE_HOMEDIR"),
    ({"DATABASE_URL": "sqlite:///x.db"}, "DATABASE_URL"),
    ({"REDIS_URL": "amqp://guest@localhost"}, "REDIS_URL"),
    ({"QUANTPIPE_VISIBILITY_TIMEOUT": "10"}, "QUANTPIPE_VISIBILITY_TIMEOUT"),
])
def test_bad_values_fail_naming_the_variable(env, name):
    with pytest.raises(SettingsError, match=name):
        Settings.from_env(env)


def test_every_variable_is_documented():
    names = [n for n, *_ in declared_variables()]
    assert len(names) == len(set(names))
    assert all(help_ for _, _, help_, _ in declared_variables())


@pytest.mark.parametrize("env,missing", [
    ({}, "DATABASE_URL and REDIS_URL"),
    ({"DATABASE_URL": "postgresql://u@h/db"}, "REDIS_URL"),
    ({"REDIS_URL": "redis://h:6379/0"}, "DATABASE_URL"),
])
def test_embedded_off_requires_the_urls(env, missing):
    with pytest.raises(SettingsError, match=f"^{missing} must be set: QUANTPIPE_EMBEDDED=false$"):
        Settings.from_env({**env, "QUANTPIPE_EMBEDDED": "false"})
    assert Settings.from_env(env).embedded_allowed  # on by default: a laptop needs nothing


def test_embedded_off_with_both_urls_is_fine():
    s = Settings.from_env({"QUANTPIPE_EMBEDDED": "off", "DATABASE_URL": "postgresql://u@h/db",
                           "REDIS_URL": "redis://h:6379/0"})
    assert not s.embedded_allowed and not s.embedded
