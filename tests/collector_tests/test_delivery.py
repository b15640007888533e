"""Grouped delivery against a real store: a whole group lands in one transaction with a few
statements (every sample in one COPY and one call), re-delivery stores nothing, a group the
store refuses part of goes again batch by batch, and a lost store still spools.

Delivery connects as a role that is only a member of pganalytics_collector (what production
uses); its statements are counted by pg_stat_statements (track = top) on the store."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from pganalytics.collector import pgss
from pganalytics.collector.batch import QueryStatsBatch, RowsBatch, SamplesBatch
from pganalytics.collector.delivery import Delivery
from pganalytics.collector.sink import Sink
from pganalytics.collector.spool import Spool

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=timezone.utc)
INSTANCES = ("d1", "d2", "d3")


@pytest.fixture
def collector_dsn(store_dsn):
    """The store DSN, run as a fresh member of pganalytics_collector whose top-level
    statements pg_stat_statements counts."""
    role = f"pga_coll_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(store_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} NOLOGIN IN ROLE pganalytics_collector")
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        for name in INSTANCES:
            conn.execute("SELECT pganalytics.register_instance(%s, %s)", (name, f"service={name}"))
    yield psycopg.conninfo.make_conninfo(
        store_dsn, options=f"-c role={role} -c pg_stat_statements.track=top")
    with psycopg.connect(store_dsn, autocommit=True) as conn:  # its sessions hold temp tables
        conn.execute("SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity "
                     "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        conn.execute(f"DROP OWNED BY {role}")
        conn.execute(f"DROP ROLE {role}")


def statements(store_dsn: str, collector_dsn: str, like: str = "%") -> int:
    """Top-level statements (whose text is LIKE `like`) the collector role has run in the
    store database so far."""
    role = str(psycopg.conninfo.conninfo_to_dict(collector_dsn)["options"]).split()[1].split("=")[1]
    with psycopg.connect(store_dsn) as conn:
        return conn.execute(
            "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements "
            "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND userid = %s::regrole AND query LIKE %s", (role, like)).fetchone()[0]


def samples_batch(instance, source, at, n, value=1.0, databases=()):
    """n samples of n series (labels tell them apart), optionally listing databases."""
    return SamplesBatch(instance, source, at,
                        [(f"{source}_value", {"k": str(i)}, "gauge", value + i) for i in range(n)],
                        list(databases))


def query_stats_batch(instance, at, entries=3, calls=10):
    rows = []
    for q in range(entries):
        values = {name: r"\N" for name in pgss.COLUMNS}
        values.update(dbid="1", userid="10", queryid=str(1000 + q), toplevel="t", calls=str(calls),
                      total_exec_time=str(calls * 2.0), mean_exec_time="2.0", stddev_exec_time="0")
        for name in pgss.COLUMNS:
            if values[name] == r"\N" and name != "stats_since":
                values[name] = "0"
        rows.append("\t".join(values[name] for name in pgss.COLUMNS))
    return QueryStatsBatch(instance, at, ("\n".join(rows) + "\n").encode(), entries,
                           texts=[(1000 + q, f"SELECT {q}") for q in range(entries)])


def cycle(instance, at, k=0):
    """What one cycle of one target puts on the queue (a small but complete one)."""
    return [
        samples_batch(instance, "availability", at, 1),
        samples_batch(instance, "pg_stat_database", at, 6, databases=[(5, "postgres"), (16384 + k, f"app{k}")]),
        samples_batch(instance, "host", at, 4),
        query_stats_batch(instance, at),
        RowsBatch(instance, "wait_samples", at, [{"datname": "app", "queryid": 7, "backend_type": "client backend",
                                                  "state": "active", "wait_event_type": "Lock",
                                                  "wait_event": "relation", "samples": 3, "ticks": 10,
                                                  "interval_s": 10.0}]),
    ]


def group(at=T0):
    return [b for k, name in enumerate(INSTANCES) for b in cycle(name, at, k)]


def ledger(store_dsn) -> dict:
    """Snapshots stored per (instance, source): (snapshots, rows). Query statistics and row
    batches are in the snapshots ledger; sample frames are their own (a frame here is of the
    source its series' metric names: samples_batch() calls them SOURCE_value)."""
    with psycopg.connect(store_dsn) as conn:
        return {(name, source): (n, rows) for name, source, n, rows in conn.execute(
            "SELECT i.name, s.source, count(*), sum(s.row_count) FROM pganalytics.snapshots s "
            "JOIN pganalytics.instances i USING (instance_id) GROUP BY 1, 2 "
            "UNION ALL "
            "SELECT i.name, left(r.metric, -length('_value')), count(*), sum(cardinality(l.series_ids)) "
            "FROM pganalytics.sample_frames f "
            "JOIN pganalytics.sample_layouts l USING (instance_id, layout_id) "
            "JOIN pganalytics.series r ON r.instance_id = f.instance_id AND r.series_id = l.series_ids[1] "
            "JOIN pganalytics.instances i ON i.instance_id = f.instance_id GROUP BY 1, 2")}


def stored_samples(store_dsn) -> dict:
    """Samples per (instance, metric), each checked to name an existing series of its instance."""
    with psycopg.connect(store_dsn) as conn:
        orphans = conn.execute("SELECT count(*) FROM pganalytics.samples x WHERE NOT EXISTS "
                               "(SELECT FROM pganalytics.series s WHERE (s.instance_id, s.series_id) = "
                               "(x.instance_id, x.series_id))").fetchone()[0]
        assert orphans == 0
        return dict(((name, metric), n) for name, metric, n in conn.execute(
            "SELECT i.name, s.metric, count(*) FROM pganalytics.samples x "
            "JOIN pganalytics.series s USING (instance_id, series_id) "
            "JOIN pganalytics.instances i USING (instance_id) GROUP BY 1, 2"))


def expected_samples(batches) -> dict:
    out: dict = {}
    for b in batches:
        if isinstance(b, SamplesBatch):
            key = (b.instance, f"{b.source}_value")
            out[key] = out.get(key, 0) + len(b.samples)
    return out


def test_without_pipeline_mode_a_group_lands_the_same(store_dsn, collector_dsn, tmp_path, monkeypatch):
    """libpq < 14 (no pipeline mode): the group's calls go one by one, with the same result."""
    monkeypatch.setattr(psycopg.Pipeline, "is_supported", classmethod(lambda cls: False))

    def no_pipeline(self):
        raise AssertionError("pipeline mode used although libpq lacks it")
    monkeypatch.setattr(psycopg.Connection, "pipeline", no_pipeline)
    batches = group()
    delivery = Delivery(collector_dsn, Spool(tmp_path))
    assert delivery._deliver(batches) and delivery.refused_groups == 0
    assert stored_samples(store_dsn) == expected_samples(batches)
    with psycopg.connect(store_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM pganalytics.query_stats").fetchone()[0] == 9
        assert conn.execute("SELECT count(*) FROM pganalytics.snapshots").fetchone()[0] == 6  # query_stats, wait_samples
        assert conn.execute("SELECT count(*) FROM pganalytics.sample_frames").fetchone()[0] == 9


def test_a_group_of_many_instances_and_sources_lands_in_a_few_statements(store_dsn, collector_dsn, tmp_path):
    batches = group()
    delivery = Delivery(collector_dsn, Spool(tmp_path))
    before = statements(store_dsn, collector_dsn)
    assert delivery._deliver(batches)
    fast = statements(store_dsn, collector_dsn) - before
    assert delivery.refused_groups == 0 and delivery.delivered == len(batches) == 15
    assert not list(tmp_path.glob("rejected/*"))
    assert stored_samples(store_dsn) == expected_samples(batches)
    expected_ledger = {(name, source): (1, rows) for name in INSTANCES
                       for source, rows in (("availability", 1), ("pg_stat_database", 6), ("host", 4),
                                            ("query_stats", 3), ("wait_samples", 1))}
    assert ledger(store_dsn) == expected_ledger
    with psycopg.connect(store_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM pganalytics.query_stats").fetchone()[0] == 9
        assert conn.execute("SELECT count(*) FROM pganalytics.databases").fetchone()[0] == 6
        seen = [r[0] for r in conn.execute("SELECT last_seen_at FROM pganalytics.instance_seen")]
    assert seen == [T0] * len(INSTANCES)
    # purge_staging() on connecting; BEGIN, instance ids, known series of these instances (none
    # yet), series ids, the layouts of the group's new series sets (one call), COPY of every
    # frame, COPY of every query_stats snapshot, COMMIT; then
    # one pipeline (a single round trip) of ingest_samples and one call per query_stats (texts
    # included) and per wait_samples batch. No savepoints, and the round trips do not grow
    # with the group.
    assert fast == 1 + 8 + 1 + 3 + 3

    # The fallback path (a bisection of the group, each half a group in a savepoint) on a
    # group with nothing to refuse: two half-groups, not one delivery per batch.
    slow = Delivery(collector_dsn, Spool(tmp_path / "slow"))
    slow.fast_path = False
    before = statements(store_dsn, collector_dsn)
    later = group(T0 + timedelta(minutes=1))
    assert slow._deliver(later)
    fallback = statements(store_dsn, collector_dsn) - before
    assert fallback <= 2 * fast + 4 < len(later) * 3
    assert stored_samples(store_dsn) == {k: 2 * v for k, v in expected_samples(batches).items()}


def test_delivering_the_same_group_twice_stores_nothing_the_second_time(store_dsn, collector_dsn, tmp_path):
    batches = group()
    delivery = Delivery(collector_dsn, Spool(tmp_path))
    assert delivery._deliver(batches)
    first_samples, first_ledger = stored_samples(store_dsn), ledger(store_dsn)
    assert delivery._deliver(group())
    assert stored_samples(store_dsn) == first_samples == expected_samples(batches)
    assert ledger(store_dsn) == first_ledger
    assert delivery.refused_groups == 0 and not list(tmp_path.glob("rejected/*"))
    with psycopg.connect(collector_dsn, autocommit=True) as conn:
        assert Sink(conn).deliver_group(group()) == 0  # nothing stored, by the function's count


def test_the_same_snapshot_twice_in_one_group_is_stored_once(store_dsn, collector_dsn):
    first = samples_batch("d1", "host", T0, 4, value=1.0, databases=[(16384, "first")])
    again = samples_batch("d1", "host", T0, 4, value=100.0, databases=[(16384, "again")])
    other = samples_batch("d1", "host", T0 + timedelta(seconds=10), 2, databases=[(16384, "renamed")])
    with psycopg.connect(collector_dsn, autocommit=True) as conn:
        assert Sink(conn).deliver_group([first, again, other]) == 6
    with psycopg.connect(store_dsn) as conn:
        values = [r[0] for r in conn.execute(
            "SELECT value FROM pganalytics.samples WHERE ts = %s ORDER BY value", (T0,))]
        assert conn.execute("SELECT datname FROM pganalytics.databases").fetchall() == [("renamed",)]
    assert values == [1.0, 2.0, 3.0, 4.0]  # the first copy, once
    assert ledger(store_dsn) == {("d1", "host"): (2, 6)}


@pytest.mark.parametrize("bad", [
    RowsBatch("d2", "Bad Source", T0, [{"setting": "x"}]),
    SamplesBatch("not-registered", "host", T0, [("x_value", {}, "gauge", 1.0)]),
    RowsBatch("d3", "settings", T0, [{"setting": "no name"}]),
], ids=["bad-source", "unknown-instance", "bad-rows"])
def test_a_refused_batch_is_set_aside_and_the_rest_of_the_group_lands(store_dsn, collector_dsn, tmp_path, bad):
    batches = group()
    batches.insert(7, bad)
    delivery = Delivery(collector_dsn, Spool(tmp_path))
    assert delivery._deliver(batches)
    assert delivery.refused_groups == 1 and delivery.delivered == len(batches)
    rejected = sorted(tmp_path.glob("rejected/*.reason"))
    assert len(rejected) == 1
    assert ("bad source name" in rejected[0].read_text() if bad.source == "Bad Source" else
            "not registered" in rejected[0].read_text() if bad.instance == "not-registered" else
            "needs a \"name\"" in rejected[0].read_text())
    # Every other batch landed, with series created after the rolled-back first try.
    good = [b for b in batches if b is not bad]
    assert stored_samples(store_dsn) == expected_samples(good)
    assert sum(n for n, _ in ledger(store_dsn).values()) == len(good)
    # The next group takes the fast path again, on the same connection.
    assert delivery._deliver(group(T0 + timedelta(minutes=1)))
    assert delivery.refused_groups == 1
    assert sum(n for n, _ in ledger(store_dsn).values()) == len(good) + 15


def test_a_lost_store_connection_spools_the_group_and_rejects_nothing(store_dsn, collector_dsn, tmp_path):
    spool = Spool(tmp_path)
    delivery = Delivery(collector_dsn, spool, retry_s=0)
    assert delivery._deliver(group())
    with psycopg.connect(store_dsn, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    later = group(T0 + timedelta(minutes=1))
    assert not delivery._deliver(later)  # the caller spools it
    assert delivery.delivered == 15 and delivery.refused_groups == 0
    assert not list(tmp_path.glob("rejected/*"))
    assert delivery._deliver(later)  # a new connection: series and staging learned again
    assert stored_samples(store_dsn) == {k: 2 * v for k, v in expected_samples(later).items()}


def test_a_new_store_connection_loads_the_known_series_in_one_query(store_dsn, collector_dsn, tmp_path):
    """After a collector restart or a store outage (a new connection, an empty cache), the
    series already stored are loaded at once, not looked up one by one."""
    first, later = group(T0), group(T0 + timedelta(seconds=60))
    assert Delivery(collector_dsn, Spool(tmp_path / "a"))._deliver(first)
    lookups = statements(store_dsn, collector_dsn, "%pganalytics.series_ids(%")
    loads = statements(store_dsn, collector_dsn, "%known_series%")
    restarted = Delivery(collector_dsn, Spool(tmp_path / "b"))
    assert restarted._deliver(later) and restarted.refused_groups == 0
    assert statements(store_dsn, collector_dsn, "%pganalytics.series_ids(%") == lookups  # none
    assert statements(store_dsn, collector_dsn, "%known_series%") == loads + 1
    assert stored_samples(store_dsn) == expected_samples(first + later)
    # a series the store has never seen is still created on the way
    extra = samples_batch(INSTANCES[0], "host", T0 + timedelta(seconds=120), 2, value=7.0)
    extra.samples.append(("brand_new_metric", {}, "gauge", 1.0))
    assert restarted._deliver([extra])
    assert statements(store_dsn, collector_dsn, "%pganalytics.series_ids(%") == lookups + 1
    with psycopg.connect(store_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM pganalytics.samples x JOIN pganalytics.series s "
                            "USING (instance_id, series_id) WHERE s.metric = 'brand_new_metric'"
                            ).fetchone()[0] == 1


def _run_until_failure(delivery: Delivery, batches: list) -> None:
    import time

    delivery.start()
    delivery.put(batches)
    deadline = time.monotonic() + 30
    while delivery.failure is None and time.monotonic() < deadline:
        time.sleep(0.05)
    delivery.stop()


@pytest.mark.parametrize("fault", ["our-bug", "store-not-upgraded"])
def test_a_fault_that_is_not_the_batch_stops_delivery_and_keeps_the_batches(
        store_dsn, collector_dsn, tmp_path, fault):
    """A bug of ours (rows that cannot be sent as JSON: TypeError) or a store that lacks a function
    this collector calls (42883) is not "the store refused the batch": nothing is set aside in
    rejected/ (0003 put such batches there), delivery stops with DeliveryFailed, and every
    batch is in the spool to be replayed once fixed."""
    from pganalytics.collector.delivery import DeliveryFailed

    batches = group()
    if fault == "our-bug":
        # a source that forgot to format a timestamp: the spool can keep it, JSON cannot send it
        batches.append(RowsBatch("d1", "settings", T0, [{"name": "x", "setting": T0}]))
    else:
        with psycopg.connect(store_dsn, autocommit=True) as admin:
            admin.execute("DROP FUNCTION pganalytics.ingest_wait_samples(int, timestamptz, jsonb)")
    spool = Spool(tmp_path)
    delivery = Delivery(collector_dsn, spool)
    _run_until_failure(delivery, batches)
    assert isinstance(delivery.failure, DeliveryFailed)
    assert ("TypeError" if fault == "our-bug" else "UndefinedFunction") in str(delivery.failure)
    assert not list(tmp_path.glob("rejected/*"))
    head = spool.oldest()
    assert head is not None and len(head[1]) == len(batches)
    assert stored_samples(store_dsn) == {}  # the group was rolled back whole
