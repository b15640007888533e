"""Migration-driven install: upgrade, idempotence, upgrade-path equivalence, full downgrade."""
from __future__ import annotations

import hashlib
from pathlib import Path

import psycopg
import pytest

from pganalytics import store

from .catalog import snapshot

ROOT = Path(__file__).resolve().parents[2]


def test_fresh_install_creates_schema(databases):
    dsn = databases.create()
    store.upgrade(dsn)
    assert store.current_revision(dsn) == store.head_revision()
    snap = snapshot(dsn)
    tables = {r[0] for r in snap["relations"] if r[1] in ("r", "p")}
    assert {"instances", "databases", "series", "sample_layouts", "sample_frames", "snapshots",
            "rollups_1m", "rollups_5m", "rollups_15m", "rollups_1h", "series_state_blocks", "instance_seen", "query_stats",
            "query_stat_deltas", "query_executions", "query_texts", "api_tokens"} <= tables
    views = {r[0] for r in snap["relations"] if r[1] == "v"}
    assert {"samples", "series_state"} <= views  # raw samples and the series state as rows
    functions = {r[0].split("(")[0] for r in snap["functions"]}
    assert {"pganalytics.analyze_query_performance", "pganalytics.ingest_query_stats",
            "pganalytics.robust_zscore"} <= functions


def test_upgrade_twice_is_a_noop(databases):
    dsn = databases.create()
    store.upgrade(dsn)
    with psycopg.connect(dsn) as conn:
        oids_before = conn.execute(
            "SELECT array_agg(oid ORDER BY oid) FROM pg_proc "
            "WHERE pronamespace = 'pganalytics'::regnamespace").fetchone()[0]
    before = snapshot(dsn)
    store.upgrade(dsn)
    with psycopg.connect(dsn) as conn:
        oids_after = conn.execute(
            "SELECT array_agg(oid ORDER BY oid) FROM pg_proc "
            "WHERE pronamespace = 'pganalytics'::regnamespace").fetchone()[0]
    assert snapshot(dsn) == before
    # Not just equal: nothing was dropped and re-created.
    assert oids_after == oids_before


def test_upgrade_from_first_revision_equals_fresh_install(databases):
    fresh = databases.create()
    store.upgrade(fresh)
    stepped = databases.create()
    store.upgrade(stepped, "0001")
    assert store.current_revision(stepped) == "0001"
    store.upgrade(stepped, "head")
    assert snapshot(stepped) == snapshot(fresh)


def test_downgrade_base_removes_everything(databases):
    dsn = databases.create()
    empty = snapshot(dsn)
    store.upgrade(dsn)
    store.downgrade(dsn, "base")
    assert snapshot(dsn) == empty
    assert store.current_revision(dsn) is None


def test_downgrade_one_step_then_upgrade_again(databases):
    dsn = databases.create()
    store.upgrade(dsn)
    full = snapshot(dsn)
    store.downgrade(dsn, "0001")
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT to_regclass('pganalytics.query_stats')").fetchone()[0] is None
    store.upgrade(dsn)
    assert snapshot(dsn) == full


def test_failed_install_leaves_nothing(databases, monkeypatch):
    """A broken replaceable file aborts the whole install: one transaction, nothing left."""
    from pganalytics import replaceable

    dsn = databases.create()
    empty = snapshot(dsn)
    real = replaceable.select_files

    def broken(major):
        files = real(major)
        return files + [replaceable.SqlFile("api/zz_broken.sql", "api/zz_broken.sql",
                                            "CREATE VIEW pganalytics.broken AS SELECT * FROM nowhere;")]

    monkeypatch.setattr(replaceable, "select_files", broken)
    with pytest.raises(Exception, match="zz_broken"):
        store.upgrade(dsn)
    assert snapshot(dsn) == empty
    assert store.current_revision(dsn) is None


def test_released_schema_files_are_frozen():
    """Run-once DDL never changes after release: migrations/FROZEN pins each file's hash."""
    frozen = {}
    for line in (ROOT / "migrations" / "FROZEN").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            digest, path = line.split(maxsplit=1)
            frozen[path] = digest
    assert frozen, "migrations/FROZEN lists no released files"
    for path, digest in frozen.items():
        actual = hashlib.sha256((ROOT / path).read_bytes()).hexdigest()
        assert actual == digest, f"{path} changed after release: add a new revision instead"
    # A file added to a released revision's folder would run on fresh installs only.
    released = {Path(p).parent.name for p in frozen if p.startswith("sql/schema/")}
    for revision in released:
        for f in sorted((ROOT / "sql" / "schema" / revision).iterdir()):
            rel = f"sql/schema/{revision}/{f.name}"
            assert rel in frozen, f"{rel} was added to released revision {revision}: add a new revision instead"
        migration = [f"migrations/versions/{m.name}" for m in (ROOT / "migrations" / "versions").glob(f"{revision}_*.py")]
        assert migration and all(m in frozen for m in migration), f"revision {revision}'s migration is not frozen"


def _force_reapply(dsn: str) -> None:
    """Make the next upgrade re-apply every replaceable file (as a new release would)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM pganalytics.meta WHERE key = 'replaceable_hash'")


def test_upgrade_keeps_users_objects_that_depend_on_ours(databases):
    """Replaceable objects are replaced in place: a user's view over api_instances, and the
    grants on it, survive every upgrade (0003's re-apply dropped them with CASCADE)."""
    dsn = databases.create()
    store.upgrade(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE VIEW public.my_instances AS SELECT name FROM pganalytics.api_instances")
    _force_reapply(dsn)
    store.upgrade(dsn)
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT to_regclass('public.my_instances')").fetchone()[0] == "my_instances"


def _reshaped_api_instances(monkeypatch):
    """The bundle with api_instances losing a column (CREATE OR REPLACE cannot do that)."""
    from pganalytics import replaceable

    real = replaceable.select_files

    def files(major):
        out = []
        for f in real(major):
            if f.key == "api/api_instances.sql":
                text = ("CREATE OR REPLACE VIEW pganalytics.api_instances AS SELECT i.name FROM pganalytics.instances i;\n"
                        "GRANT SELECT ON pganalytics.api_instances TO pganalytics_gateway;\n")
                f = replaceable.SqlFile(f.key, f.path, text)
            out.append(f)
        return out

    monkeypatch.setattr(replaceable, "select_files", files)


def test_reshaping_an_object_users_depend_on_is_refused(databases, monkeypatch):
    from pganalytics.replaceable import DependentObjectsError

    dsn = databases.create()
    store.upgrade(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE VIEW public.my_instances AS SELECT name FROM pganalytics.api_instances")
    before = snapshot(dsn)
    _force_reapply(dsn)
    _reshaped_api_instances(monkeypatch)
    with pytest.raises(DependentObjectsError, match="view public.my_instances depends on view pganalytics.api_instances"):
        store.upgrade(dsn)
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT to_regclass('public.my_instances')").fetchone()[0] == "my_instances"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP VIEW public.my_instances")
    store.upgrade(dsn)  # without the user's view, the reshape goes through
    with psycopg.connect(dsn) as conn:
        cols = conn.execute("SELECT attname FROM pg_attribute WHERE attrelid = 'pganalytics.api_instances'::regclass "
                            "AND attnum > 0").fetchall()
    assert cols == [("name",)]
    assert snapshot(dsn)["functions"] == before["functions"]


def test_obsolete_objects_are_dropped_but_not_from_under_users(databases):
    from pganalytics.replaceable import DependentObjectsError

    dsn = databases.create()
    store.upgrade(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:  # as if a release before had it
        conn.execute("CREATE FUNCTION pganalytics.retired_fn() RETURNS int LANGUAGE sql "
                     "SET search_path = pg_catalog AS 'SELECT 1'")
        conn.execute("CREATE VIEW public.uses_retired AS SELECT pganalytics.retired_fn() AS x")
    _force_reapply(dsn)
    with pytest.raises(DependentObjectsError, match="retired_fn"):
        store.upgrade(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP VIEW public.uses_retired")
    store.upgrade(dsn)
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT to_regprocedure('pganalytics.retired_fn()')").fetchone()[0] is None


def test_uninstall_refuses_to_drop_users_objects(databases):
    from pganalytics.replaceable import DependentObjectsError

    dsn = databases.create()
    store.upgrade(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE VIEW public.my_instances AS SELECT name FROM pganalytics.api_instances")
    with pytest.raises(DependentObjectsError, match="my_instances"):
        store.downgrade(dsn, "base")
    assert store.current_revision(dsn) == store.head_revision()


def test_plain_alembic_command_from_checkout(databases):
    """`PGANALYTICS_DSN=... alembic upgrade head` works as the README says."""
    import os
    import subprocess
    import sys

    dsn = databases.create()
    env = dict(os.environ, PGANALYTICS_DSN=dsn)
    for args in (["upgrade", "head"], ["current"], ["downgrade", "base"]):
        done = subprocess.run([sys.executable, "-m", "alembic", "-c", str(ROOT / "alembic.ini"), *args],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        if args == ["current"]:
            assert f"{store.head_revision()} (head)" in done.stdout
    assert store.current_revision(dsn) is None


def test_upgrade_to_0007_keeps_the_series_state(databases):
    """Revision 0007 moves series_state rows into per-instance blocks: the series_state view
    then shows the very same values (NULLs included) and each series' kind."""
    dsn = databases.create()
    store.upgrade(dsn, "0006")
    with psycopg.connect(dsn) as conn:
        iid = conn.execute("INSERT INTO pganalytics.instances (name, conn_ref) VALUES ('st', 'service=st') "
                           "RETURNING instance_id").fetchone()[0]
        sids = [conn.execute("INSERT INTO pganalytics.series (instance_id, metric, labels, kind) "
                             "VALUES (%s, %s, '{}', %s) RETURNING series_id", (iid, m, k)).fetchone()[0]
                for m, k in (("g_metric", "gauge"), ("c_metric_total", "counter"))]
        rows = [(iid, sids[0], 7, 1.5, 0.25, 1.25, 2.0, "2026-12-01 10:00:00+00", 3.0),
                (iid, sids[1], 0, 0.0, 0.0, None, None, "2026-12-01 10:01:00+00", 99.5)]
        conn.cursor().executemany("INSERT INTO pganalytics.series_state (instance_id, series_id, n, mean, m2, ewma, "
                         "last_value, last_bucket, counter_last) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)", rows)
    store.upgrade(dsn)
    with psycopg.connect(dsn) as conn:
        got = conn.execute("SELECT instance_id, series_id, n, mean, m2, ewma, last_value, "
                           "to_char(last_bucket AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || '+00', "
                           "counter_last, gauge FROM pganalytics.series_state ORDER BY series_id").fetchall()
    assert got == [(*r, gauge) for r, gauge in zip(rows, (True, False))]


def test_upgrade_to_0008_keeps_frames_and_when_instances_were_seen(databases):
    """Revision 0008 makes (instance, ts, layout) a frame's identity: duplicate layouts (one
    series set registered twice by a race) are merged into the lowest id with their frames,
    last_seen_at moves to instance_seen, and a downgrade puts it back."""
    dsn = databases.create()
    store.upgrade(dsn, "0007")
    with psycopg.connect(dsn) as conn:
        iid = conn.execute("INSERT INTO pganalytics.instances (name, conn_ref, last_seen_at) "
                           "VALUES ('fl', 'service=fl', '2026-12-01 10:01:00+00') RETURNING instance_id").fetchone()[0]
        sids = [conn.execute("INSERT INTO pganalytics.series (instance_id, metric, labels, kind) "
                             "VALUES (%s, %s, '{}', 'gauge') RETURNING series_id", (iid, m)).fetchone()[0]
                for m in ("a", "b")]
        low, high, other = (conn.execute("INSERT INTO pganalytics.sample_layouts (instance_id, series_ids) "
                                         "VALUES (%s, %s) RETURNING layout_id", (iid, ids)).fetchone()[0]
                            for ids in (sids, sids, sids[:1]))
        conn.execute("CREATE TABLE pganalytics.sample_frames_p20261201 PARTITION OF pganalytics.sample_frames "
                     "FOR VALUES FROM ('2026-12-01 00:00+00') TO ('2026-12-02 00:00+00')")  # no functions below head
        for ts, layout, vals in (("2026-12-01 10:00:00+00", high, [1.0, 2.0]), ("2026-12-01 10:01:00+00", low, [3.0, 4.0]),
                                 ("2026-12-01 10:01:00+00", other, [5.0])):
            conn.execute("INSERT INTO pganalytics.sample_frames (instance_id, ts, layout_id, vals) "
                         "SELECT %s, %s, %s, string_agg(float8send(v), ''::bytea ORDER BY k) "
                         "FROM unnest(%s::float8[]) WITH ORDINALITY AS u(v, k)", (iid, ts, layout, vals))
    store.upgrade(dsn)

    def samples(conn):
        return conn.execute("SELECT series_id, to_char(ts AT TIME ZONE 'UTC', 'HH24:MI'), value "
                            "FROM pganalytics.samples ORDER BY 2, 1, 3").fetchall()
    expected = [(sids[0], "10:00", 1.0), (sids[1], "10:00", 2.0), (sids[0], "10:01", 3.0), (sids[0], "10:01", 5.0),
                (sids[1], "10:01", 4.0)]
    with psycopg.connect(dsn) as conn:
        assert samples(conn) == expected
        assert conn.execute("SELECT array_agg(layout_id ORDER BY layout_id) FROM pganalytics.sample_layouts"
                            ).fetchone()[0] == [low, other]
        assert conn.execute("SELECT count(*) FROM pganalytics.sample_frames WHERE layout_id = %s",
                            (low,)).fetchone()[0] == 2
        assert conn.execute("SELECT instance_id, to_char(last_seen_at AT TIME ZONE 'UTC', 'HH24:MI') "
                            "FROM pganalytics.instance_seen").fetchall() == [(iid, "10:01")]
        with pytest.raises(psycopg.errors.UniqueViolation):  # the same snapshot again
            conn.execute("INSERT INTO pganalytics.sample_frames (instance_id, ts, layout_id, vals) "
                         "SELECT instance_id, ts, layout_id, vals FROM pganalytics.sample_frames WHERE layout_id = %s",
                         (other,))
    store.downgrade(dsn, "0007")
    with psycopg.connect(dsn) as conn:  # below head there are no views: the frames themselves
        assert conn.execute("SELECT layout_id, count(*) FROM pganalytics.sample_frames GROUP BY 1 ORDER BY 1"
                            ).fetchall() == [(low, 2), (other, 1)]
        assert conn.execute("SELECT to_char(last_seen_at AT TIME ZONE 'UTC', 'HH24:MI') FROM pganalytics.instances"
                            ).fetchone()[0] == "10:01"
