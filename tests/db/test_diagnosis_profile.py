"""diagnosis_inputs() hands the rules the newest trained anomaly model's hour-of-week profiles
of what they compare, and diagnose() moves its baseline by them (and says so)."""
from __future__ import annotations

import struct

import psycopg
import pytest

from pganalytics.plpython import root_cause

from .stage import at, entry, ingest, register


def slot(ts) -> int:
    return int((ts.timestamp() + root_cause.WEEK_SHIFT_S) // 3600) % 168


def add_model(conn, iid, version, keys, rows):
    """A model row as train_anomaly_model() stores one: keys x 168 big-endian float8s."""
    profile = b"".join(struct.pack(">168d", *r) for r in rows)
    zeros = struct.pack(f">{len(keys)}d", *([0.0] * len(keys)))
    conn.execute("INSERT INTO pganalytics.anomaly_models (instance_id, version, data_from, data_to, keys, week_profile,"
                 " thresholds, weights, warm_state, detectors, summary, digest)"
                 " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, '{z}', '{}', %s)",
                 (iid, version, at(0), at(60), keys, profile, zeros, zeros, zeros, f"d{version}"))


@pytest.fixture
def staged(store_conn):
    iid = register(store_conn, "profiled")
    for m in range(0, 67):  # a statement, a snapshot a minute from 10:00 to 11:06
        ingest(store_conn, iid, at(600 + m), [entry(7, 10 * (m + 1), 5.0 * (m + 1), query="SELECT * FROM t WHERE k = $1")])
    return iid


def test_the_newest_models_profiles_of_what_the_rules_compare(store_conn, staged):
    w_from, w_to = at(660), at(665)  # 11:00-11:05, its baseline 10:55-11:00
    nan = float("nan")

    def row(before, during):
        r = [nan] * 168
        r[slot(at(655))], r[slot(w_from)] = before, during
        return r

    add_model(store_conn, staged, 1, ["high_cpu_usage/"], [row(0.0, 0.9)])
    add_model(store_conn, staged, 2, ["cache_hit_rate_drop/datname:app", "execution_time_spike/queryid:7",
                                      "execution_time_spike/queryid:99", "high_cpu_usage/"],
              [row(0.0, 0.5), row(1.0, 3.0), row(0.0, 9.0), row(0.1, 0.3)])
    doc = store_conn.execute("SELECT pganalytics.diagnosis_inputs('profiled', %s, %s)", (w_from, w_to)).fetchone()[0]
    assert doc["profile"]["version"] == 2
    # only what the rules compare: the instance's CPU, and statements among the window's top ones
    assert sorted(doc["profile"]["rows"]) == ["execution_time_spike/queryid:7", "high_cpu_usage/"]
    out = store_conn.execute("SELECT pganalytics.diagnose('profiled', %s, %s)", (w_from, w_to)).fetchone()[0]
    base = out["window"]["baseline"]
    assert base["kind"] == "learnt profile + time before" and base["model_version"] == 2
    assert base["expected_change"] == {"execution_time_spike/queryid:7": pytest.approx(2.0),
                                       "high_cpu_usage/": pytest.approx(0.2)}


def test_without_a_model_the_baseline_is_the_time_before(store_conn, staged):
    doc = store_conn.execute("SELECT pganalytics.diagnosis_inputs('profiled', %s, %s)", (at(660), at(665))).fetchone()[0]
    assert doc["profile"] is None
    out = store_conn.execute("SELECT pganalytics.diagnose('profiled', %s, %s)", (at(660), at(665))).fetchone()[0]
    assert out["window"]["baseline"] == {"kind": "time before", "model_version": None, "expected_change": {}}


def test_a_malformed_profile_row_is_refused_clearly(store_conn):
    doc = '{"from": "2026-11-01T10:00:00Z", "to": "2026-11-01T10:01:00Z", "baseline_from": "2026-11-01T09:59:00Z",' \
          ' "profile": {"version": 1, "rows": {"high_cpu_usage/": "AAAA"}}}'
    with pytest.raises(psycopg.Error, match="profile row 'high_cpu_usage/' must be 168 big-endian float8s"):
        store_conn.execute("SELECT pganalytics.root_cause_rules(%s::jsonb)", (doc,))
