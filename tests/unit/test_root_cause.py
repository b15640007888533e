"""The root-cause rules (plpython/root_cause.py) over hand-built diagnosis_inputs() documents:
each cause found from its own evidence, ranked above the symptoms it also causes, and nothing
found when nothing changed."""
from __future__ import annotations

import copy
import math

import pytest

from pganalytics.plpython import root_cause as rc

W, B = 60.0, 60.0


def q(queryid, calls_w, time_w, calls_b, time_b, *, blks_w=10, blks_b=10, read_frac_w=0.0, read_frac_b=0.0,
      rows_w=1, rows_b=1, temp_w=0, temp_b=0, text=None):
    def period(calls, time, blks, frac, rows, temp):
        return {"calls": calls, "time_ms": time, "hit": calls * blks * (1 - frac), "read": calls * blks * frac,
                "temp": temp, "rows": calls * rows, "plans": 0}
    return {"queryid": queryid, "query": text or f"SELECT * FROM orders WHERE id = $1 -- {queryid}",
            "w": period(calls_w, time_w, blks_w, read_frac_w, rows_w, temp_w),
            "b": period(calls_b, time_b, blks_b, read_frac_b, rows_b, temp_b)}


def metric(b, w, **more):
    out = {"b_mean": b, "w_mean": w, "b_max": b, "w_max": w, "w_min": w, "w_first": w, "w_last": w,
           "b_last": b, "w_n": 30, "b_n": 30}
    out.update(more)
    return out


def healthy() -> dict:
    """A steady minute against the minute before it: the baseline every scenario edits."""
    queries = [q(1, 6000, 3000, 6000, 3000), q(2, 600, 1200, 600, 1200, text="UPDATE accounts SET x = x + $1")]
    total = {"queryid": "all",
             "w": {k: sum(x["w"][k] for x in queries) for k in ("calls", "time_ms", "hit", "read", "temp", "rows")},
             "b": {k: sum(x["b"][k] for x in queries) for k in ("calls", "time_ms", "hit", "read", "temp", "rows")}}
    return {
        "seconds": {"w": W, "b": B}, "from": "2026-12-05T10:01:00Z", "to": "2026-12-05T10:02:00Z",
        "baseline_from": "2026-12-05T10:00:00Z",
        "queries": queries + [total],
        "waits": [{"type": "CPU", "event": "CPU", "state": "active", "w": 60, "b": 60},
                  {"type": "Lock", "event": "transactionid", "state": "active", "w": 3, "b": 3},
                  {"type": "IO", "event": "DataFileRead", "state": "active", "w": 2, "b": 2}],
        "ticks": {"w": 60, "b": 60},
        "locks": {}, "blockers": [], "idle_in_transaction": [],
        "metrics": {
            "pg_database_blks_hit": metric(5000, 5000), "pg_database_blks_read": metric(20, 20),
            "pg_database_temp_bytes": metric(0, 0),
            "host_cpu_busy_ratio": metric(0.3, 0.3), "host_cpu_iowait_ratio": metric(0.01, 0.01),
            "host_memory_available_bytes": metric(20e9, 20e9), "host_memory_total_bytes": metric(24e9, 24e9),
            "pg_activity_client_backends": metric(6, 6), "pg_activity_active": metric(1, 1),
            "pg_activity_oldest_xact_age_s": metric(0.1, 0.1), "pg_activity_oldest_xmin_age": metric(2, 2),
            "pg_checkpointer_num_requested": metric(0, 0),
        },
        "tables": [{"relname": "orders", "schemaname": "public",
                    "metrics": {"pg_table_n_live_tup": metric(1e6, 1e6), "pg_table_n_mod_since_analyze": metric(100, 100),
                                "pg_table_n_dead_tup": metric(50, 50)}}],
        "indexes": [{"relname": "orders", "indexrelname": "orders_pkey", "b_n": 30, "w_n": 30},
                    {"relname": "orders", "indexrelname": "orders_customer", "b_n": 30, "w_n": 30}],
        "settings": {"changes": [], "current": {"max_connections": "60", "superuser_reserved_connections": "3"}},
        "dropped_indexes": [], "plans": [], "advice": [],
    }


def causes(doc, **options):
    return rc.diagnose(doc, options)["causes"]


def top(doc) -> str | None:
    found = causes(doc)
    return found[0]["cause"] if found else None


def slower_query(doc, work=200, latency=40, rows=1):
    """Query 1 does `work` times the blocks a call and is `latency` times slower."""
    doc["queries"][0] = q(1, 3000, 3000 * 0.5 * latency, 6000, 3000, blks_w=10 * work, rows_w=rows, read_frac_w=0.05)
    doc["waits"][0]["w"] = 140
    doc["metrics"]["host_cpu_busy_ratio"] = metric(0.3, 0.95)
    doc["metrics"]["pg_database_blks_read"] = metric(20, 900)
    return doc


def test_nothing_changed_is_no_cause():
    out = rc.diagnose(healthy(), {})
    assert out["causes"] == []
    assert out["summary"].startswith("no cause found")
    assert set(f"rule:{c}" for c in rc.CAUSES) <= set(out["features"])


def test_no_baseline_says_so():
    doc = healthy()
    doc["seconds"]["b"] = 0
    assert "little or no history" in rc.diagnose(doc, {})["summary"]


def test_lock_contention_names_the_root_blocker():
    doc = healthy()
    doc["waits"][1]["w"] = 150
    doc["locks"] = {"w_collections_with_waiters": 50, "w_max_wait_s": 0.9}
    doc["blockers"] = [{"pid": 4242, "state": "idle in transaction", "queryid": 9, "xact_age_s": 50,
                        "waiter_samples": 120, "waiting_queryids": [2]}]
    found = causes(doc)
    assert found[0]["cause"] == "lock_contention" and found[0]["confidence"] > 0.7
    assert any("pg_terminate_backend(4242)" in r for r in found[0]["recommendations"])
    assert 2 in found[0]["queryids"]


def test_lock_waits_count_when_the_wait_sampler_was_starved():
    """Ticks are skipped while a cycle holds the target connection, and cycles slow down when
    locks pile up: the lock chains taken in every cycle still show the waiters."""
    doc = healthy()
    doc["waits"], doc["ticks"] = [], {}
    doc["queries"][-1]["w"]["snapshots"], doc["queries"][-1]["b"]["snapshots"] = 18, 20
    doc["locks"] = {"w_waiters": 50, "b_waiters": 0, "w_collections_with_waiters": 18}
    assert top(doc) == "lock_contention"


def test_a_dropped_index_is_missing_index_above_cpu_and_io():
    doc = slower_query(healthy())
    doc["dropped_indexes"] = [{"relname": "orders", "indexrelname": "orders_customer", "schemaname": "public",
                               "indexdef": "CREATE INDEX orders_customer ON public.orders USING btree (customer)",
                               "dropped_at": "2026-12-05T10:01:02Z"}]
    found = causes(doc)
    assert found[0]["cause"] == "missing_index" and found[0]["confidence"] > 0.8
    assert "CREATE INDEX CONCURRENTLY orders_customer ON public.orders USING btree (customer)" in found[0]["recommendations"]
    assert found[0]["queryids"] == [1]
    cpu = next((c for c in found if c["cause"] == "cpu_saturation"), None)
    assert cpu is None or cpu["confidence"] < found[0]["confidence"] / 2


def test_an_index_whose_statistics_stop_counts_as_dropped():
    doc = slower_query(healthy())
    doc["indexes"][1]["w_n"] = 0
    assert top(doc) == "missing_index"


def test_hypopg_advice_without_a_drop_is_missing_index():
    doc = slower_query(healthy())
    doc["advice"] = [{"queryid": 1, "relname": "orders", "columns": ["customer"], "cost_before": 20000.0,
                      "cost_after": 8.5, "verified_with": "hypopg",
                      "statement": 'CREATE INDEX CONCURRENTLY ON "public"."orders" ("customer")'}]
    found = causes(doc)
    assert found[0]["cause"] == "missing_index"
    assert found[0]["recommendations"][0].startswith("CREATE INDEX CONCURRENTLY")


def test_a_role_planner_setting_is_suboptimal_plan():
    doc = slower_query(healthy(), work=50, latency=10)
    doc["settings"]["changes"] = [{"name": "enable_indexscan@role:app", "setting": "off", "before": None,
                                   "source": "role", "at": "2026-12-05T10:01:01Z"}]
    found = causes(doc)
    assert found[0]["cause"] == "suboptimal_plan"
    assert any("enable_indexscan" in e for e in found[0]["evidence"])


def test_a_changed_plan_shape_is_plan_regression():
    doc = slower_query(healthy(), work=30, latency=8)
    doc["plans"] = [{"queryid": 1, "b_hashes": [11], "w_hashes": [22], "first_w_at": "2026-12-05T10:01:03Z",
                     "b_scans": [{"node": "Index Scan", "relation": "orders", "index": "orders_customer"}],
                     "w_scans": [{"node": "Seq Scan", "relation": "orders", "filter": "(customer = $1)"}]}]
    doc["settings"]["changes"] = [{"name": "random_page_cost", "setting": "1000", "before": "4",
                                   "at": "2026-12-05T10:01:00Z"}]
    assert top(doc) == "plan_regression"


def test_a_server_planner_change_without_an_earlier_plan_is_plan_regression():
    """The statement was not among those explained before: same rows, many times the blocks
    after a server-wide cost change means its plan changed."""
    doc = slower_query(healthy(), work=90, latency=200)
    doc["plans"] = [{"queryid": 1, "b_hashes": [], "w_hashes": [22], "first_w_at": "2026-12-05T10:01:03Z",
                     "w_scans": [{"node": "Seq Scan", "relation": "orders", "filter": "(customer = $1)"}]}]
    doc["settings"]["changes"] = [{"name": "random_page_cost", "setting": "600", "before": None,
                                   "at": "2026-12-05T10:01:00Z"}]
    found = causes(doc)
    assert found[0]["cause"] == "plan_regression"
    assert "not captured" in found[0]["evidence"][0]
    # the plan known and unchanged: the setting misleads the cost model, not a new plan
    doc["plans"][0]["b_hashes"] = [22]
    assert top(doc) == "suboptimal_plan"


def test_several_statements_slowed_by_one_flip_explain_the_cpu():
    """A planner flip for a role slows three statements, none of them most of the added time:
    together they explain the CPU, which is not the cause."""
    doc = healthy()
    doc["queries"] = [q(i, 3000, 3000 * 0.5 * 300, 3000, 3000 * 0.5, blks_w=3000, rows_w=1) for i in (1, 2, 3)] + \
        [doc["queries"][-1]]
    doc["waits"][0]["w"] = 140
    doc["metrics"]["host_cpu_busy_ratio"] = metric(0.15, 0.85)
    doc["settings"]["changes"] = [{"name": "enable_indexscan@role:app", "setting": "off", "before": None,
                                   "source": "user", "at": "2026-12-05T10:01:01Z"}]
    found = causes(doc)
    assert found[0]["cause"] == "suboptimal_plan"
    assert "cpu_saturation" not in [c["cause"] for c in found]


def test_a_setting_put_back_to_default_is_no_evidence():
    doc = slower_query(healthy(), work=50, latency=10)
    doc["settings"]["changes"] = [{"name": "enable_indexscan@role:app", "setting": None, "before": "off",
                                   "source": "default", "at": "2026-12-05T10:00:30Z"}]
    assert top(doc) != "suboptimal_plan" or causes(doc)[0]["confidence"] < 0.5


def test_modified_rows_and_more_rows_per_call_are_stale_statistics():
    doc = slower_query(healthy(), work=100, latency=20, rows=500)
    doc["tables"][0]["metrics"]["pg_table_n_mod_since_analyze"] = metric(100, 600000)
    doc["plans"] = [{"queryid": 1, "b_hashes": [11], "w_hashes": [11], "w_rows": 1.0,
                     "w_scans": [{"node": "Index Scan", "relation": "orders", "index": "orders_customer"}]}]
    found = causes(doc)
    assert found[0]["cause"] == "stale_statistics"
    assert "ANALYZE orders;" in found[0]["recommendations"]


def test_temp_files_and_a_lowered_work_mem_are_work_mem_spill():
    doc = healthy()
    doc["queries"][1] = q(2, 600, 6000, 600, 1200, temp_w=600 * 400, text="SELECT ... ORDER BY 1")
    doc["metrics"]["pg_database_temp_bytes"] = metric(0, 30e6)
    doc["waits"].append({"type": "IO", "event": "BufFileWrite", "state": "active", "w": 40, "b": 0})
    doc["settings"]["changes"] = [{"name": "work_mem@role:app", "setting": "64", "unit": "kB", "before": None,
                                   "at": "2026-12-05T10:01:00Z"}]
    found = causes(doc)
    assert found[0]["cause"] == "work_mem_spill"
    assert found[0]["queryids"][0] == 2


def test_connections_near_the_limit():
    doc = healthy()
    doc["metrics"]["pg_activity_client_backends"] = metric(6, 55)
    assert top(doc) == "connection_saturation"


def test_a_long_idle_transaction_with_growing_dead_rows_is_bloat():
    doc = healthy()
    doc["metrics"]["pg_activity_oldest_xact_age_s"] = metric(0.1, 55, w_first=2, w_last=55)
    doc["metrics"]["pg_activity_oldest_xmin_age"] = metric(2, 3000, w_first=50, w_last=3000)
    doc["metrics"]["pg_activity_idle_in_transaction"] = metric(0, 1)
    doc["tables"][0]["metrics"]["pg_table_n_dead_tup"] = metric(50, 30000, w_first=1000, w_last=40000, b_last=50)
    doc["idle_in_transaction"] = [{"pid": 77, "usename": "report", "datname": "app", "xact_age_s": 55}]
    found = causes(doc)
    assert found[0]["cause"] == "bloat_long_transaction"
    assert any("pg_terminate_backend(77)" in r for r in found[0]["recommendations"])


def test_cpu_bound_new_queries_are_cpu_saturation():
    doc = healthy()
    doc["queries"].insert(0, q(3, 40, 80000, 0, 0, blks_w=0, text="SELECT sum(sqrt(g)) FROM generate_series(1, 3e6) g"))
    doc["waits"][0]["w"] = 160
    doc["metrics"]["host_cpu_busy_ratio"] = metric(0.3, 0.98)
    found = causes(doc)
    assert found[0]["cause"] == "cpu_saturation"
    assert 3 in found[0]["queryids"]


def test_cpu_bound_new_queries_without_host_metrics_are_cpu_saturation():
    """A remote collector has no host CPU: sessions on CPU, backed by the time statements added."""
    doc = healthy()
    doc["queries"].insert(0, q(3, 40, 150000, 0, 0, blks_w=0, text="SELECT sum(sqrt(g)) FROM generate_series(1, 3e6) g"))
    doc["waits"][0]["w"] = 200
    del doc["metrics"]["host_cpu_busy_ratio"]
    found = causes(doc)
    assert found[0]["cause"] == "cpu_saturation" and 3 in found[0]["queryids"]


def test_a_few_samples_in_one_busy_drain_of_a_quiet_window_are_no_cpu_saturation():
    """Drains that saw no session store no row: two samples in the one stored drain of a quiet
    minute are 2/60 sessions, not 2 (the fault a CI run without host metrics once reported)."""
    doc = healthy()
    del doc["metrics"]["host_cpu_busy_ratio"]
    doc["waits"] = [{"type": "CPU", "event": "CPU", "state": "active", "w": 2, "b": None}]
    doc["ticks"] = {"w": 1, "b": None, "w_collections": 1, "b_collections": 0, "w_interval_s": 1.0}
    ev = rc.Evidence(doc)
    assert ev.aas["w"]["CPU"] == pytest.approx(2 / W)
    assert "cpu_saturation" not in [c["cause"] for c in causes(doc)]


def test_sessions_on_cpu_that_no_statement_accounts_for_are_no_cpu_saturation():
    """Without host metrics, sampled sessions on CPU need the statements' added time behind them."""
    doc = healthy()
    del doc["metrics"]["host_cpu_busy_ratio"]
    doc["waits"][0]["w"] = 200  # 3.3 sessions against 1, while the statements ran as before
    assert "cpu_saturation" not in [c["cause"] for c in causes(doc)]
    doc["metrics"]["pg_activity_oldest_query_age_s"] = metric(0.1, 45.0)  # one still running
    assert "cpu_saturation" in [c["cause"] for c in causes(doc)]


def test_a_cache_hit_drop_with_victims_is_io_cache_eviction():
    doc = healthy()
    doc["queries"][0] = q(1, 6000, 9000, 6000, 3000, read_frac_w=0.5)
    doc["queries"].insert(0, q(4, 20, 20000, 0, 0, blks_w=20000, read_frac_w=0.9, text="SELECT count(*) FROM big"))
    doc["metrics"]["pg_database_blks_hit"] = metric(5000, 4000)
    doc["metrics"]["pg_database_blks_read"] = metric(20, 9000)
    doc["waits"][2]["w"] = 80
    assert top(doc) == "io_cache_eviction"


def test_a_cache_drop_without_an_evicting_reader_ranks_below_replication_lag():
    """A write burst evicts the cache of the usual statements (victims only, no new reader):
    the cache drop is a symptom, the replica far behind the cause."""
    doc = healthy()
    doc["queries"][0] = q(1, 6000, 9000, 6000, 3000, read_frac_w=0.5)
    doc["queries"][1] = q(2, 600, 3600, 600, 1200, read_frac_w=0.4, text="UPDATE accounts SET x = x + $1")
    doc["metrics"]["pg_database_blks_hit"] = metric(5000, 4000)
    doc["metrics"]["pg_database_blks_read"] = metric(20, 9000)
    doc["metrics"]["pg_replication_replay_lag_bytes"] = metric(0, 500e6, w_first=10e6)
    found = causes(doc)
    assert [c["cause"] for c in found[:2]] == ["replication_lag", "io_cache_eviction"]
    assert found[1]["confidence"] < 0.6


def test_cpu_burnt_by_a_cache_evicting_reader_ranks_below_the_eviction():
    """Two sessions copying pages from the OS cache saturate the CPU: the eviction is the cause."""
    doc = healthy()
    doc["queries"][0] = q(1, 6000, 9000, 6000, 3000, read_frac_w=0.5)
    doc["queries"].insert(0, q(4, 100, 50000, 0, 0, blks_w=35000, read_frac_w=0.95, text="SELECT count(*) FROM archive"))
    doc["metrics"]["pg_database_blks_hit"] = metric(5000, 4000)
    doc["metrics"]["pg_database_blks_read"] = metric(20, 130000)
    doc["metrics"]["host_cpu_busy_ratio"] = metric(0.25, 0.98)
    doc["waits"][0]["w"] = 105
    found = {c["cause"]: c["confidence"] for c in causes(doc)}
    assert max(found, key=found.get) == "io_cache_eviction"
    assert found.get("cpu_saturation", 0) < 0.5  # discounted: most of the added time reads blocks


def test_ties_rank_the_specific_cause_before_resource_symptoms():
    doc = healthy()
    doc["metrics"]["pg_replication_replay_lag_bytes"] = metric(0, 500e6, w_first=10e6)
    doc["metrics"]["host_memory_available_bytes"] = metric(20e9, 4e9, w_min=3e9)
    found = causes(doc)
    assert found[0]["confidence"] == found[1]["confidence"] == 1.0
    assert [c["cause"] for c in found[:2]] == ["replication_lag", "memory_pressure"]


def test_a_memory_hog_taking_two_fifths_of_the_host_is_memory_pressure():
    doc = healthy()
    doc["metrics"]["host_memory_available_bytes"] = metric(22e9, 12.5e9, w_min=12e9)  # 8 % -> 48 % used
    found = causes(doc)
    assert found[0]["cause"] == "memory_pressure" and found[0]["confidence"] >= 0.6


def test_an_idle_transaction_as_old_as_a_short_window_is_bloat():
    """A 27 s window: the transaction opened when the fault began cannot be older than 27 s."""
    doc = healthy()
    doc["seconds"]["w"] = 27.0
    doc["metrics"]["pg_activity_oldest_xact_age_s"] = metric(0.2, 27.0)
    doc["metrics"]["pg_activity_oldest_xmin_age"] = metric(2, 900, w_first=20, w_last=900)
    doc["metrics"]["pg_activity_idle_in_transaction"] = metric(0, 1)
    found = causes(doc)
    assert found and found[0]["cause"] == "bloat_long_transaction" and found[0]["confidence"] >= 0.3


def test_memory_replication_and_checkpoints():
    doc = healthy()
    doc["metrics"]["host_memory_available_bytes"] = metric(20e9, 8e9, w_min=7e9)
    assert top(doc) == "memory_pressure"
    doc = healthy()
    doc["metrics"]["pg_replication_replay_lag_bytes"] = metric(0, 200e6, w_first=10e6)
    assert top(doc) == "replication_lag"
    doc = healthy()
    doc["metrics"]["pg_checkpointer_num_requested"] = metric(0, 4 / W)
    doc["settings"]["changes"] = [{"name": "max_wal_size", "setting": "32", "before": "1024", "at": "x"}]
    assert top(doc) == "checkpoint_pressure"


def test_min_confidence_and_blend_options():
    doc = healthy()
    doc["metrics"]["pg_activity_client_backends"] = metric(6, 48)  # 84 %: short of certain
    conf = causes(doc)[0]["confidence"]
    assert 0.2 < conf < 0.95
    assert causes(doc, min_confidence=conf + 0.01) == []
    blended = causes(doc, blend={"connection_saturation": 0.25, "lock_contention": 0.9})
    assert [c["cause"] for c in blended] == ["lock_contention", "connection_saturation"]
    with pytest.raises(ValueError, match="min_confidence"):
        rc.diagnose(doc, {"min_confidence": 3})


def test_inputs_are_not_modified():
    doc = slower_query(healthy())
    before = copy.deepcopy(doc)
    rc.diagnose(doc, {})
    assert doc == before


def profile_row(by_slot: dict[int, float]) -> str:
    """A week profile as diagnosis_inputs() gives it: 168 big-endian float8s, base64."""
    import base64
    import struct
    values = [by_slot.get(k, float("nan")) for k in range(168)]
    return base64.b64encode(struct.pack(">168d", *values)).decode()


def slot(iso: str) -> int:
    from datetime import datetime
    return int((datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() + rc.WEEK_SHIFT_S) // 3600) % 168


def test_the_week_profile_slots_are_the_anomaly_models():
    from pganalytics.plpython import anomaly
    assert rc.WEEK_SHIFT_S == anomaly.WEEK_SHIFT


def nightly_batch(doc: dict) -> dict:
    """Host CPU from 30 % to 92 % in a window that starts an hour the profile says is 55 points
    busier than the hour before it (the baseline minute lies in that earlier hour)."""
    doc["from"], doc["to"], doc["baseline_from"] = "2026-12-05T02:00:00Z", "2026-12-05T02:01:00Z", "2026-12-05T01:59:00Z"
    doc["queries"].insert(0, q(3, 40, 30000, 0, 0, blks_w=0, text="SELECT nightly_rollup()"))
    doc["metrics"]["host_cpu_busy_ratio"] = metric(0.3, 0.92)
    doc["waits"][0]["w"] = 150
    return doc


def test_a_rise_the_learnt_profile_expects_at_that_hour_is_no_cpu_saturation():
    doc = nightly_batch(healthy())
    assert "cpu_saturation" in [c["cause"] for c in causes(doc)]  # without a profile: it is
    doc["profile"] = {"version": 3, "rows": {"high_cpu_usage/": profile_row({slot("2026-12-05T01:59:00Z"): -0.05,
                                                                              slot("2026-12-05T02:00:00Z"): 0.50})}}
    out = rc.diagnose(doc, {})
    assert "cpu_saturation" not in [c["cause"] for c in out["causes"]]
    assert out["window"]["baseline"]["kind"] == "learnt profile + time before"
    assert out["window"]["baseline"]["expected_change"]["high_cpu_usage/"] == pytest.approx(0.55)
    assert out["window"]["baseline"]["model_version"] == 3


def test_a_rise_beyond_what_the_profile_expects_is_still_found_and_says_so():
    doc = nightly_batch(healthy())
    doc["metrics"]["host_cpu_busy_ratio"] = metric(0.3, 0.99)
    doc["queries"][0] = q(3, 40, 90000, 0, 0, blks_w=0, text="SELECT nightly_rollup()")
    doc["waits"][0]["w"] = 200
    doc["profile"] = {"version": 3, "rows": {"high_cpu_usage/": profile_row({slot("2026-12-05T02:00:00Z"): 0.1,
                                                                              slot("2026-12-05T01:59:00Z"): 0.0})}}
    cpu = next(c for c in causes(doc) if c["cause"] == "cpu_saturation")
    assert "baseline moved by +10.00 points" in cpu["evidence"][0] and "model version 3" in cpu["evidence"][0]


def test_an_unfitted_or_flat_profile_leaves_the_baseline_alone():
    doc = nightly_batch(healthy())
    plain = rc.diagnose(copy.deepcopy(doc), {})
    doc["profile"] = {"version": 1, "rows": {"high_cpu_usage/": profile_row({}),  # all NaN: not fitted
                                             "memory_pressure/": profile_row({k: 0.2 for k in range(168)})}}
    out = rc.diagnose(doc, {})
    assert out["causes"] == plain["causes"] and out["window"]["baseline"]["kind"] == "time before"


def test_a_statement_the_profile_expects_slower_at_that_hour_is_measured_against_that():
    doc = healthy()
    doc["from"], doc["to"], doc["baseline_from"] = "2026-12-05T02:00:00Z", "2026-12-05T02:01:00Z", "2026-12-05T01:59:00Z"
    ev = rc.Evidence(copy.deepcopy(doc))
    assert ev.queries[0].mean_b == pytest.approx(0.5)
    doc["profile"] = {"version": 1, "rows": {"execution_time_spike/queryid:1": profile_row(
        {slot("2026-12-05T02:00:00Z"): 1.5, slot("2026-12-05T01:59:00Z"): 0.5})}}
    ev = rc.Evidence(doc)
    assert ev.queries[0].mean_b == pytest.approx(1.5) and ev.queries[1].mean_b == pytest.approx(2.0)


def test_the_profile_mean_weights_each_hour_by_its_overlap():
    start = 1_700_000_000.0 - (1_700_000_000.0 + rc.WEEK_SHIFT_S) % 3600  # an hour's start
    k = int((start + rc.WEEK_SHIFT_S) // 3600) % 168
    offsets = [math.nan] * 168
    offsets[k], offsets[(k + 1) % 168] = 1.0, 4.0
    assert rc._profile_mean(offsets, start + 2700, start + 4500) == pytest.approx((1.0 * 900 + 4.0 * 900) / 1800)
    assert rc._profile_mean(offsets, start + 7200, start + 7260) is None  # slot k+2 not fitted
    assert rc._profile_mean(offsets, start, start) is None


def test_a_table_lock_beside_the_usual_row_lock_waits_is_lock_contention():
    """pgbench-like load waits on row locks (transactionid) all the time; a session holding a
    table lock adds relation waits that barely move the total's ratio."""
    doc = healthy()
    doc["waits"][1]["w"] = doc["waits"][1]["b"] = 40  # 0.67 sessions on row locks, steady
    doc["waits"].append({"type": "Lock", "event": "relation", "state": "active", "w": 30, "b": 0})
    found = causes(doc)
    assert found and found[0]["cause"] == "lock_contention" and found[0]["confidence"] >= 0.5
    assert any("relation locks: 0.50 sessions" in e for e in found[0]["evidence"])
    # the same added waits on the row locks that were there already: the breakdown by lock
    # type adds nothing, the ratio test over all lock waits decides (x1.75 stays weak)
    doc["waits"].pop()
    doc["waits"][1]["w"] = 70
    assert max((c["confidence"] for c in causes(doc) if c["cause"] == "lock_contention"), default=0) < 0.5
