"""Read side for the main app, least-privilege roles, and the discovery migration's round trip."""

import uuid

import pytest
import sqlalchemy.exc
from sqlalchemy import inspect, text
from sqlalchemy.orm import Session

from shared_models import discoveries, migrate
from shared_models.models.discovery import AnomalyDetection, PatternDiscovery, Politician, politician_uuid

DISCOVERY_TABLES = {"politicians", "trades", "pattern_discoveries", "anomaly_detections", "network_discoveries",
                    "model_experiments"}


@pytest.fixture()
def person(engine):
    """A politician with two patterns and two anomalies; removed afterwards."""
    with Session(engine) as s, s.begin():
        p = Politician(key=f"test:{uuid.uuid4().hex[:8]}", full_name="Test Readside Person", chamber="house",
                       aliases=["Hon. Test Readside Person"])
        s.add(p)
        s.flush()
        common = dict(parameters={}, evidence={}, description="d", confidence=0.9)
        s.add_all([PatternDiscovery(politician_id=p.id, pattern_type="fourier_cycle", subject="a", strength=0.9,
                                    **common),
                   PatternDiscovery(politician_id=p.id, pattern_type="habitual_timing", subject="b", strength=0.2,
                                    **common),
                   AnomalyDetection(politician_id=p.id, anomaly_type="late_disclosure", subject="x", severity=0.95,
                                    **common),
                   AnomalyDetection(politician_id=p.id, kind="unusual_size", subject="y", severity=0.3,
                                    **common)])  # the first release's name still works (synonym)
        pid = p.id
    yield pid
    with Session(engine) as s, s.begin():
        s.execute(text("DELETE FROM politicians WHERE id = :p"), {"p": pid})


def test_recent_critical_politician_and_mark_investigated(engine, person):
    with Session(engine) as s:
        recent = [r for r in discoveries.recent_discoveries(s, 0.5, limit=500) if r["politician_id"] == person]
        assert [r["pattern_type"] for r in recent] == ["fourier_cycle"]
        assert recent[0]["politician_name"] == "Test Readside Person"
        crit = [a for a in discoveries.critical_anomalies(s, 0.8, limit=500) if a["politician_id"] == person]
        assert [a["anomaly_type"] for a in crit] == ["late_disclosure"]
        assert [d["strength"] for d in discoveries.politician_discoveries(s, str(person))] == [0.9, 0.2]
        everything = discoveries.politician_detail(s, person)
        assert len(everything["patterns"]) == 2 and len(everything["anomalies"]) == 2
        assert everything["politician"]["full_name"] == "Test Readside Person"
        assert [p.id for p in discoveries.find_politicians(s, "readside person")] == [person]
        assert [p["id"] for p in discoveries.search_politicians(s, "READSIDE")] == [person]
        assert discoveries.get_anomaly(s, crit[0]["id"])["politician_name"] == "Test Readside Person"
    with Session(engine) as s, s.begin():
        assert discoveries.mark_investigated(s, crit[0]["id"])
        assert not discoveries.mark_investigated(s, -1)
    with Session(engine) as s:
        assert not [a for a in discoveries.critical_anomalies(s, 0.8, limit=500) if a["politician_id"] == person]
        assert discoveries.get_anomaly(s, crit[0]["id"])["investigated"] is True


def test_politician_ids_are_uuid5_of_the_natural_key(engine, person):
    with Session(engine) as s:
        key = s.get(Politician, person).key
    assert person == politician_uuid(key) and person.version == 5


def test_bad_arguments_name_the_parameter(session, person):
    for call, field in ((lambda: discoveries.recent_discoveries(session, limit=0), "limit"),
                        (lambda: discoveries.recent_discoveries(session, limit=501), "limit"),
                        (lambda: discoveries.critical_anomalies(session, offset=-1), "offset"),
                        (lambda: discoveries.critical_anomalies(session, float("nan")), "severity_threshold"),
                        (lambda: discoveries.experiments(session, limit=True), "limit"),
                        (lambda: discoveries.politician_discoveries(session, "42"), "politician_id"),
                        (lambda: discoveries.search_politicians(session, "x" * 201), "search")):
        with pytest.raises(ValueError, match=f"^{field}: "):
            call()
    with pytest.raises(LookupError, match="^politician_id: no politician"):
        discoveries.politician_detail(session, uuid.uuid4())
    with pytest.raises(LookupError, match="^politician_id: no politician"):
        discoveries.politician_discoveries(session, uuid.uuid4())
    assert discoveries.get_anomaly(session, -1) is None


def test_search_treats_like_wildcards_literally(session, person):
    assert discoveries.search_politicians(session, "%") == []
    assert discoveries.search_politicians(session, "Test_Readside") == []
    assert [p["id"] for p in discoveries.search_politicians(session, "Test Readside")] == [person]


def test_pages_do_not_overlap(session, person):
    """Total order: page after page, every row exactly once."""
    rows = discoveries.critical_anomalies(session, 0.0, limit=40)
    paged = [a for off in range(0, 42, 7) for a in discoveries.critical_anomalies(session, 0.0, limit=7, offset=off)]
    assert [a["id"] for a in paged][:len(rows)] == [a["id"] for a in rows] and rows


def _as_role(engine, role: str, sql: str, params: dict | None = None) -> None:
    with engine.connect() as conn:
        trans = conn.begin()
        try:
            conn.execute(text(f"SET LOCAL ROLE {role}"))
            conn.execute(text(sql), params or {})
        finally:
            trans.rollback()


def test_discovery_role_cannot_write_trades_but_can_write_findings(engine, person):
    with pytest.raises(sqlalchemy.exc.ProgrammingError, match="permission denied"):
        _as_role(engine, "quantpipe_discovery",
                 "INSERT INTO trades (politician_id, source, row_hash, transaction_date, type) "
                 "VALUES (:p, 'x', 'x', '2020-01-01', 'purchase')", {"p": person})
    with pytest.raises(sqlalchemy.exc.ProgrammingError, match="permission denied"):
        _as_role(engine, "quantpipe_discovery", "UPDATE politicians SET full_name = 'x'")
    _as_role(engine, "quantpipe_discovery", "SELECT count(*) FROM trades JOIN market_bars ON false")
    _as_role(engine, "quantpipe_discovery", "INSERT INTO dead_letters (pool, source, field, reason, payload) "
             "VALUES ('discovery', 'test', 'politician_id', 'r', '{}')")
    # retention may delete the pool's own dead letters; row-level security hides every other pool's
    with engine.connect() as conn, conn.begin():
        conn.execute(text("INSERT INTO dead_letters (pool, source, field, reason, payload) "
                          "VALUES ('patterns', 'test', 'bar', 'r', '{}'), ('discovery', 'test', 'x', 'r', '{}')"))
        conn.execute(text("SET LOCAL ROLE quantpipe_discovery"))
        gone = conn.execute(text("DELETE FROM dead_letters WHERE source = 'test' RETURNING pool")).scalars().all()
        conn.rollback()
    assert gone == ["discovery"]
    _as_role(engine, "quantpipe_discovery",
             "INSERT INTO anomaly_detections (politician_id, anomaly_type, subject, severity, confidence, "
             "parameters, description, evidence) VALUES (:p, 'k', 's', 0.5, 0.5, '{}', 'd', '{}') "
             "ON CONFLICT (politician_id, anomaly_type, subject) DO UPDATE SET severity = EXCLUDED.severity",
             {"p": person})


def test_app_role_reads_outputs_and_updates_only_investigated(engine, person):
    _as_role(engine, "quantpipe_app", "SELECT * FROM pattern_discoveries, politicians, trades LIMIT 1")
    _as_role(engine, "quantpipe_app", "UPDATE anomaly_detections SET investigated = true WHERE politician_id = :p",
             {"p": person})
    for sql in ("UPDATE anomaly_detections SET severity = 0 WHERE politician_id = :p",
                "UPDATE trades SET ticker = 'X' WHERE politician_id = :p",
                "DELETE FROM anomaly_detections WHERE politician_id = :p"):
        with pytest.raises(sqlalchemy.exc.ProgrammingError, match="permission denied"):
            _as_role(engine, "quantpipe_app", sql, {"p": person})


def test_roles_carry_no_password_and_only_pool_roles_log_in(engine):
    """Migrations set no password (``quantpipe db logins`` does, in production); on the embedded
    server the pools' roles get LOGIN over its private socket, the main app's role never does."""
    with engine.connect() as conn:
        rows = dict(conn.execute(text("SELECT rolname, (rolcanlogin, rolpassword IS NOT NULL) FROM pg_authid "
                                      "WHERE rolname IN ('quantpipe_discovery', 'quantpipe_app')")).all())
    assert rows["quantpipe_app"] == "(f,f)" and rows["quantpipe_discovery"] in ("(f,f)", "(t,f)")


def test_discovery_migration_round_trip_with_roles_already_present(scratch_db):
    """Roles exist cluster-wide (the session database made them): upgrade must not fail on them,
    downgrade must revoke and drop the tables while the roles survive for the other database."""
    fresh, eng = scratch_db
    migrate.upgrade(fresh, "0004")
    assert DISCOVERY_TABLES <= set(inspect(eng).get_table_names())
    migrate.downgrade(fresh, "0003")
    assert not DISCOVERY_TABLES & set(inspect(eng).get_table_names())
    with eng.connect() as c:
        grants = c.execute(text("SELECT count(*) FROM information_schema.role_table_grants "
                                "WHERE grantee IN ('quantpipe_discovery', 'quantpipe_app')")).scalar()
        roles = c.execute(text("SELECT count(*) FROM pg_roles "
                               "WHERE rolname IN ('quantpipe_discovery', 'quantpipe_app')")).scalar()
    assert grants == 0 and roles == 2  # still used by the session database
    migrate.upgrade(fresh, "0004")
    assert DISCOVERY_TABLES <= set(inspect(eng).get_table_names())


def test_recent_discoveries_newest_first_or_by_strength(engine, person):
    """A scan writes its findings at once (same discovery_date): newest first then lists them by id,
    ``by="strength"`` ranks them (`quantpipe discoveries recent --by strength`)."""
    with Session(engine) as s:
        def kinds(**kw):
            return [r["pattern_type"] for r in discoveries.recent_discoveries(s, 0.1, limit=500, **kw)
                    if r["politician_id"] == person]
        assert kinds() == ["habitual_timing", "fourier_cycle"]
        assert kinds(by="strength") == ["fourier_cycle", "habitual_timing"]
        with pytest.raises(ValueError, match="by"):
            discoveries.recent_discoveries(s, 0.1, by="size")
