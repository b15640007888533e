"""Collector sharding: N daemons with `shard = "K/N"` split the targets between them with no
overlap and no gap, the same way in every process and after every restart; two real daemons
against one store collect every target exactly once."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import psycopg
import pytest

from pganalytics.collector import config
from pganalytics.collector import shard as sharding
from pganalytics.collector.daemon import Collector

from .waiting import wait_for

NAMES = [f"db-{i:03d}.example" for i in range(300)] + ["prod-1", "ünïcode", "a/b", ""]


def owners(names, count):
    return {name: [k for k in range(1, count + 1) if sharding.Shard(k, count).owns(name)]
            for name in names}


@pytest.mark.parametrize("count", [1, 2, 3, 4, 5])
def test_shards_partition_the_targets_exactly(count):
    found = owners(NAMES, count)
    assert all(len(ks) == 1 for ks in found.values())  # disjoint, and no name left out
    parts = [{n for n, ks in found.items() if ks == [k]} for k in range(1, count + 1)]
    assert set().union(*parts) == set(NAMES)
    assert sum(len(p) for p in parts) == len(NAMES)
    expected = len(NAMES) / count
    assert all(0.6 * expected <= len(p) <= 1.4 * expected for p in parts), [len(p) for p in parts]


def test_a_fourth_daemon_takes_about_a_quarter_and_nothing_moves_between_the_others():
    before = {n: ks[0] for n, ks in owners(NAMES, 3).items()}
    after = {n: ks[0] for n, ks in owners(NAMES, 4).items()}
    moved = [n for n in NAMES if before[n] != after[n]]
    assert all(after[n] == 4 for n in moved)  # rendezvous: only to the new shard
    assert 0.15 <= len(moved) / len(NAMES) <= 0.35  # ~1/4 (hash % N would move ~3/4)
    # and back: removing shard 4 gives its targets back to where they were
    assert {n: ks[0] for n, ks in owners(NAMES, 3).items()} == before


def test_assignment_is_pinned_and_the_same_in_every_process():
    """Daemons of different versions and processes must agree: the owners are fixed values,
    and do not depend on Python's per-process hash seed."""
    pinned = {  # name: owner for N = 2, 3, 4, 5
        "prod-1": (2, 2, 2, 2), "db-eu-1": (2, 3, 3, 3), "db-us-1": (2, 2, 4, 4),
        "analytics": (1, 1, 1, 1), "billing": (1, 1, 1, 5), "search": (2, 2, 4, 5),
    }
    assert {n: tuple(sharding.owner(n, c) for c in (2, 3, 4, 5)) for n in pinned} == pinned
    script = ("import json; from pganalytics.collector import shard; "
              f"print(json.dumps([shard.owner(n, 5) for n in {NAMES[:50]!r}]))")
    for seed in ("1", "4242"):
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                             check=True, env={**os.environ, "PYTHONHASHSEED": seed}).stdout
        assert json.loads(out) == [sharding.owner(n, 5) for n in NAMES[:50]]


def parse(collector=None, **env):
    return config.parse({"store": {"dsn": "service=store"}, "collector": collector or {}}, **env)


def test_shard_setting_default_file_and_environment(tmp_path, monkeypatch):
    assert parse().shard == sharding.ALL and sharding.ALL.owns("anything")
    assert parse({"shard": "2/3"}).shard == sharding.Shard(2, 3)
    assert parse({"shard": " 1 / 1 "}).shard == sharding.ALL
    # the environment wins: one file for every daemon, each started with its own shard
    toml = tmp_path / "c.toml"
    toml.write_text('[store]\ndsn = "service=store"\n[collector]\nshard = "1/2"\n')
    monkeypatch.setenv("PGANALYTICS_SHARD", "2/2")
    assert config.load(toml).shard == sharding.Shard(2, 2)
    monkeypatch.setenv("PGANALYTICS_SHARD", "3/2")
    with pytest.raises(config.ConfigError, match=r"^PGANALYTICS_SHARD must look like K/N"):
        config.load(toml)
    monkeypatch.delenv("PGANALYTICS_SHARD")
    assert config.load(toml).shard == sharding.Shard(1, 2)


@pytest.mark.parametrize("value, detail", [
    ("0/3", "K must be between 1 and 3"),
    ("4/3", "K must be between 1 and 3"),
    ("1/0", "N (the number of daemons) must be at least 1"),
    ("-1/3", "got '-1/3'"),
    ("1-3", "got '1-3'"),
    ("1/3/5", "got '1/3/5'"),
    ("", "got ''"),
    ("one/three", "got 'one/three'"),
    (1, "got 1, not a string in quotes"),
    (["1", "3"], "not a string"),
])
def test_bad_shard_settings_say_what_to_write(value, detail):
    with pytest.raises(config.ConfigError) as raised:
        parse({"shard": value})
    message = str(raised.value)
    assert message.startswith("collector.shard must look like K/N with 1 <= K <= N")
    assert 'e.g. "1/3"' in message and detail in message


# -- two daemons, one store ------------------------------------------------------------------
BOTH_FILES = {"analytics": 1, "prod-1": 2}  # [[targets]] of both daemons' files
ONLY_FIRST_FILE = {"db-eu-1": 2}  # in shard 1's file only, owned by shard 2: reaches it via the store
TARGETS_ADD = {"billing": 1, "auth": 1, "search": 2, "cache-db": 2, "orders": 2}  # `targets add`
EVERY = {**BOTH_FILES, **ONLY_FIRST_FILE, **TARGETS_ADD}


@pytest.fixture
def target_dsn(databases):
    dsn = databases.create(prefix="shard_target")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    return dsn


def snapshots_per_target(store_dsn: str) -> dict[str, int]:
    """Availability snapshots per target: one per cycle of whichever daemon collected it (its
    frames, of the pg_up series: frames are their own ledger)."""
    with psycopg.connect(store_dsn) as conn:
        return dict(conn.execute(
            "SELECT i.name, count(x.instance_id) FROM pganalytics.instances i "
            "LEFT JOIN (pganalytics.samples x JOIN pganalytics.series r USING (instance_id, series_id)) "
            "ON x.instance_id = i.instance_id AND r.metric = 'pg_up' GROUP BY i.name").fetchall())


def test_two_daemons_collect_every_target_exactly_once(store_dsn, target_dsn, tmp_path):
    assert EVERY == {n: sharding.owner(n, 2) for n in EVERY}  # the split this test is about
    with psycopg.connect(store_dsn, autocommit=True) as conn:
        for name in TARGETS_ADD:
            conn.execute("SELECT pganalytics.register_instance(%s, %s)", (name, target_dsn))
    daemons = []
    for k in (1, 2):
        files = {**BOTH_FILES, **(ONLY_FIRST_FILE if k == 1 else {})}
        daemons.append(Collector(config.parse({
            "store": {"dsn": store_dsn},
            "collector": {"interval_s": 0.5, "slow_interval_s": 1, "sample_interval_s": 0,
                          "workers": 2, "spool_dir": str(tmp_path / f"spool{k}"), "shard": f"{k}/2"},
            "targets": [{"name": n, "conn": target_dsn} for n in files]})))
    runners = [threading.Thread(target=d.run) for d in daemons]
    for runner in runners:
        runner.start()
    try:
        wait_for(lambda: (lambda seen: set(seen) == set(EVERY) and min(seen.values()) >= 2)(
            snapshots_per_target(store_dsn)), timeout=90, what="two cycles of every target")
    finally:
        for d in daemons:
            d.request_stop()
        for runner in runners:
            runner.join(30)
    if any(r.is_alive() for r in runners):  # say what the stuck daemon waits for in the store
        with psycopg.connect(store_dsn, autocommit=True) as conn:
            sessions = conn.execute("SELECT pid, state, wait_event_type, wait_event, left(query, 200) "
                                    "FROM pg_stat_activity WHERE datname = current_database() "
                                    "AND pid <> pg_backend_pid()").fetchall()
        pytest.fail(f"a daemon did not stop within 30 s of request_stop(); store sessions: {sessions}")
    first, second = daemons
    # each daemon opened sessions for its own shard only: disjoint, and together every target
    assert set(first.targets) == {n for n, k in EVERY.items() if k == 1}
    assert set(second.targets) == {n for n, k in EVERY.items() if k == 2}
    # every target's data in the store came from its owner's cycles, and no one else's
    stored = snapshots_per_target(store_dsn)
    assert stored == {n: daemons[k - 1].targets[n].cycles for n, k in EVERY.items()}
    assert all(d.targets[n].failures == 0 for d in daemons for n in d.targets)
    with psycopg.connect(store_dsn) as conn:
        with_samples = {r[0] for r in conn.execute(
            "SELECT DISTINCT i.name FROM pganalytics.samples s JOIN pganalytics.series r "
            "USING (instance_id, series_id) JOIN pganalytics.instances i USING (instance_id) "
            "WHERE r.metric = 'pg_up' AND s.value = 1")}
    assert with_samples == set(EVERY)
