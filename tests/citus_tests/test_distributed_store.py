"""The store distributed on a real Citus cluster (a coordinator and two workers, see
conftest.py): `pganalytics install --distributed` places every table as the catalog says
(reference, distributed by instance_id colocated with series, Citus local staging), again
changes nothing, and picks up tables added later; the collector's real delivery (Sink) into
the coordinator lands each instance's rows on the workers - both of them - and re-delivery
stores nothing twice, batch by batch and as one delivery group. The time to distribute and
the rows per worker are printed at the end of the run (conftest.REPORT)."""
from __future__ import annotations

import contextlib
import io
import re
import time
import uuid
from datetime import datetime, timedelta, timezone

import citus  # tests/citus.py
import psycopg
import pytest

from pganalytics import cli
from pganalytics.collector import pgss
from pganalytics.collector.batch import QueryStatsBatch, SamplesBatch
from pganalytics.collector.sink import Sink

from .conftest import REPORT

INSTANCES = [f"fleet-{i}" for i in range(8)]  # both workers get some of them (asserted)
GROUP_INSTANCES = [f"group-{i}" for i in range(8)]  # the same, for the delivery group
# Two minutes before the last UTC midnight: the cycles cross it, so deliveries create day
# partitions (DDL on distributed tables) as they go. Never more than a day ahead of the clock.
MIDNIGHT = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
T0 = MIDNIGHT - timedelta(minutes=2)
CYCLES = 4  # one a minute
SOURCES = {"availability": 1, "pg_stat_database": 6, "host": 4}  # samples per batch
QUERIES = 3  # pg_stat_statements entries per snapshot


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            cli.main(list(argv))
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def samples_batch(instance: str, source: str, at: datetime, value: float) -> SamplesBatch:
    databases = [(5, "postgres"), (16384, "app")] if source == "pg_stat_database" else []
    return SamplesBatch(instance, source, at,
                        [(f"{source}_value", {"k": str(i)}, "gauge", value + i) for i in range(SOURCES[source])],
                        databases)


def query_stats_batch(instance: str, at: datetime, calls: int) -> QueryStatsBatch:
    """A pg_stat_statements snapshot as the collector COPYs it (cumulative counters)."""
    rows = []
    for q in range(QUERIES):
        values = {name: "0" for name in pgss.COLUMNS}
        values.update(stats_since=r"\N", dbid="1", userid="10", queryid=str(1000 + q), toplevel="t",
                      calls=str(calls), total_exec_time=str(calls * 2.0), mean_exec_time="2.0")
        rows.append("\t".join(values[name] for name in pgss.COLUMNS))
    return QueryStatsBatch(instance, at, ("\n".join(rows) + "\n").encode(), QUERIES,
                           texts=[(1000 + q, f"SELECT {q}") for q in range(QUERIES)])


def fleet_cycle(at: datetime, k: int, fleet: list[str] = INSTANCES) -> list:
    return [b for name in fleet
            for b in [*(samples_batch(name, s, at, float(k)) for s in SOURCES),
                      query_stats_batch(name, at, calls=10 * (k + 1))]]


def one(conn: psycopg.Connection, query: str, params=None):
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def per_worker(conn: psycopg.Connection, table: str, expr: str = "count(*)") -> dict[str, int]:
    """expr over each node's shards of pganalytics.<table> (a partitioned table's shards hold
    their partitions' shards): node -> value, nodes without shards of it left out."""
    out: dict[str, int] = {}
    for node, ok, result in conn.execute(
            "SELECT s.nodename || ':' || s.nodeport, r.success, r.result "
            "FROM run_command_on_shards(%s, %s) r JOIN citus_shards s USING (shardid)",
            (f"pganalytics.{table}", f"SELECT coalesce({expr}, 0) FROM %s")):
        assert ok, f"counting {table} on {node}: {result}"
        out[node] = out.get(node, 0) + int(result)
    return out


def workers_of(cluster: citus.CitusCluster) -> set[str]:
    return {f"127.0.0.1:{w.port}" for w in cluster.workers}


# --- install --------------------------------------------------------------------------------

def test_refuses_without_citus(databases):
    """On a server without Citus (the suite's own), --distributed says so and installs nothing."""
    dsn = databases.create(prefix="nocitus")
    code, out, err = run_cli("install", "--distributed", "--dsn", dsn)
    assert code == 2, out + err
    assert "--distributed needs" in err and "citus" in err, err
    with psycopg.connect(dsn) as conn:
        assert one(conn, "SELECT to_regnamespace('pganalytics') IS NULL")


@pytest.fixture(scope="module")
def store(citus_cluster):
    """The store installed with --distributed on the coordinator (afresh for this module)."""
    citus.reset_store(citus_cluster)
    code, out, err = run_cli("install", "--distributed", "--dsn", citus_cluster.dsn)
    assert code == 0, f"install --distributed failed:\n{out}{err}"
    m = re.search(r"store distributed in ([0-9.]+) s: (.*)$", out, re.M)
    assert m, out
    REPORT["distribute"] = f"{m.group(1)} s ({m.group(2)})"
    return citus_cluster


def placements(conn) -> dict[str, tuple[str, str, int]]:
    return {str(name): (kind, column, colocation) for name, kind, column, colocation in conn.execute(
        "SELECT table_name::text, citus_table_type, distribution_column, colocation_id FROM citus_tables "
        "WHERE table_name::text LIKE 'pganalytics.%' AND NOT EXISTS (SELECT FROM pg_inherits i "
        "WHERE i.inhrelid = table_name)")}


def test_install_distributed_places_every_table(store):
    with psycopg.connect(store.dsn) as conn:
        tables = {name: (unlogged, has_iid) for name, unlogged, has_iid in conn.execute(
            "SELECT 'pganalytics.' || c.relname, c.relpersistence = 'u', "
            "       EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'instance_id' "
            "               AND NOT a.attisdropped) "
            "FROM pg_class c WHERE c.relnamespace = 'pganalytics'::regnamespace AND c.relkind IN ('r', 'p') "
            "AND NOT c.relispartition")}
        placed = placements(conn)
        # citus_tables lists Citus local tables only when not auto-converted; ours are not.
        local = {str(n) for (n,) in conn.execute(
            "SELECT logicalrelid::text FROM pg_dist_partition WHERE partmethod = 'n' AND repmodel = 's' "
            "AND logicalrelid::text LIKE 'pganalytics.%'")}
    anchor = placed["pganalytics.series"]
    assert anchor[:2] == ("distributed", "instance_id")
    for name, (unlogged, has_iid) in sorted(tables.items()):
        if unlogged:
            assert name in local, f"{name} (UNLOGGED staging) should be a Citus local table"
        elif has_iid and name != "pganalytics.instances":
            assert placed.get(name) == ("distributed", "instance_id", anchor[2]), \
                f"{name} should be distributed by instance_id, colocated with series: {placed.get(name)}"
        else:
            assert placed.get(name, ("?",))[0] == "reference", f"{name} should be a reference table"
    # The core of the store, by name (the rule above follows whatever the catalog holds).
    for name in ("series", "snapshots", "query_stats", "query_stat_deltas", "databases", "query_texts"):
        assert placed[f"pganalytics.{name}"][0] == "distributed"
    for name in ("instances", "meta", "api_tokens"):
        assert placed[f"pganalytics.{name}"][0] == "reference"
    assert {"pganalytics.query_stats_stage"} <= local


def test_install_distributed_again_changes_nothing(store):
    with psycopg.connect(store.dsn) as conn:
        before = placements(conn)
    code, out, err = run_cli("install", "--distributed", "--dsn", store.dsn)
    assert code == 0, out + err
    assert "store already distributed" in out, out
    with psycopg.connect(store.dsn) as conn:
        assert placements(conn) == before


def test_tables_added_later_are_placed(store):
    """A later revision's tables need no edit of distribute.py: the catalog places them."""
    with psycopg.connect(store.dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE pganalytics.zz_later_facts (instance_id int NOT NULL, x int)")
        conn.execute("CREATE TABLE pganalytics.zz_later_catalog (k text PRIMARY KEY)")
        try:
            code, out, err = run_cli("install", "--distributed", "--dsn", store.dsn)
            assert code == 0, out + err
            placed = placements(conn)
            assert placed["pganalytics.zz_later_facts"] == (
                "distributed", "instance_id", placed["pganalytics.series"][2])
            assert placed["pganalytics.zz_later_catalog"][0] == "reference"
        finally:
            conn.execute("DROP TABLE IF EXISTS pganalytics.zz_later_facts, pganalytics.zz_later_catalog")


def test_what_citus_cannot_hold_is_refused_all_at_once(store):
    """A unique key without instance_id and a foreign key between distributed tables that
    does not pair instance_id are named, each, before anything is changed."""
    with psycopg.connect(store.dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE pganalytics.zz_bad_key (instance_id int NOT NULL, k int UNIQUE)")
        conn.execute("CREATE TABLE pganalytics.zz_bad_fk (instance_id int NOT NULL, series_id int NOT NULL, "
                     "other int NOT NULL, FOREIGN KEY (other, series_id) "
                     "REFERENCES pganalytics.series (instance_id, series_id))")
        try:
            code, out, err = run_cli("install", "--distributed", "--dsn", store.dsn)
            assert code == 2, out + err
            assert "zz_bad_key's unique index zz_bad_key_k_key does not include instance_id" in err, err
            assert "zz_bad_fk_other_series_id_fkey of pganalytics.zz_bad_fk" in err, err
            assert not {"pganalytics.zz_bad_key", "pganalytics.zz_bad_fk"} & set(placements(conn))
        finally:
            conn.execute("DROP TABLE IF EXISTS pganalytics.zz_bad_key, pganalytics.zz_bad_fk")


# --- delivery -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def collector_dsn(store):
    """A login role that is only a member of pganalytics_collector (what production uses),
    with the fleet registered by an admin; Citus creates the role on the workers too."""
    role = f"pga_coll_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(store.dsn, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN IN ROLE pganalytics_collector")
        for fleet in (INSTANCES, GROUP_INSTANCES):
            ids = [one(conn, "SELECT pganalytics.register_instance(%s, %s)", (name, f"service={name}"))
                   for name in fleet]
            nodes = {one(conn, "SELECT nodename || ':' || nodeport FROM citus_shards WHERE shardid = "
                               "get_shard_id_for_distribution_column('pganalytics.series', %s)", (i,))
                     for i in ids}
            assert nodes == workers_of(store), f"instances {ids} do not span both workers: {nodes}"
    yield store.dsn.replace("user=postgres", f"user={role}")
    with psycopg.connect(store.dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))
        conn.execute(f"DROP OWNED BY {role}")
        conn.execute(f"DROP ROLE {role}")


def test_delivery_lands_on_both_workers(store, collector_dsn):
    """Sink.deliver, batch by batch as after a restart, into the coordinator: every row on a
    worker (none on the coordinator), both workers holding some, nothing delivered twice."""
    batches = [b for k in range(CYCLES) for b in fleet_cycle(T0 + timedelta(minutes=k), k)]
    with psycopg.connect(collector_dsn) as conn:
        sink = Sink(conn)
        stored = [sink.deliver(b) for b in batches]
        conn.commit()
        again = [sink.deliver(b) for b in batches]
        conn.commit()
    values = CYCLES * len(INSTANCES) * sum(SOURCES.values())
    assert sum(s for s, b in zip(stored, batches) if isinstance(b, SamplesBatch)) == values
    assert again == [0] * len(batches), "re-delivery stored something again"

    with psycopg.connect(store.dsn) as conn:
        frames = per_worker(conn, "sample_frames")
        vals = per_worker(conn, "sample_frames", "sum(octet_length(vals) / 8)")
        snapshots = per_worker(conn, "snapshots")
        query_stats = per_worker(conn, "query_stats")
        deltas = per_worker(conn, "query_stat_deltas")
        series = per_worker(conn, "series")
        total_samples = one(conn, "SELECT count(*) FROM pganalytics.samples")
    REPORT["rows per worker (batch by batch)"] = "; ".join(
        f"{node}: {series.get(node, 0)} series, {frames.get(node, 0)} frames = {vals.get(node, 0)} samples, "
        f"{snapshots.get(node, 0)} snapshots, {query_stats.get(node, 0)} query_stats, "
        f"{deltas.get(node, 0)} query_stat_deltas" for node in sorted(workers_of(store)))
    for counts in (frames, vals, snapshots, query_stats, deltas, series):
        assert set(counts) == workers_of(store), counts  # shards on the workers only
        assert all(n > 0 for n in counts.values()), counts  # and both hold some
    assert sum(frames.values()) == CYCLES * len(INSTANCES) * len(SOURCES)
    assert sum(vals.values()) == total_samples == values
    assert sum(snapshots.values()) == CYCLES * len(INSTANCES)  # query_stats: sample frames are their own ledger
    assert sum(query_stats.values()) == len(INSTANCES) * QUERIES
    assert sum(deltas.values()) == (CYCLES - 1) * len(INSTANCES) * QUERIES
    assert sum(series.values()) == len(INSTANCES) * sum(SOURCES.values())


def test_group_delivery_lands_on_both_workers(store, collector_dsn):
    """What the collector daemon does (Delivery -> Sink.deliver_group): a whole fleet cycle
    in one transaction, on a day that has no partitions yet, then the same group again."""
    at = T0 - timedelta(days=1)
    group = fleet_cycle(at, 0, GROUP_INSTANCES)
    with psycopg.connect(store.dsn) as conn:
        before = per_worker(conn, "sample_frames")
    with psycopg.connect(collector_dsn) as conn:
        sink = Sink(conn)
        with sink.transaction():
            stored = sink.deliver_group(group)
        with sink.transaction():
            again = sink.deliver_group(group)
    assert stored == len(GROUP_INSTANCES) * (sum(SOURCES.values()) + QUERIES)
    assert again == 0
    with psycopg.connect(store.dsn) as conn:
        after = per_worker(conn, "sample_frames")
    added = {node: after.get(node, 0) - before.get(node, 0) for node in workers_of(store)}
    REPORT["frames per worker (one delivery group)"] = ", ".join(f"{n}: {c}" for n, c in sorted(added.items()))
    assert all(c > 0 for c in added.values()), added
    assert sum(added.values()) == len(GROUP_INSTANCES) * len(SOURCES)


# --- maintain() and read_series() -------------------------------------------------------------

NOW_INSTANCES = [f"recent-{i}" for i in range(6)]
RECENT_MINUTES = 12  # delivered minutes, two snapshots each (every 30 s)
# Whole minutes, an hour or two before the clock: inside every retention, rolled up at once.
RECENT_T0 = (datetime.now(timezone.utc) - timedelta(hours=1, minutes=30)).replace(second=0, microsecond=0)


def recent_value(i: int, m: int, half: int, k: int, source: str) -> float:
    return 1000.0 * i + 10.0 * m + 3.0 * half + k + (0.5 if source == "host" else 0.0)


def test_maintain_and_read_series_on_workers(store, collector_dsn):
    """Deliveries near now() for instances on both workers, then maintain() on the
    coordinator: rollups_1m and series_state_blocks on both workers, equal to plain sums of what was
    delivered; read_series() at '1m' and 'raw' returns those values."""
    with psycopg.connect(store.dsn, autocommit=True) as conn:
        ids = {name: one(conn, "SELECT pganalytics.register_instance(%s, %s)", (name, f"service={name}"))
               for name in NOW_INSTANCES}
    gauges = ("availability", "host")  # pg_stat_database's are gauges too, but 6 a batch is enough
    batches = []
    for m in range(RECENT_MINUTES):
        for half in (0, 1):
            at = RECENT_T0 + timedelta(minutes=m, seconds=30 * half)
            for i, name in enumerate(NOW_INSTANCES):
                for source in gauges:
                    batches.append(SamplesBatch(
                        name, source, at,
                        [(f"{source}_value", {"k": str(k)}, "gauge", recent_value(i, m, half, k, source))
                         for k in range(SOURCES[source])], []))
    with psycopg.connect(collector_dsn) as conn:
        sink = Sink(conn)
        assert sink.deliver_group(batches) == sum(len(b.samples) for b in batches)
        conn.commit()

    with psycopg.connect(store.dsn, autocommit=True) as conn:
        t = time.monotonic()
        summary = one(conn, "SELECT pganalytics.maintain()")
        maintain_s = time.monotonic() - t
        assert "skipped" not in summary, summary
        again = one(conn, "SELECT pganalytics.maintain()")
        assert again["rollup_rows"] == 0 and again["late_minutes"] == 0, again
        # last_seen_at is the newest snapshot (30 s into the last minute); a minute is complete
        # once it ended one settle (1 min) before that: all but the last two
        complete = RECENT_MINUTES - 2
        rollups = per_worker(conn, "rollups_1m")
        state = per_worker(conn, "series_state_blocks")
        REPORT["maintain() on the coordinator"] = (
            f"{maintain_s:.2f} s ({summary['rollup_rows']} rollup rows, {summary['state_rows']} state rows, "
            f"{summary['coarser_rows']} coarser rows); rows per worker: " + "; ".join(
                f"{n}: {rollups.get(n, 0)} rollups_1m, {state.get(n, 0)} series_state_blocks"
                for n in sorted(workers_of(store))))
        assert set(rollups) == workers_of(store) and all(rollups.values()), rollups
        assert set(state) == workers_of(store) and all(state.values()), state

        got = {(name, labels["k"], source_metric, bucket): (n, total, lo, hi)
               for name, source_metric, labels, bucket, n, total, lo, hi in conn.execute(
                   "SELECT i.name, s.metric, s.labels, r.bucket, r.n, r.sum, r.min, r.max "
                   "FROM pganalytics.rollups_1m r JOIN pganalytics.series s USING (instance_id, series_id) "
                   "JOIN pganalytics.instances i USING (instance_id) WHERE r.instance_id = ANY (%s)",
                   (list(ids.values()),))}
        want = {}
        for i, name in enumerate(NOW_INSTANCES):
            for source in gauges:
                for k in range(SOURCES[source]):
                    for m in range(complete):
                        v = [recent_value(i, m, h, k, source) for h in (0, 1)]
                        want[(name, str(k), f"{source}_value", RECENT_T0 + timedelta(minutes=m))] = (
                            2, sum(v), min(v), max(v))
        assert got == want
        # series_state: one value a minute per series (the minute's mean), n = complete minutes
        states = conn.execute(
            "SELECT st.n, st.mean, s.metric, s.labels, st.instance_id FROM pganalytics.series_state st "
            "JOIN pganalytics.series s USING (instance_id, series_id) WHERE st.instance_id = ANY (%s)",
            (list(ids.values()),)).fetchall()
        assert len(states) == len(NOW_INSTANCES) * sum(SOURCES[s] for s in gauges)
        by_id = {v: k for k, v in ids.items()}
        for n, mean, metric, labels, iid in states:
            i, source, k = NOW_INSTANCES.index(by_id[iid]), metric.removesuffix("_value"), int(labels["k"])
            means = [(recent_value(i, m, 0, k, source) + recent_value(i, m, 1, k, source)) / 2 for m in range(complete)]
            assert n == complete and mean == pytest.approx(sum(means) / len(means)), (metric, labels, iid)

        # A late frame (another source, in minute 0, long rolled up) from each instance: the
        # next call rebuilds that minute on the workers from all its frames.
        late = [SamplesBatch(name, "pg_stat_database", RECENT_T0 + timedelta(seconds=10),
                             [("late_value", {}, "gauge", 7.0 + i)], []) for i, name in enumerate(NOW_INSTANCES)]
        with psycopg.connect(collector_dsn) as cconn:
            assert Sink(cconn).deliver_group(late) == len(late)
        rebuilt = one(conn, "SELECT pganalytics.maintain()")
        assert rebuilt["late_minutes"] == len(NOW_INSTANCES), rebuilt
        assert conn.execute(
            "SELECT i.name, r.n, r.sum FROM pganalytics.rollups_1m r JOIN pganalytics.series s USING (instance_id, series_id) "
            "JOIN pganalytics.instances i USING (instance_id) WHERE s.metric = 'late_value' ORDER BY 1").fetchall() == [
                (name, 1, 7.0 + i) for i, name in enumerate(NOW_INSTANCES)]

        # read_series on both workers' instances: 1m from the rollups (and the newest, not yet
        # rolled-up minute from the raw frames), raw as delivered.
        t_from, t_to = RECENT_T0, RECENT_T0 + timedelta(minutes=RECENT_MINUTES)
        for i, name in enumerate(NOW_INSTANCES):
            minute = {(labels["k"], ts): (value, n) for _, labels, ts, value, _, _, n, res in conn.execute(
                "SELECT * FROM pganalytics.read_series(%s, 'host_value', %s, %s, '1m')", (name, t_from, t_to))}
            assert minute == {
                (str(k), RECENT_T0 + timedelta(minutes=m)): (
                    pytest.approx((recent_value(i, m, 0, k, "host") + recent_value(i, m, 1, k, "host")) / 2), 2)
                for k in range(SOURCES["host"]) for m in range(RECENT_MINUTES)}, name
            raw = {(labels["k"], ts): value for _, labels, ts, value, _, _, _, res in conn.execute(
                "SELECT * FROM pganalytics.read_series(%s, 'host_value', %s, %s, 'raw')", (name, t_from, t_to))}
            assert raw == {
                (str(k), RECENT_T0 + timedelta(minutes=m, seconds=30 * h)): recent_value(i, m, h, k, "host")
                for k in range(SOURCES["host"]) for m in range(RECENT_MINUTES) for h in (0, 1)}, name


def test_query_analysis_on_workers(store, collector_dsn):
    """api_query_analysis() and analyze_query_performance() on the coordinator, as a login role
    of the gateway and one of the admins, over instances on both workers."""
    role = f"pga_api_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(store.dsn, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN IN ROLE pganalytics_gateway, pganalytics_admin")
    try:
        with psycopg.connect(store.dsn.replace("user=postgres", f"user={role}")) as conn:
            for name in INSTANCES:
                rows = conn.execute("SELECT instance, queryid, calls FROM pganalytics.api_query_analysis(%s, '30 days', 1)",
                                    (name,)).fetchall()
                assert sorted(rows) == [(name, 1000 + q, 10 * CYCLES) for q in range(QUERIES)], name
            every = conn.execute("SELECT instance, queryid FROM pganalytics.analyze_query_performance(NULL, '30 days', 1)"
                                 ).fetchall()
            assert {name for name, _ in every} >= set(INSTANCES) and len(every) >= len(INSTANCES) * QUERIES
    finally:
        with psycopg.connect(store.dsn, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")


def test_api_tokens_on_citus(store):
    """A token added and revoked on the coordinator (api_tokens is a reference table)."""
    with psycopg.connect(store.dsn, autocommit=True) as conn:
        one(conn, "SELECT pganalytics.api_add_token('citus-token', sha256('secret'))")
        first = one(conn, "SELECT pganalytics.api_revoke_token('citus-token')")
        assert one(conn, "SELECT pganalytics.api_revoke_token('citus-token')") == first  # the earlier time
        assert one(conn, "SELECT revoked_at FROM pganalytics.api_tokens WHERE name = 'citus-token'") == first
