"""MERGE ingest of cumulative pg_stat_statements counters: deltas, resets, idempotence."""
from __future__ import annotations

import math

import psycopg
import pytest

from .stage import at, entry, ingest, register


def deltas(conn, queryid):
    return conn.execute(
        "SELECT calls, total_exec_time, after_reset, interval_s, exec_time_sq FROM pganalytics.query_stat_deltas "
        "WHERE queryid = %s ORDER BY collected_at", (queryid,)).fetchall()


def test_first_snapshot_stores_counters_without_deltas(store_conn):
    iid = register(store_conn)
    assert ingest(store_conn, iid, at(0), [entry(1, 10, 50.0), entry(2, 5, 5.0)]) == 2
    assert store_conn.execute("SELECT count(*) FROM pganalytics.query_stats").fetchone()[0] == 2
    assert store_conn.execute("SELECT count(*) FROM pganalytics.query_stat_deltas").fetchone()[0] == 0
    assert store_conn.execute(
        "SELECT query FROM pganalytics.query_texts WHERE queryid = 1").fetchone()[0] == "SELECT 1"


def test_deltas_between_snapshots(store_conn):
    iid = register(store_conn)
    ingest(store_conn, iid, at(0), [entry(1, 10, 50.0)])
    ingest(store_conn, iid, at(1), [entry(1, 30, 250.0), entry(2, 4, 8.0)])
    assert deltas(store_conn, 1)[0][:4] == (20, 200.0, False, 60.0)
    # a query first seen after a previous snapshot ran entirely within the interval
    assert deltas(store_conn, 2)[0][:3] == (4, 8.0, False)
    # unchanged entries add no delta rows
    ingest(store_conn, iid, at(2), [entry(1, 30, 250.0), entry(2, 4, 8.0)])
    assert len(deltas(store_conn, 1)) == 1


def test_interval_sum_of_squares_is_exact(store_conn):
    """Per-interval variance is recovered from cumulative mean/stddev (population)."""
    import numpy as np

    first, second = np.array([1.0, 2.0, 3.0]), np.array([10.0, 20.0])
    both = np.concatenate([first, second])
    iid = register(store_conn)
    ingest(store_conn, iid, at(0), [entry(1, 3, first.sum(), mean=first.mean(), stddev=first.std())])
    ingest(store_conn, iid, at(1), [entry(1, 5, both.sum(), mean=both.mean(), stddev=both.std())])
    calls, total, _, _, sq = deltas(store_conn, 1)[0]
    assert (calls, total) == (2, 30.0)
    assert math.isclose(sq, float((second ** 2).sum()), rel_tol=1e-9)


def test_counter_reset_gives_no_negative_delta(store_conn):
    iid = register(store_conn)
    ingest(store_conn, iid, at(0), [entry(1, 1000, 5000.0)])
    ingest(store_conn, iid, at(1), [entry(1, 7, 35.0)])  # pg_stat_statements_reset() happened
    assert deltas(store_conn, 1) == [(7, 35.0, True, 60.0, pytest.approx(7 * 25.0))]
    assert store_conn.execute("SELECT resets, calls FROM pganalytics.query_stats").fetchone() == (1, 7)
    assert store_conn.execute(
        "SELECT count(*) FROM pganalytics.query_stat_deltas WHERE calls < 0 OR total_exec_time < 0"
    ).fetchone()[0] == 0


def test_global_stats_reset_detected_even_when_counters_grew_back(store_conn):
    iid = register(store_conn)
    ingest(store_conn, iid, at(0), [entry(1, 10, 10.0)], stats_reset=at(-60))
    # reset at minute 0.5, then 50 calls: counters are higher than before, yet it was a reset
    ingest(store_conn, iid, at(1), [entry(1, 50, 60.0)], stats_reset=at(0.5))
    assert deltas(store_conn, 1)[0][:3] == (50, 60.0, True)


def test_stats_since_change_marks_eviction(store_conn):
    iid = register(store_conn)
    ingest(store_conn, iid, at(0), [entry(1, 10, 10.0, stats_since=at(-10))])
    ingest(store_conn, iid, at(1), [entry(1, 12, 12.0, stats_since=at(0.5))])
    assert deltas(store_conn, 1)[0][:3] == (12, 12.0, True)


def test_redelivery_is_idempotent(store_conn):
    iid = register(store_conn)
    ingest(store_conn, iid, at(0), [entry(1, 10, 10.0)])
    ingest(store_conn, iid, at(1), [entry(1, 20, 20.0)])
    assert ingest(store_conn, iid, at(1), [entry(1, 20, 20.0)]) == 0
    assert len(deltas(store_conn, 1)) == 1
    assert store_conn.execute("SELECT calls FROM pganalytics.query_stats").fetchone()[0] == 20


def test_late_replay_of_older_snapshot_changes_nothing(store_conn):
    iid = register(store_conn)
    ingest(store_conn, iid, at(0), [entry(1, 10, 10.0)])
    ingest(store_conn, iid, at(2), [entry(1, 30, 30.0)])
    assert ingest(store_conn, iid, at(1), [entry(1, 20, 20.0)]) == 0
    assert store_conn.execute("SELECT calls FROM pganalytics.query_stats").fetchone()[0] == 30
    assert [d[0] for d in deltas(store_conn, 1)] == [20]


def test_duplicate_keys_in_one_snapshot_are_refused_whole(store_conn):
    iid = register(store_conn)
    with pytest.raises(psycopg.errors.CardinalityViolation, match="entry twice"):
        ingest(store_conn, iid, at(0), [entry(1, 10, 10.0), entry(1, 11, 11.0)])
    assert store_conn.execute("SELECT count(*) FROM pganalytics.snapshots").fetchone()[0] == 0


def test_unknown_instance_is_a_clear_error(store_conn):
    with pytest.raises(psycopg.errors.RaiseException, match="no instance with id 999"):
        ingest(store_conn, 999, at(0), [entry(1, 1, 1.0)])


def test_password_in_conn_ref_is_refused(store_conn):
    for ref in ("host=x password=secret", "postgresql://u:secret@x/db", "postgres://x/db?password=s"):
        with pytest.raises(psycopg.errors.CheckViolation, match="no_password"):
            store_conn.execute("SELECT pganalytics.register_instance('x', %s)", (ref,))
    store_conn.execute("SELECT pganalytics.register_instance('ok', 'postgresql://u@x:5432/db')")


def test_retention_drops_only_whole_old_days(store_conn):
    store_conn.execute("SELECT pganalytics.ensure_partitions('pganalytics.sample_frames', now() - interval '10 days', now())")
    dropped = [r[0] for r in store_conn.execute("SELECT pganalytics.drop_old_partitions('7 days')")]
    assert len(dropped) == 3 and all(d.startswith("pganalytics.sample_frames_p") for d in dropped)
    remaining = store_conn.execute(
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'pganalytics.sample_frames'::regclass").fetchone()[0]
    assert remaining == 8
    with pytest.raises(psycopg.errors.RaiseException, match="keep at least 1 day"):
        store_conn.execute("SELECT pganalytics.drop_old_partitions('1 hour')")


def test_input_errors_are_clear(store_conn):
    iid = register(store_conn)
    with pytest.raises(psycopg.errors.RaiseException, match="batch number, instance and collected_at must not be null"):
        store_conn.execute("SELECT pganalytics.ingest_query_stats(NULL, %s, %s)", (iid, at(0)))
    store_conn.rollback()
    with pytest.raises(psycopg.errors.RaiseException, match="same length without nulls"):
        store_conn.execute("SELECT pganalytics.ingest_query_stats(0, %s, %s, NULL, NULL, '{1,2}', '{a}')",
                           (iid, at(0)))
    store_conn.rollback()
    # a batch_no with no staged rows is an empty snapshot: recorded, nothing merged
    assert store_conn.execute("SELECT pganalytics.ingest_query_stats(7, %s, %s)",
                              (iid, at(0))).fetchone()[0] == 0
    assert store_conn.execute("SELECT count(*) FROM pganalytics.snapshots WHERE source = 'query_stats'"
                              ).fetchone()[0] == 1


def test_rows_staged_by_another_transaction_are_not_read(store_conn, store_dsn):
    """Each ingest call reads only what its own transaction staged: another session's rows,
    staged and committed without an ingest call, are neither merged nor consumed, and
    purge_staging() removes them once that transaction is over."""
    iid = register(store_conn)
    store_conn.commit()
    with psycopg.connect(store_dsn, autocommit=True) as other:
        other.execute("INSERT INTO pganalytics.query_stats_stage (dbid, userid, queryid, toplevel, calls, "
                      "total_exec_time) VALUES (1, 10, 99, true, 5, 1.0)")
    assert ingest(store_conn, iid, at(0), [entry(1, 3, 3.0)]) == 1
    store_conn.commit()
    assert store_conn.execute("SELECT queryid FROM pganalytics.query_stats").fetchall() == [(1,)]
    assert store_conn.execute("SELECT count(*) FROM pganalytics.query_stats_stage").fetchone()[0] == 1
    assert store_conn.execute("SELECT pganalytics.purge_staging()").fetchone()[0] == 1
    assert store_conn.execute("SELECT count(*) FROM pganalytics.query_stats_stage").fetchone()[0] == 0
