"""train_anomaly_model(): a versioned model fitted on stored history, used by the live path.

Instance t1's database app writes ~1 MB/s of temporary files, except a nightly report at
02:00-02:59 UTC that spills 50 MB/s: benign, every day. Without a model the third night's
report alerts (the detector's own hour-of-day profile needs three nights first); trained on the
first two days, it does not, while a spill at noon on the third day still does."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import numpy as np
import psycopg
import pytest

from pganalytics.collector.batch import SamplesBatch

from . import stage

MIN = timedelta(minutes=1)
# Three whole days ending at the last midnight (UTC): inside retention, with two whole nights
# before the third.
DAY0 = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=3)
NOON_SPILL = DAY0 + timedelta(days=2, hours=12)


def temp_rate(t: datetime, i: int) -> float:
    base = 1e6 * (1 + float(np.random.default_rng([9, i]).uniform(-0.1, 0.1)))
    if t.hour == 2 or NOON_SPILL <= t < NOON_SPILL + 10 * MIN:
        return base + 5e7
    return base


def batches(first: int, last: int, state: dict) -> list[SamplesBatch]:
    out = []
    for i in range(first, last):
        t = DAY0 + i * MIN
        state["temp"] += 60 * temp_rate(t, i)
        state["hit"] += 59_400
        state["read"] += 600
        labels = {"datname": "app"}
        out.append(SamplesBatch("t1", "pg_stat_database", t + timedelta(seconds=30), [
            ("pg_database_temp_bytes", labels, "counter", state["temp"]),
            ("pg_database_blks_hit", labels, "counter", state["hit"]),
            ("pg_database_blks_read", labels, "counter", state["read"])], databases=[(16384, "app")]))
    return out


@pytest.fixture(scope="module")
def two_days(server_dsn, store_template):
    """A store holding t1's first two days, rolled up and scored live (a template)."""
    name = f"pga_model_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{store_template}"')
    params = psycopg.conninfo.conninfo_to_dict(server_dsn)
    params["dbname"] = name
    dsn = psycopg.conninfo.make_conninfo("", **params)
    state = {"temp": 0.0, "hit": 1e6, "read": 1e4}
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("UPDATE pganalytics.store_settings SET value = '7 days' WHERE name = 'retention.raw'")
        conn.execute("UPDATE pganalytics.store_settings SET value = '3 days' WHERE name = 'rollup.max_catchup'")
        stage.register(conn, "t1")
        stage.deliver_samples(dsn, batches(0, 2 * 1440 + 2, state))  # two days and the minutes that settle them
        stage.maintain(conn)
    yield name, dict(state)
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def store(databases, two_days):
    name, state = two_days
    dsn = databases.create(template=name, prefix="model")
    with psycopg.connect(dsn, autocommit=True) as conn:
        yield conn, dsn, dict(state)


def third_day(conn, dsn, state) -> list[dict]:
    """Deliver and roll up the third day; the live path's temp_spill events."""
    stage.deliver_samples(dsn, batches(2 * 1440 + 2, 3 * 1440, state))
    stage.maintain(conn)
    cur = conn.execute("SELECT started_at, ended_at, severity FROM pganalytics.anomalies "
                       "WHERE anomaly_type = 'temp_spill' AND source = 'live' AND started_at >= %s "
                       "ORDER BY started_at", (DAY0 + timedelta(days=2),))
    return [dict(zip([d.name for d in cur.description], r)) for r in cur.fetchall()]


def train(conn, history="2 days", options="{}"):
    return conn.execute("SELECT pganalytics.train_anomaly_model('t1', %s::interval, %s::jsonb)",
                        (history, options)).fetchone()[0]


def test_untrained_the_third_nightly_report_alerts(store):
    conn, dsn, state = store
    found = third_day(conn, dsn, state)
    night = DAY0 + timedelta(days=2, hours=2)
    # (the likelihoods smooth over ~10 minutes: a step the range detector cannot see, as
    # earlier nights reached it, is flagged a few minutes in)
    assert any(night <= e["started_at"] <= night + 5 * MIN for e in found), found


def test_trained_on_two_days_the_report_stops_alerting_and_a_noon_spill_still_does(store):
    conn, dsn, state = store
    model = train(conn)
    assert model["version"] == 1 and not model["unchanged"]
    assert model["summary"]["temp_spill/datname:app"]["profile"] == "hour_of_day"
    found = third_day(conn, dsn, state)
    night = DAY0 + timedelta(days=2, hours=2)
    assert not [e for e in found if night - 2 * MIN <= e["started_at"] < night + timedelta(hours=1)], found
    assert any(NOON_SPILL <= e["started_at"] <= NOON_SPILL + 5 * MIN for e in found), found
    used = conn.execute("SELECT model_version FROM pganalytics.anomaly_state_blocks").fetchone()[0]
    assert used == 1


def test_training_twice_on_the_same_data_gives_the_same_model(store):
    conn, dsn, state = store
    first = train(conn)
    again = train(conn)
    assert again["unchanged"] and again["version"] == first["version"] == 1
    assert conn.execute("SELECT count(*) FROM pganalytics.anomaly_models").fetchone()[0] == 1
    # other options are another model; the same parameters fitted again are byte-identical
    other = train(conn, options='{"profile_alpha": 0.2}')
    assert other["version"] == 2 and not other["unchanged"]
    rows = conn.execute("SELECT week_profile, thresholds, weights FROM pganalytics.anomaly_models "
                        "ORDER BY version").fetchall()
    assert rows[0] == rows[1]  # profile_alpha is an online setting: the fit does not use it


@pytest.mark.parametrize("args, message", [
    (("nope", "2 days", "{}"), "no instance named 'nope'"),
    (("t1", "10 minutes", "{}"), "history must be between 1 hour and 400 days"),
    (("t1", "2 days", "[1]"), "options must be a JSON object"),
    (("t1", "2 days", '{"treshold": 1}'), "unknown option"),
])
def test_bad_input_is_refused(store, args, message):
    conn, _, _ = store
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=f"train_anomaly_model: .*{message}"):
        conn.execute("SELECT pganalytics.train_anomaly_model(%s, %s::interval, %s::jsonb)", args)
    assert conn.execute("SELECT count(*) FROM pganalytics.anomaly_models").fetchone()[0] == 0


def test_an_instance_without_data_is_refused(store):
    conn, _, _ = store
    stage.register(conn, "empty")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="has no rolled-up data yet"):
        conn.execute("SELECT pganalytics.train_anomaly_model('empty')")


def test_only_the_admin_may_train(store):
    conn, _, _ = store
    roles = conn.execute(
        "SELECT array_agg(r.rolname ORDER BY r.rolname) FROM pg_roles r WHERE r.rolname LIKE 'pganalytics%%' "
        "AND has_function_privilege(r.oid, 'pganalytics.train_anomaly_model(text, interval, jsonb)', 'EXECUTE')"
    ).fetchone()[0]
    assert "pganalytics_admin" in roles and "pganalytics_collector" not in roles and "pganalytics_gateway" not in roles


def test_detect_anomalies_scores_with_the_trained_model_too(store):
    """detect_anomalies() scores a period afresh; with a model it uses the fitted profile, as
    the live path does: the third night's report is no event, the noon spill is."""
    conn, dsn, state = store
    stage.deliver_samples(dsn, batches(2 * 1440 + 2, 3 * 1440, state))
    stage.maintain(conn)

    def detected():
        conn.execute("DELETE FROM pganalytics.anomalies")
        period = datetime.now(timezone.utc) - (DAY0 + timedelta(days=2))
        return [r[0] for r in conn.execute(
            "SELECT started_at FROM pganalytics.detect_anomalies('t1', ARRAY['temp_spill'], %s)", (period,))]
    night = DAY0 + timedelta(days=2, hours=2)
    untrained = detected()
    assert any(night <= t <= night + 5 * MIN for t in untrained), untrained
    conn.execute("SELECT pganalytics.train_anomaly_model('t1', '2 days')")
    trained = detected()
    assert not [t for t in trained if night - 2 * MIN <= t < night + timedelta(hours=1)], trained
    assert any(NOON_SPILL <= t <= NOON_SPILL + 5 * MIN for t in trained), trained
