"""Root-cause analysis end to end: the real collector daemon polls a target under a small
workload every second, faults are injected one after the other, and diagnose(),
analyze_query() and explain_incident() are asked about each window from what the store got.
A minute of history at a 1 s cadence is all they have, as the issue asks.

Timeline (seconds): 0-25 plain load (the control window is 8-25), 25-43 a session holding
an EXCLUSIVE lock on the counters table most of each second, 43-60 recovery, 60-78 the index
the point reads use is dropped."""
from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from pganalytics.collector import config
from pganalytics.collector.daemon import Collector

from .waiting import wait_for

POINT_READ = "SELECT count(*) FROM orders WHERE customer = %s"


@pytest.fixture
def target_dsn(databases):
    dsn = databases.create(prefix="rc_target")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY, customer int, amount numeric)")
        conn.execute("INSERT INTO orders SELECT g, g % 20000, g FROM generate_series(1, 200000) g")
        conn.execute("CREATE INDEX orders_customer ON orders (customer)")
        conn.execute("CREATE TABLE counters (id int PRIMARY KEY, n bigint)")
        conn.execute("INSERT INTO counters SELECT g, 0 FROM generate_series(1, 50) g")
        conn.execute("VACUUM ANALYZE orders, counters")
    return dsn


class Workload:
    """Threads of point reads (by an indexed column) and small updates, as an application."""

    def __init__(self, dsn: str, threads: int = 3):
        self.dsn, self.stop = dsn, threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(k,), daemon=True) for k in range(threads)]

    def _run(self, k: int) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            i = k
            while not self.stop.is_set():
                i += 1
                conn.execute(POINT_READ, (i * 7919 % 20000,))
                conn.execute("UPDATE counters SET n = n + 1 WHERE id = %s", (i % 50 + 1,))
                time.sleep(0.005)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)


def hold_lock(dsn: str, stop: threading.Event) -> None:
    with psycopg.connect(dsn) as conn:
        while not stop.is_set():
            conn.execute("LOCK TABLE counters IN EXCLUSIVE MODE")
            stop.wait(0.8)
            conn.commit()
            time.sleep(0.2)


def now() -> datetime:
    return datetime.now(timezone.utc)


def test_diagnose_names_each_injected_cause_and_none_without_one(store_dsn, target_dsn, tmp_path):
    store_db = conninfo_to_dict(store_dsn)["dbname"]
    conf = config.parse({"store": {"dsn": store_dsn},
                         "collector": {"interval_s": 1, "slow_interval_s": 2, "sample_interval_s": 1,
                                       "maintain_interval_s": 0, "workers": 2, "spool_dir": str(tmp_path / "spool"),
                                       "exclude_databases": [store_db, "postgres"]},
                         "targets": [{"name": "app", "conn": target_dsn}]})
    collector = Collector(conf)
    runner = threading.Thread(target=collector.run, daemon=True)
    runner.start()
    marks: dict[str, list[datetime]] = {}
    try:
        wait_for(lambda: collector.delivery.delivered >= 3, what="first deliveries")
        with Workload(target_dsn):
            t0 = time.monotonic()
            time.sleep(8)
            marks["control"] = [now()]
            time.sleep(17)
            marks["control"].append(now())
            stop = threading.Event()
            locker = threading.Thread(target=hold_lock, args=(target_dsn, stop))
            marks["lock"] = [now()]
            locker.start()
            time.sleep(18)
            stop.set()
            locker.join()
            marks["lock"].append(now())
            time.sleep(17)
            with psycopg.connect(target_dsn, autocommit=True) as conn:
                marks["missing_index"] = [now()]
                conn.execute("DROP INDEX orders_customer")
            time.sleep(18)
            marks["missing_index"].append(now())
            assert time.monotonic() - t0 < 120, "the timeline ran far late: results would not mean much"
        time.sleep(3)  # the last cycle delivered
    finally:
        collector.request_stop()
        runner.join(timeout=60)

    with psycopg.connect(store_dsn, autocommit=True) as conn:
        def diagnose(window):
            return conn.execute("SELECT pganalytics.diagnose('app', %s, %s)", window).fetchone()[0]

        control = diagnose(marks["control"])
        assert [c for c in control["causes"] if c["confidence"] >= 0.5] == [], control["causes"]

        lock = diagnose(marks["lock"])
        inputs = conn.execute("SELECT pganalytics.diagnosis_inputs('app', %s, %s)", marks["lock"]).fetchone()[0]
        assert lock["causes"] and lock["causes"][0]["cause"] == "lock_contention", (
            lock["causes"], inputs["waits"], inputs["ticks"], inputs["locks"])
        assert any("root blocker pid" in e for e in lock["causes"][0]["evidence"])
        assert lock["summary"].startswith("most likely lock contention")

        dropped = diagnose(marks["missing_index"])
        assert dropped["causes"] and dropped["causes"][0]["cause"] == "missing_index", dropped["causes"]
        first = dropped["causes"][0]
        assert any("orders_customer" in e for e in first["evidence"])
        [qid] = first["queryids"]
        text = conn.execute("SELECT query FROM pganalytics.query_texts WHERE queryid = %s", (qid,)).fetchone()[0]
        assert text.startswith("SELECT count(*) FROM orders WHERE customer")

        # the same statement on its own: slower, its plan now a sequential scan on orders
        one = conn.execute("SELECT pganalytics.analyze_query('app', %s, %s, %s)",
                           (qid, *marks["missing_index"])).fetchone()[0]
        stats = one["statistics"]
        assert stats["window"]["shared_blocks_per_call"] > 10 * stats["baseline"]["shared_blocks_per_call"]
        assert one["causes"][0]["cause"] == "missing_index"
        assert any(s["node"].endswith("Seq Scan") and s["relation"] == "orders" for s in one["plan"]["scans"])
        assert [t["relname"] for t in one["tables"]] == ["orders"]
        assert len({c["plan_hash"] for c in one["plan_changes"]}) >= 2  # index scan, then seq scan

        # an anomaly event over the lock window, explained
        iid = conn.execute("SELECT instance_id FROM pganalytics.instances WHERE name = 'app'").fetchone()[0]
        # 1-minute buckets, as record_anomalies() writes them: the minutes the lock spanned
        start = marks["lock"][0].replace(second=0, microsecond=0)
        end = marks["lock"][1].replace(second=0, microsecond=0) + timedelta(minutes=1)
        aid = conn.execute(
            "INSERT INTO pganalytics.anomalies (instance_id, anomaly_type, source, started_at, ended_at, last_at,"
            " last_away_at, points, peak_at, peak_value, peak_score, severity, description)"
            " VALUES (%s, 'lock_contention_increase', 'live', %s, %s, %s, %s, 1, %s, 3, 0.9, 0.9, 'lock waits rose')"
            " RETURNING anomaly_id", (iid, start, end, start, start, start)
        ).fetchone()[0]
        told = conn.execute("SELECT pganalytics.explain_incident(%s)", (aid,)).fetchone()[0]
        assert told["anomaly"]["type"] == "lock_contention_increase"
        assert "lock_contention" in [c["cause"] for c in told["causes"]], (told["window"], told["causes"])
        assert told["contributors"] and all("queryid" in c for c in told["contributors"])


def test_bad_arguments_say_what_was_wrong(store_conn):
    store_conn.execute("SELECT pganalytics.register_instance('known', 'host=127.0.0.1 dbname=app')")
    cases = [
        ("SELECT pganalytics.diagnose('nope', now() - interval '1 minute', now())", "unknown instance"),
        ("SELECT pganalytics.diagnose('known', now(), now() - interval '1 minute')", "must end after it starts"),
        ("SELECT pganalytics.diagnose('known', now() - interval '40 days', now())", "at most 31 days"),
        ("SELECT pganalytics.diagnose('known', NULL, now())", "must not be null"),
        ("SELECT pganalytics.diagnose('known', now() - interval '1 minute', now(), '[]')", "options must be a JSON object"),
        ("SELECT pganalytics.diagnose('known', now() - interval '1 minute', now(), '{\"min_confidence\": 2}')",
         "min_confidence must be from 0 to 1"),
        ("SELECT pganalytics.analyze_query('known', NULL, now() - interval '1 minute', now())", "queryid must not be null"),
        ("SELECT pganalytics.analyze_query('known', 42, now() - interval '1 minute', now())", "has no statistics"),
        ("SELECT pganalytics.explain_incident(123456789)", "no anomaly 123456789"),
    ]
    for sql, message in cases:
        with pytest.raises(psycopg.Error, match=message):
            store_conn.execute(sql)


def test_an_instance_without_data_gets_no_cause(store_conn):
    store_conn.execute("SELECT pganalytics.register_instance('quiet', 'host=127.0.0.1 dbname=app')")
    out = store_conn.execute("SELECT pganalytics.diagnose('quiet', now() - interval '5 minutes', now())").fetchone()[0]
    assert out["causes"] == []
    assert "no cause found" in out["summary"]
