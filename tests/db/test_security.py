"""The store's privilege boundaries, attacked for real by a login role that is only a member
of pganalytics_collector (or pganalytics_gateway).

The SECURITY DEFINER functions run as pganalytics_owner. Revision 0003's ingest functions ran
as the installing superuser and read and deleted the caller's own temp staging tables, so a
trigger, rule, view or column default the caller put on them ran as superuser (issue 7). Each
attack below plants such code on every relation name an ingest function could resolve in
pg_temp, then calls each entry point: the planted code must never run, and the call must work.
"""
from __future__ import annotations

import json
import struct
import uuid
from datetime import datetime, timezone

import psycopg
import pytest

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=timezone.utc)

# Planted code: raises, so a call that ran it fails; escalates first, in case it runs as a
# superuser (then both show).
EVIL = """
CREATE FUNCTION pg_temp.evil() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('ALTER ROLE %I SUPERUSER', session_user);
    RAISE EXCEPTION 'planted trigger ran as %', current_user;
END $$;
CREATE FUNCTION pg_temp.evil_value() RETURNS int LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('ALTER ROLE %I SUPERUSER', session_user);
    RAISE EXCEPTION 'planted default ran as %', current_user;
END $$;
"""


def _plant(conn: psycopg.Connection, variant: str, names: list[str]) -> None:
    """Temp relations named like every store relation (and the old temp staging tables),
    each carrying code of the attacker's."""
    conn.execute(EVIL)
    for i, name in enumerate(names):
        rel = f"pg_temp.{name}"
        if variant == "view":
            conn.execute(f"CREATE TEMP VIEW {name} AS SELECT pg_temp.evil_value() AS batch_no")
            continue
        conn.execute(f"CREATE TEMP TABLE {name} (batch_no int DEFAULT pg_temp.evil_value(), "
                     "series_id int, value float8, dbid oid, userid oid, queryid bigint, "
                     "toplevel boolean, calls bigint, total_exec_time float8, instance_id int)")
        if variant != "default":  # a row to find (before the triggers: planting must not fire them)
            conn.execute(f"INSERT INTO {rel} (batch_no, series_id, value) VALUES (0, 1, 1)")
        if variant == "rule":
            conn.execute(f"CREATE TEMP TABLE evil_log_{i} (x int)")
            conn.execute(f"CREATE RULE r AS ON DELETE TO {rel} DO ALSO "
                         f"INSERT INTO pg_temp.evil_log_{i} VALUES (pg_temp.evil_value())")
        elif variant.startswith("trigger"):
            when = {"trigger_delete": "BEFORE DELETE", "trigger_insert": "BEFORE INSERT",
                    "trigger_update": "BEFORE UPDATE"}[variant]
            conn.execute(f"CREATE TRIGGER t {when} ON {rel} FOR EACH STATEMENT "
                         "EXECUTE FUNCTION pg_temp.evil()")


@pytest.fixture
def roles(store_dsn):
    """Login roles that are members of one store group each; dropped at the end."""
    admin = psycopg.connect(store_dsn, autocommit=True)
    made: list[str] = []

    def make(group: str) -> str:
        name = f"pga_{group}_{uuid.uuid4().hex[:8]}"
        admin.execute(f"CREATE ROLE {name} LOGIN PASSWORD 'x' IN ROLE pganalytics_{group}")
        made.append(name)
        params = psycopg.conninfo.conninfo_to_dict(store_dsn)
        params.update(user=name, password="x")
        return psycopg.conninfo.make_conninfo("", **params)

    yield make
    for name in made:
        # its temp objects may outlive the closed session for a moment
        admin.execute(f"DROP OWNED BY {name}")
        admin.execute(f"DROP ROLE {name}")
    admin.close()


def _ingest_calls(conn: psycopg.Connection, iid: int) -> None:
    """Every collector entry point, with real data, staged as the collector stages it."""
    conn.execute("SELECT pganalytics.known_series(%s)", ([iid],)).fetchall()
    row = conn.execute("SELECT series_id FROM pganalytics.series_ids(%s, '{m}', '{\"{}\"}', '{gauge}')",
                       ([iid],)).fetchone()
    assert row is not None
    sid = row[0]
    with conn.transaction(), conn.cursor() as cur:
        layout = cur.execute("SELECT layout_id FROM pganalytics.register_layouts(%s, '{1}', %s)",
                             ([iid], [sid])).fetchone()[0]
        with cur.copy("COPY pganalytics.sample_frames_stage (batch_no, instance_id, collected_at, layout_id, vals) "
                      "FROM STDIN") as copy:
            copy.write_row((0, iid, T0, layout, struct.pack(">d", 1.5)))  # one big-endian float8
        with cur.copy("COPY pganalytics.query_stats_stage (batch_no, dbid, userid, queryid, toplevel, "
                      "calls, total_exec_time) FROM STDIN") as copy:
            copy.write_row((0, 5, 10, 42, True, 3, 1.0))
        assert cur.execute("SELECT pganalytics.ingest_samples(0, 1, '{0}', '{5}', '{db}')").fetchone()[0] == 1
        assert cur.execute("SELECT pganalytics.ingest_query_stats(0, %s, %s, 0, NULL, '{42}', '{SELECT 1}')",
                           (iid, T0)).fetchone()[0] == 1
        rows = {"lock_waits": [{"kind": "lock_wait", "pid": 7}],
                "wait_samples": [{"samples": 1, "ticks": 1}],
                "plans": [{"queryid": 42, "dbid": 5, "plan_hash": 1, "plan": [{"Plan": {"Node Type": "Result"}}]}],
                "settings": [{"name": "work_mem", "setting": "8MB"}]}
        for source, batch in rows.items():
            assert cur.execute(f"SELECT pganalytics.ingest_{source}(%s, %s, %s)",
                               (iid, T0, json.dumps(batch))).fetchone()[0] == 1
    conn.execute("SELECT pganalytics.register_target('sec1', 'service=sec1', '{\"a\": \"b\"}')")
    conn.execute("SELECT pganalytics.purge_staging()")


def _store_relations(conn: psycopg.Connection) -> list[str]:
    names = [r[0] for r in conn.execute(
        "SELECT relname FROM pg_class WHERE relnamespace = 'pganalytics'::regnamespace "
        "AND relkind IN ('r', 'p', 'v') AND relname !~ '_p[0-9]{8}$'")]
    return sorted(set(names) | {"stage_samples", "stage_query_stats", "stage_query_stats_many"})


@pytest.mark.parametrize("variant", ["trigger_delete", "trigger_insert", "trigger_update",
                                     "rule", "view", "default"])
def test_planted_code_never_runs_in_ingest(store_conn, roles, variant):
    iid = store_conn.execute("SELECT pganalytics.register_instance('sec1', 'service=sec1')").fetchone()[0]
    names = _store_relations(store_conn)
    dsn = roles("collector")
    user = psycopg.conninfo.conninfo_to_dict(dsn)["user"]
    with psycopg.connect(dsn, autocommit=True) as mallory:
        _plant(mallory, variant, names)
        _ingest_calls(mallory, iid)  # raises if any planted code ran
        assert not mallory.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]
    assert not store_conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", (user,)).fetchone()[0]
    # and the data landed where it belongs
    assert store_conn.execute("SELECT count(*) FROM pganalytics.samples").fetchone()[0] == 1
    assert store_conn.execute("SELECT count(*) FROM pganalytics.query_stats").fetchone()[0] == 1
    # maintain(), which the daemon calls as the collector, with the same objects planted
    with psycopg.connect(dsn, autocommit=True) as mallory:
        _plant(mallory, variant, names)
        assert "dropped" in mallory.execute("SELECT pganalytics.maintain()").fetchone()[0]
    assert not store_conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", (user,)).fetchone()[0]


def test_the_issue_reproduction_fails(store_conn, roles):
    """The exact attack of issue 7 against 0003: now the temp table is simply never read."""
    dsn = roles("collector")
    user = psycopg.conninfo.conninfo_to_dict(dsn)["user"]
    with psycopg.connect(dsn, autocommit=True) as mallory:
        mallory.execute("CREATE TEMP TABLE stage_samples (batch_no int NOT NULL, series_id int NOT NULL, value float8 NOT NULL)")
        mallory.execute("CREATE FUNCTION pg_temp.evil() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                        f"EXECUTE 'ALTER ROLE {user} SUPERUSER'; RETURN NULL; END $$")
        mallory.execute("CREATE TRIGGER t BEFORE DELETE ON pg_temp.stage_samples FOR EACH STATEMENT "
                        "EXECUTE FUNCTION pg_temp.evil()")
        assert mallory.execute("SELECT pganalytics.ingest_samples(0, 0)").fetchone()[0] == 0
    assert not store_conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", (user,)).fetchone()[0]


def test_collector_cannot_bypass_the_ledger_or_read_staging(store_conn, roles):
    iid = store_conn.execute("SELECT pganalytics.register_instance('sec1', 'service=sec1')").fetchone()[0]
    with psycopg.connect(roles("collector"), autocommit=True) as c:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("INSERT INTO pganalytics.sample_frames VALUES (%s, now(), 1, '{1}')", (iid,))
        for statement in ("SELECT * FROM pganalytics.sample_frames_stage",
                          "DELETE FROM pganalytics.sample_frames_stage",
                          "SELECT * FROM pganalytics.samples",
                          "INSERT INTO pganalytics.sample_layouts (instance_id, series_ids) VALUES (1, '{1}')",
                          "TRUNCATE pganalytics.query_stats_stage",
                          "INSERT INTO pganalytics.sample_frames_stage (batch_no, instance_id, collected_at, layout_id, "
                          "vals, stage_xid) VALUES (0, 1, now(), 1, '\\x00', '1')",  # another transaction's rows: no forging
                          "SELECT * FROM pganalytics.rollups_1m",
                          "SELECT pganalytics.begin_snapshot(1, 'x', now())",
                          "SELECT pganalytics.ensure_partitions('pganalytics.sample_frames', now(), now())",
                          "SELECT * FROM pganalytics.rollup_minutes('{1}', ARRAY[now()], ARRAY[now()])",
                          "CREATE TABLE pganalytics.mine (x int)"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                c.execute(statement)


def test_collector_cannot_move_a_registered_target(store_conn, roles):
    store_conn.execute("SELECT pganalytics.register_instance('prod', 'service=prod')")
    with psycopg.connect(roles("collector"), autocommit=True) as c:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="another connection reference"):
            c.execute("SELECT pganalytics.register_target('prod', 'host=evil.example')")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("SELECT pganalytics.register_instance('prod', 'host=evil.example')")
        # the same reference: labels and version are the collector's to keep current
        c.execute("SELECT pganalytics.register_target('prod', 'service=prod', '{\"env\": \"prod\"}', 150000)")
        # a new target: the collector may add it
        c.execute("SELECT pganalytics.register_target('new', 'service=new')")
    assert store_conn.execute("SELECT conn_ref, labels, server_version_num FROM pganalytics.instances "
                              "WHERE name = 'prod'").fetchone() == ("service=prod", {"env": "prod"}, 150000)
    with psycopg.connect(roles("admin"), autocommit=True) as a:
        a.execute("SELECT pganalytics.register_instance('prod', 'service=prod-2')")
    assert store_conn.execute("SELECT conn_ref FROM pganalytics.instances WHERE name = 'prod'"
                              ).fetchone()[0] == "service=prod-2"


def test_no_security_definer_function_is_superuser_owned(store_conn):
    bad = store_conn.execute("""
        SELECT p.oid::regprocedure::text, r.rolname FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner
        WHERE p.pronamespace = 'pganalytics'::regnamespace AND p.prosecdef
          AND (r.rolsuper OR r.rolname <> 'pganalytics_owner')""").fetchall()
    assert bad == []
    assert store_conn.execute("""
        SELECT count(*) FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
        WHERE p.pronamespace = 'pganalytics'::regnamespace AND p.prosecdef AND NOT l.lanpltrusted
    """).fetchone()[0] == 0, "no SECURITY DEFINER function in an untrusted language"
    assert store_conn.execute("SELECT count(*) FROM pg_proc WHERE pronamespace = 'pganalytics'::regnamespace "
                              "AND prosecdef").fetchone()[0] >= 10


def test_owner_role_is_harmless_and_owns_everything(store_conn):
    owner = store_conn.execute("""
        SELECT rolsuper, rolcanlogin, rolcreaterole, rolcreatedb, rolbypassrls, rolreplication,
               (SELECT count(*) FROM pg_auth_members m WHERE m.roleid = r.oid)
        FROM pg_roles r WHERE rolname = 'pganalytics_owner'""").fetchone()
    assert owner == (False, False, False, False, False, False, 0)
    not_owned = store_conn.execute("""
        SELECT c.oid::regclass::text FROM pg_class c
        WHERE c.relnamespace = 'pganalytics'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
          AND c.relowner <> 'pganalytics_owner'::regrole
        UNION ALL
        SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
        WHERE p.pronamespace = 'pganalytics'::regnamespace AND l.lanpltrusted
          AND p.proowner <> 'pganalytics_owner'::regrole""").fetchall()
    assert not_owned == []
    creators = store_conn.execute("""
        SELECT rolname FROM pg_roles
        WHERE rolname LIKE 'pganalytics%%' AND rolname <> 'pganalytics_owner'
          AND has_schema_privilege(rolname, 'pganalytics', 'CREATE')""").fetchall()
    assert creators == [], "only the owner may create (or replace) objects in the schema"


def test_partitions_created_by_ingest_belong_to_the_owner(store_conn, roles):
    iid = store_conn.execute("SELECT pganalytics.register_instance('sec1', 'service=sec1')").fetchone()[0]
    with psycopg.connect(roles("collector"), autocommit=True) as c:
        _ingest_calls(c, iid)
    owners = store_conn.execute("""
        SELECT i.inhparent::regclass::text, pg_get_userbyid(c.relowner)
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent IN ('pganalytics.sample_frames'::regclass, 'pganalytics.snapshots'::regclass)
        GROUP BY 1, 2 ORDER BY 1""").fetchall()
    assert owners == [("pganalytics.sample_frames", "pganalytics_owner"),
                      ("pganalytics.snapshots", "pganalytics_owner")]


def test_gateway_cannot_touch_ingest(store_conn, roles):
    with psycopg.connect(roles("gateway"), autocommit=True) as g:
        for statement in ("SELECT pganalytics.ingest_samples(0, 0)",
                          "SELECT pganalytics.register_target('x', 'service=x')",
                          "SELECT * FROM pganalytics.api_list_tokens()",
                          "INSERT INTO pganalytics.sample_frames_stage (batch_no, instance_id, collected_at, layout_id, vals) "
                          "VALUES (0, 1, now(), 1, '\\x00')",
                          "SELECT * FROM pganalytics.register_layouts('{1}', '{1}', '{1}')",
                          "SELECT pganalytics.maintain()"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                g.execute(statement)

